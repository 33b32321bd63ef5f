"""From a verdict's own report to an :class:`~freqprint.report.evidence.EvidenceReport`: the sentence,
the pictures' data, the Bonferroni accounting and the limitations that apply to this case
(drawn from docs/security.md, whose section each names)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from freqprint.report.evidence import Channel, EvidenceReport, Figure, InputDigest
from freqprint.stats.null import format_p

__all__ = ["from_claim", "from_lineage", "from_metav", "from_scan", "from_trace", "from_verify", "scan_rows"]

_SEC = "docs/security.md"


def _p(log10_p: float | None) -> str:
    return "1 (nothing to compare)" if log10_p is None else format_p(log10_p)


def _bound_sentence(log10_p: float, alpha: float) -> str:
    if log10_p > math.log10(alpha):
        return (
            f"The evidence found has p = {format_p(log10_p)}, above the level α = {alpha:g} at which a verdict accuses "
            "(so a false accusation happens with probability at most α). 'Not derived' carries no bound on missing a "
            "copy: see the limitations."
        )
    return (
        f"If the suspect were unrelated to the owner's model, evidence at least this strong would appear with "
        f"probability at most {format_p(log10_p)} (an upper bound, not an estimate); the decision needed at most {alpha:g}."
    )


def _report(command: str, verdict: str, headline: str, **kw: Any) -> EvidenceReport:
    return EvidenceReport(command=command, verdict=verdict, headline=headline, **kw)


# ---------------------------------------------------------------------------------------------
# the fingerprint channel (verify)


def _fingerprint_figures(r: dict[str, Any]) -> list[Figure]:
    """Per-filter cosines against the null's band, the hit count against the binomial tail, the
    aligned filter map — from a :class:`~freqprint.verification.verifier.VerificationReport` dict."""
    cos = r.get("filter_cosines") or []
    if not cos:
        return []
    t = float(r["hit_cosine"])
    figs = [
        Figure(
            "filter-cosines",
            "Each of the key's filters, compared with its best match in the suspect",
            f"Bars: the cosine of each of the key's {len(cos)} filters with the suspect filter it was matched to "
            f"(in the {r['block'] or 'deciding'} block of coordinates). Shaded: below {t:.2f}, where an unrelated model's "
            f"filters fall with probability at least 99 %. A bar above the line is a hit ({r['hits']} of {len(cos)}).",
            {"cosines": cos, "threshold": t, "hits": r["hits"]},
        )
    ]
    p1, factor = r.get("hit_probability"), r.get("log10_factor")
    if p1 is not None and factor is not None:
        figs.append(
            Figure(
                "hit-tail",
                "How many hits an unrelated model could reach",
                f"The curve: log₁₀ of the probability that an unrelated model reaches at least k hits "
                f"(Binomial({len(cos)}, {p1:.3g}) tail, times every search the verifier made: 10^{factor:.1f}). "
                f"The dot: this suspect ({r['hits']} hits). The line: the decision level α = {r['alpha']:g}.",
                {"filters": len(cos), "p1": p1, "log10_factor": factor, "hits": r["hits"], "alpha": r["alpha"]},
            )
        )
    figs.append(
        Figure(
            "filter-map",
            "Where the key's filters sit in the suspect",
            f"One cell per key filter, in the key's order: the suspect filter it matched (layer {r['layer']}, "
            f"{r['suspect_filters']} filters) and, by colour, the cosine. A copy keeps the pattern of the key's filters "
            "under any reordering; an unrelated model scatters them with low cosines.",
            {"match": r.get("filter_match") or [], "cosines": cos, "threshold": t},
        )
    )
    return figs


def _fingerprint_limitations(r: dict[str, Any], found: bool) -> list[str]:
    out = []
    if not r.get("anchored", False):
        out.append(
            "The key holds trained kernels, not the secret's W₀: its null is exact only while training barely moved "
            "them, and a bare key is evidence only for its holder — anyone can extract a key from any model "
            f"({_SEC}, 'Keys anchored to W₀' and 'Registries and scans')."
        )
    if found:
        out.append(
            "The test shows that the suspect's weights contain the owner's module's filters; it does not say who made "
            f"the copy or when. The owner's published commitment dates the key ({_SEC}, 'What a \"found\" verdict proves')."
        )
    else:
        out.append(
            "A thief who knows the method can remove the module (deleting or redrawing it, distilling into a fresh "
            "student) and leave no fingerprint: 'not found' is not evidence of independence. The backbone-lineage "
            f"channel (trace) and MetaV cover some of these ({_SEC}, 'What the fingerprint survives')."
        )
    return out


def from_verify(
    rep: Any, *, inputs: list[InputDigest], reproduce: str, environment: dict[str, Any], published: str | None = None
) -> EvidenceReport:
    """``verify``'s :class:`~freqprint.verification.verifier.VerificationReport`."""
    r = rep.to_dict()
    compared = rep.fitted > 0 or rep.found
    verdict = "derived" if rep.found else ("not derived" if compared else "inconclusive")
    if rep.found:
        headline = (
            f"The suspect carries the owner's fingerprint: {rep.hits} of the key's {rep.filters} filters were found in "
            f"its layer {rep.layer}, at p = {_p(rep.log10_p)}."
        )
    elif compared:
        headline = (
            f"No evidence that the suspect carries the owner's fingerprint (p = {_p(rep.log10_p)}, above α = {rep.alpha:g})."
        )
    else:
        headline = f"Nothing in the suspect could be compared with the key ({r['extra'].get('reason', 'no candidate tensor')})."
    means = (
        [
            "Filters of the owner's secret-seeded module are present in the suspect's weights, after every reordering "
            "and rescaling the verifier searched.",
            "The probability that an unrelated model shows this much agreement is at most the p-value.",
        ]
        if rep.found
        else ["This test found no copy of the owner's module's filters at the stated α."]
    )
    dnm = (
        ["That the suspect's other layers, its data or its training came from the owner.", "Who made the copy, or when."]
        if rep.found
        else ["That the suspect is independent of the owner's model (see the limitations)."]
    )
    ch = Channel("fingerprint", compared, rep.found, rep.log10_p if compared else 0.0, rep.summary(), _fingerprint_figures(r))
    return _report(
        "verify",
        verdict,
        headline,
        means=means,
        does_not_mean=dnm,
        error_probability=_bound_sentence(rep.log10_p, rep.alpha)
        if compared
        else "No test could run, so no error probability applies (p = 1).",
        log10_p=rep.log10_p,
        alpha=rep.alpha,
        channels=[ch],
        accounting=[_account_row("fingerprint", rep.log10_p, 1, rep.alpha, compared)],
        inputs=inputs,
        commitment={"kind": "key", "value": rep.key_commitment, "published": published, "anchored": rep.anchored},
        environment=environment,
        reproduce=reproduce,
        limitations=_fingerprint_limitations(r, rep.found),
        result=r,
    )


def _account_row(name: str, log10_p: float | None, m: int, alpha: float, ran: bool) -> dict[str, Any]:
    """One row of the Bonferroni table: the channel's own p, the factor m, m·p (capped at 1) and
    the share α/m of the level it is compared with."""
    adj = None if log10_p is None else min(0.0, log10_p + math.log10(m))
    return {"channel": name, "ran": ran, "log10_p": log10_p, "factor": m, "log10_adjusted": adj, "alpha_share": alpha / m}


# ---------------------------------------------------------------------------------------------
# trace: every channel, one Bonferroni verdict

_CHANNEL_FOUND = {
    "fingerprint": "its weights hold the owner's secret-seeded fingerprint module",
    "lineage": "its backbone still carries the owner's secret-seeded initial weights",
    "parent": "its weights descend from the owner's released weights",
}
_CHANNEL_MISSED = {
    "fingerprint": "the fingerprint module itself was not found (removed or rewritten)",
    "lineage": "the backbone's initial weights were not found",
    "parent": "lineage from the released weights was not found",
}
_CHANNEL_MEANS = {
    "fingerprint": "The suspect's weights contain filters of the owner's secret-seeded fingerprint module, after every "
    "reordering and rescaling the verifier searched.",
    "lineage": "The suspect's backbone was trained from the owner's model, not from scratch: it still carries the initial "
    "weights θ₀ only the owner's secret regenerates.",
    "parent": "The suspect's weights descend from the owner's released weights (fine-tuned, merged, quantized or rewritten).",
}


def from_trace(
    rep: Any, *, inputs: list[InputDigest], reproduce: str, environment: dict[str, Any], published: str | None = None
) -> EvidenceReport:
    """``trace``'s :class:`~freqprint.verification.provenance.TraceReport`."""
    r = rep.to_dict()
    ran = [c for c in rep.channels if c.ran]
    m = max(1, len(ran))
    channels = []
    limitations: list[str] = []
    for c in rep.channels:
        figs = _fingerprint_figures(c.detail) if c.name == "fingerprint" else []
        if c.name == "lineage" and c.detail.get("layers"):
            figs = [_lineage_layers_figure(c.detail)]
        if c.name == "parent" and c.detail.get("blocks"):
            figs = _parent_blocks_figures(c.detail["blocks"])
        channels.append(Channel(c.name, c.ran, c.found, c.log10_p if c.ran else None, c.summary, figs))
        if c.name == "fingerprint" and c.ran:
            limitations += _fingerprint_limitations(c.detail, c.found)
    limitations.append(
        "The channels' p-values are combined by Bonferroni (the smallest, times the number of channels that ran), which "
        f"holds whatever their dependence ({_SEC}, 'Backbone lineage and the combined verdict')."
    )
    if not rep.found:
        limitations.append(
            "Distillation into a fresh student gets a new initialisation and no module: it evades every white-box "
            f"channel ({_SEC}, 'In short')."
        )
    share = rep.alpha / m
    hits = [c for c in ran if c.log10_p <= math.log10(share)]
    misses = [c for c in ran if c not in hits]
    if rep.found:
        headline = (
            "The suspect derives from the owner's model: "
            + "; ".join(f"{_CHANNEL_FOUND[c.name]} ({c.name}, p = {format_p(c.log10_p)})" for c in hits)
            + "".join(f"; {_CHANNEL_MISSED[c.name]}" for c in misses if c.name in _CHANNEL_MISSED)
            + f". Combined p = {format_p(rep.log10_p)} over {len(ran)} channel{'s' if len(ran) != 1 else ''}."
        )
    else:
        headline = (
            f"No evidence that the suspect derives from the owner's model: no channel ({', '.join(c.name for c in ran) or 'none'}) "
            f"reached its share of α (combined p = {format_p(rep.log10_p)}, α = {rep.alpha:g})."
        )
    fig = Figure(
        "channels",
        "Each channel's evidence against the decision level",
        f"Bars: −log₁₀ p of each channel that ran. The line: −log₁₀(α/{m}), each channel's share of α = {rep.alpha:g} "
        "under Bonferroni. A bar past the line decides 'derived'.",
        {"names": [c.name for c in ran], "log10_p": [c.log10_p for c in ran], "alpha": rep.alpha, "m": m},
    )
    channels.insert(0, Channel("combined", True, rep.found, rep.log10_p, rep.summary(), [fig]))
    return _report(
        "trace",
        "derived" if rep.found else "not derived",
        headline,
        means=[_CHANNEL_MEANS[c.name] for c in hits]
        + ["The channels' p-values were corrected for running several (Bonferroni), so the combined p holds as stated."]
        if rep.found
        else [f"No channel found the owner's model at its share α/{m} = {share:g} of α."],
        does_not_mean=["Who made the copy, or when.", "That the suspect was trained on the owner's data."]
        if rep.found
        else ["That the suspect is independent of the owner's model (see the limitations)."],
        error_probability=_bound_sentence(rep.log10_p, rep.alpha),
        log10_p=rep.log10_p,
        alpha=rep.alpha,
        channels=channels,
        accounting=[_account_row(c.name, c.log10_p if c.ran else None, m, rep.alpha, c.ran) for c in rep.channels],
        inputs=inputs,
        commitment={"kind": "key", "value": _key_commitment(rep), "published": published},
        environment=environment,
        reproduce=reproduce,
        limitations=limitations,
        result=r,
    )


def _key_commitment(rep: Any) -> str | None:
    for c in rep.channels:
        if c.name == "fingerprint" and c.ran:
            return c.detail.get("key_commitment")
    return None


def _parent_blocks_figures(blocks: list[dict[str, Any]]) -> list[Figure]:
    """The parent-lineage channel's picture, from its per-block results (``BlockResult`` dicts)."""
    from freqprint.verification.parent import MATCH_FRACTION, MATCH_SCORE

    if not blocks:
        return []
    return [
        Figure(
            "blocks",
            "Lineage, block by block",
            "Per transformer block: the share of the parent's sampled MLP units whose best match in the suspect is the "
            "unit of the same index (bars; an unrelated model leaves about 1 in the block's width), and the share "
            f"matched at all under the symmetry group (dots: a unit counts when its best score reaches {MATCH_SCORE}; the "
            f"suspect matches when the upper-quartile block has {MATCH_FRACTION:.0%} of its units matched).",
            {
                "block": [b["block"] for b in blocks],
                "fixed": [b["fixed"] / max(1, b["sampled"]) for b in blocks],
                "matched": [b["matched"] for b in blocks],
                "log10_p": [b["log10_p"] for b in blocks],
            },
        )
    ]


def _lineage_layers_figure(detail: dict[str, Any]) -> Figure:
    layers = detail["layers"]
    names = [str(x["owner_layer"]) for x in layers]
    vals = [x["log10_p"] for x in layers]
    return Figure(
        "per-layer",
        "Lineage, layer by layer",
        "Bars: −log₁₀ p of each backbone layer's own test against the owner's initial weights θ₀.",
        {"names": names, "log10_p": vals},
    )


# ---------------------------------------------------------------------------------------------
# lineage: released weights, and the owner's delta


def from_lineage(
    rep: Any,
    delta: Any | None,
    *,
    inputs: list[InputDigest],
    reproduce: str,
    environment: dict[str, Any],
    published: str | None = None,
) -> EvidenceReport:
    """``lineage``'s :class:`~freqprint.verification.parent.ParentReport` and, with the owner's
    secret, its :class:`~freqprint.verification.delta.DeltaReport`."""
    r = rep.to_dict()
    if delta is not None:
        r["delta"] = delta.to_dict()
    figs = _parent_blocks_figures([asdict(b) for b in rep.blocks])
    channels = [Channel("parent lineage", not rep.reason, rep.found, None if rep.reason else rep.log10_p, rep.summary(), figs)]
    limitations = [
        "The unit-order p-value is exact only while the suspect keeps the parent's MLP units in order; a thief who "
        "permutes them leaves the symmetry-invariant matched-unit rate, whose error rate is measured on independent "
        f"models, not exact ({_SEC}, 'Provenance of open-weight derivatives').",
    ]
    if delta is not None:
        found, log10_p, alpha = delta.found, delta.log10_p, delta.alpha
        channels.insert(
            0, Channel("owner's delta", not delta.reason, delta.found, None if delta.reason else delta.log10_p, delta.summary())
        )
        headline = (
            f"The suspect carries the owner's fine-tuning delta (p = {format_p(delta.log10_p)}), not only the public base."
            if found
            else f"No evidence that the suspect carries the owner's fine-tuning delta (p = {format_p(delta.log10_p)})."
        )
        means = (
            [
                "The suspect contains the owner's secret-seeded changes to the public base, which other fine-tunes of the base lack."
            ]
            if found
            else ["The owner's seeded delta was not found at the stated α."]
        )
        dnm = ["That the suspect was fine-tuned from the base (every fine-tune of the base shares its lineage)."]
        limitations.append(
            "Every fine-tune of a public base shares its lineage; only the owner's seeded delta tells the owner's model apart "
            f"({_SEC}, 'Provenance of open-weight derivatives')."
        )
        verdict = "derived" if found else ("inconclusive" if delta.reason else "not derived")
    else:
        found, log10_p, alpha = rep.found, rep.log10_p, rep.alpha
        headline = (
            f"The suspect derives from the released parent's weights ({rep.basis}; unit-order p = {format_p(rep.log10_p)})."
            if found
            else (
                f"The two decoders could not be compared: {rep.reason}."
                if rep.reason
                else f"No evidence that the suspect derives from the released parent (p = {format_p(rep.log10_p)})."
            )
        )
        means = (
            ["The suspect's weights descend from the parent's (fine-tuned, merged, quantized, pruned or rewritten)."]
            if found
            else ["No lineage from the parent's weights was found at the stated α."]
        )
        dnm = ["Whether the suspect carries a particular fine-tune of the parent (the delta test answers that)."]
        verdict = "derived" if found else ("inconclusive" if rep.reason else "not derived")
    return _report(
        "lineage",
        verdict,
        headline,
        means=means,
        does_not_mean=dnm,
        error_probability=_bound_sentence(log10_p, alpha)
        if (delta is not None or rep.basis != "matched units")
        else "The verdict rests on the matched-unit rate, whose false-positive rate is measured on independent same-config "
        f"models (docs/benchmarks.md §14a), not bounded exactly; the unit-order p-value is {format_p(rep.log10_p)}.",
        log10_p=log10_p,
        alpha=alpha,
        channels=channels,
        accounting=[_account_row(c.name, c.log10_p, 1, alpha, c.ran) for c in channels],
        inputs=inputs,
        commitment={"kind": "released parent", "value": None, "published": published},
        environment=environment,
        reproduce=reproduce,
        limitations=limitations,
        result=r,
    )


# ---------------------------------------------------------------------------------------------
# claim check


def from_claim(
    rep: Any, *, inputs: list[InputDigest], reproduce: str, environment: dict[str, Any], published: str | None = None
) -> EvidenceReport:
    """``claim check``'s :class:`~freqprint.verification.claim.ClaimReport`."""
    r = rep.to_dict()
    sus = rep.suspect
    ok = rep.genuine and (sus is None or bool(sus["found"]))
    blocks = rep.blocks
    figs = [
        Figure(
            "claim-blocks",
            "Does the key come from the revealed secret?",
            "Per block of coordinates: the mean cosine of the key's kernels with the initialisation W₀ regenerated from "
            "the secret (1: identical). An unrelated key averages 0.",
            {
                "blocks": list(blocks),
                "cosines": [b.mean_cosine for b in blocks.values()],
                "log10_p": [b.log10_p for b in blocks.values()],
            },
        )
    ]
    channels = [Channel("claim", True, rep.genuine, blocks["hidden"].log10_p if "hidden" in blocks else None, rep.reason, figs)]
    if sus is not None:
        channels.append(
            Channel(
                "suspect vs W₀",
                True,
                bool(sus["found"]),
                sus["log10_p"],
                f"{'found' if sus['found'] else 'not found'}: p = {format_p(sus['log10_p'])} ({sus['block']} block, layer {sus['layer']})",
                _fingerprint_figures(sus),
            )
        )
    if not rep.genuine:
        verdict = "inconclusive" if not rep.secret_matches else "not derived"
        headline = f"The claim is rejected: {rep.reason}."
    elif sus is None:
        verdict, headline = "derived", f"The claim is genuine: {rep.reason}."
    else:
        verdict = "derived" if ok else "not derived"
        headline = (
            f"The claim is genuine and the suspect carries the claimed module (p = {format_p(sus['log10_p'])})."
            if ok
            else f"The claim is genuine, but the suspect does not carry the claimed module (p = {format_p(sus['log10_p'])})."
        )
    log10_p = sus["log10_p"] if sus is not None else (blocks["hidden"].log10_p if "hidden" in blocks else None)
    alpha = float(sus["alpha"]) if sus is not None else rep.alpha  # the suspect's test has its own level
    return _report(
        "claim check",
        verdict,
        headline,
        means=[
            "The revealed secret opens the bundle's commitment and regenerates the module's initial kernels W₀, which the key's "
            "kernels still match: the key was made from that secret's module."
        ]
        if rep.genuine
        else ["The secret does not open this claim, or the key was not made from its module."],
        does_not_mean=[
            "When the claim was made: only the commitment's publication dates it.",
        ],
        error_probability=_bound_sentence(log10_p, alpha)
        if log10_p is not None and rep.genuine
        else "The claim does not hold, so no suspect is judged against it.",
        log10_p=log10_p,
        alpha=alpha,
        channels=channels,
        accounting=[_account_row(c.name, c.log10_p, 1, rep.alpha if c.name == "claim" else alpha, c.ran) for c in channels],
        inputs=inputs,
        commitment={"kind": "claim", "value": rep.claim_commitment, "key": rep.key_commitment, "published": published},
        environment=environment,
        reproduce=reproduce,
        limitations=[
            "A claim proves that its key comes from the secret's module. Whoever publishes the commitment first owns the claim; "
            f"a later claim on the same model is a forgery only by that date ({_SEC}, 'Keys anchored to W₀')."
        ],
        result=r,
    )


# ---------------------------------------------------------------------------------------------
# MetaV


def from_metav(
    row: dict[str, Any],
    claim: dict[str, Any],
    reference_scores: Sequence[float],
    *,
    inputs: list[InputDigest],
    reproduce: str,
    environment: dict[str, Any],
    published: str | None = None,
) -> EvidenceReport:
    """One suspect of ``metav verify`` (its verdict dict), the claim's metadata (``commitment``,
    ``task``, ``population``) and the reference panel's V scores."""
    derived = bool(row["derived"])
    p, a = float(row["p_value"]), float(row["alpha"])
    log10_p = math.log10(p) if p > 0 else None
    fig = Figure(
        "reference-rank",
        "The suspect's score among the claim's reference models",
        f"Dots: the meta-verifier's score V of each of the {len(reference_scores)} independent reference models the claim "
        f"holds. Diamond: this suspect ({row['score']:.3f}). Line: the claim's threshold λ = {row['threshold']:.3f}. "
        "'Derived' needs the suspect above λ and ranked so high among the reference models, and agreeing with the source's "
        "answers, that p ≤ α.",
        {"reference": [round(float(s), 6) for s in reference_scores], "score": row["score"], "threshold": row["threshold"]},
    )
    ch = Channel(
        "metav",
        True,
        derived,
        log10_p,
        (
            f"p = {p:.3g} = min(1, 2 · min(V's route, the replicates' route)): V's route (when V ≥ λ) "
            if row.get("margin") is not None
            else f"p = {p:.3g} = "
        )
        + f"max(agreement test {row['p_agreement']:.3g}, rank among {row['reference_n']} reference models "
        f"{row['p_reference']:.3g}"
        + (f", closeness rank {row['p_closeness']:.3g}; read in the source's latent frame" if row.get("in_frame") else "")
        + (
            f"); the replicates' route max(agreement test, rank of the margin {row['margin']:+.4f} over "
            f"{row['replicates']} replicates of the source among the reference models' {row['p_margin']:.3g}, the source's "
            f"rank among its replicates {row['p_replicates']:.3g}"
            if row.get("margin") is not None
            else ""
        )
        + f"); V = {row['score']:.4f} (λ {row['threshold']:.4f}); closeness {row['closeness']:.4f}"
        + (
            ""
            if row.get("probe_floor") is None
            else f"; probe statistic {row['probe_statistic']:.4f} (floor {row['probe_floor']:.4f})"
        ),
        [fig],
    )
    pop = claim.get("population") or {}
    return _report(
        "metav verify",
        "derived" if derived else "not derived",
        (
            f"The suspect's answers mark it as derived from the claim's source model (p = {p:.3g})."
            if derived
            else f"No evidence from the suspect's answers that it derives from the claim's source model (p = {p:.3g}, α = {a:g})."
        ),
        means=[
            "The suspect's answers on the claim's fingerprint inputs look like those of the source's derivatives, rank above "
            "all but a share p of the claim's reference models, and carry information about the source's own answers"
            + (
                "; on natural inputs they agree with the source's as much as most of the owner's own derivatives do."
                if row.get("probe_floor") is not None
                else "."
            )
        ]
        if derived
        else [
            "The suspect's answers did not reach the claim's threshold and rank"
            + (
                ""
                if row.get("probe_floor") is None
                else ", or agreed with the source's on natural inputs less than the claim's probe floor asks"
            )
            + "."
        ],
        does_not_mean=[
            "A bound on the error for any suspect: the rank is a conformal p-value, valid for suspects drawn like the claim's "
            "reference population, which the limitations describe."
        ],
        error_probability=(
            f"p = {p:.3g}: the larger of an agreement test's p-value and the suspect's rank among {row['reference_n']} reference "
            "models (a conformal p-value: for an innocent suspect drawn like the reference population, P[p ≤ α] ≤ α)."
        ),
        log10_p=log10_p,
        alpha=a,
        channels=[ch],
        accounting=[_account_row("metav", log10_p, 1, a, True)],
        inputs=inputs,
        commitment={"kind": "MetaV claim", "value": claim.get("commitment"), "published": published, "task": claim.get("task")},
        environment=environment,
        reproduce=reproduce,
        limitations=[
            "The reference population: " + (", ".join(f"{k} {v}" for k, v in sorted(pop.items())) or "not recorded") + ".",
            "Students distilled with a recipe or into a family the claim's ensemble lacks are mostly missed (docs/benchmarks.md "
            "§13 measures how many); a soft API (a temperature) lowers the chance of being "
            f"caught at no cost to the thief ({_SEC}, 'MetaV: black-box verdicts').",
        ],
        result={"suspect": row, "claim": {k: v for k, v in claim.items() if k != "population"}},
    )


# ---------------------------------------------------------------------------------------------
# scan: a summary page


def scan_rows(records: Sequence[dict[str, Any]] | str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The summary's rows from a scan's JSON Lines records (or the file holding them; a line cut by
    an interrupted run is skipped): those made against the registry state
    of the last record (an older state's records describe another registry), one per file, sorted
    by path: ``path``, ``sha256``, ``status``, the strongest match's ``key`` (or ``parent``) and
    its ``log10_p`` and ``trust``."""
    if isinstance(records, (str, os.PathLike)):
        with open(records, encoding="utf-8") as f:
            records = [_json_line(line) for line in f]
    recs = [r for r in records if isinstance(r, dict) and "path" in r]
    if not recs:
        return []
    state = recs[-1].get("state")
    rows: dict[str, dict[str, Any]] = {}
    for r in recs:
        if r.get("state") != state:
            continue
        row: dict[str, Any] = {"path": str(r["path"]), "sha256": r.get("sha256"), "status": r.get("status", "")}
        ms = sorted(r.get("matches") or [], key=lambda m: m.get("log10_p", 0.0))
        ds = sorted(r.get("derived_from") or [], key=lambda d: d.get("log10_p_registry", 0.0))
        if ms:
            row.update(key=ms[0].get("key"), log10_p=ms[0].get("log10_p"), trust=ms[0].get("trust"))
        elif ds:
            row.update(parent=ds[0].get("parent"), log10_p=ds[0].get("log10_p_registry"), trust=ds[0].get("basis"))
        elif r.get("error"):
            row["error"] = r["error"]
        rows[row["path"]] = row
    return [rows[k] for k in sorted(rows)]


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def from_scan(
    rows: list[dict[str, Any]],
    *,
    inputs: list[InputDigest],
    reproduce: str,
    environment: dict[str, Any],
    alpha: float,
    published: str | None = None,
) -> EvidenceReport:
    """``scan``'s summary page over :func:`scan_rows`."""
    del published  # a scan has no single commitment; each key's is in the registry
    hits = [r for r in rows if r.get("status") == "match"]
    best = min((r["log10_p"] for r in hits if r.get("log10_p") is not None), default=None)
    fig = Figure(
        "scan-table",
        "Every file scanned",
        "One row per file: what the registry matched it to, with the p-value (family-wise over every registered key).",
        {"rows": rows},
    )
    return _report(
        "scan",
        "derived" if hits else "not derived",
        (
            f"{len(hits)} of {len(rows)} files match a registered model."
            if hits
            else f"None of {len(rows)} files matches a registered model."
        ),
        means=["A 'match' file carries a registered key's fingerprint (or a registered parent's lineage) at the family-wise α."],
        does_not_mean=["That a file without a match is independent: a scan sees only the white-box channels."],
        error_probability=f"Each match's p-value bounds the chance of an unrelated file matching any registered key; α = {alpha:g}.",
        log10_p=best,
        alpha=alpha,
        channels=[Channel("registry", True, bool(hits), best, f"{len(hits)} matches over {len(rows)} files", [fig])],
        accounting=[],
        inputs=inputs,
        commitment={"kind": "registry", "value": None, "published": None},
        environment=environment,
        reproduce=reproduce,
        limitations=[f"Bare keys (marked in each record) are evidence only for their holder ({_SEC}, 'Registries and scans')."],
        result={"files": len(rows), "matches": len(hits)},
    )
