"""``freqprint metav bench``: MetaV and the baselines on held-out suspects, per task kind.

For each task kind: build the default ensemble (:func:`freqprint.metav.ensemble.default_manifest`,
cached), train MetaV on its train split, calibrate λ on its validation split and the floor on its
reference split and the probe floor at ``FLOOR_QUANTILE`` on its train/val positives,
give every test suspect its verdict (V ≥ λ, p ≤ α and the probe statistic ≥ the floor) and the
verdict of a claim without the floor (``metav train --no-floor``), write the claim
artefact, reload it (commitment checked) and re-check it on the panel.  MetaV is reported twice:
its verdict, and V alone at λ (what a claim without the floor said).  Rates come per family and
per population (far negatives: other data, untrained, null answers and their served variants;
owner-data independents; students of held-out recipes and families), with exact
Clopper–Pearson intervals.  The baselines (IPGuard for classifiers, "same mistakes" for every
kind, the frequency fingerprint where the source carries a module) score the same test suspects,
each with its threshold calibrated on the same validation suspects.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from freqprint.metav.artefact import clopper_pearson_upper, load_claim, panel_check, save_claim
from freqprint.metav.comparators import FrequencyFingerprintScore, IPGuard, SameMistakes
from freqprint.metav.core import MetaV, MetaVConfig, calibrate_threshold
from freqprint.metav.ensemble import PROFILES, Ensemble, build_ensemble, default_manifest, fingerprint_secret
from freqprint.metav.trainer import fit_claim, metav_configs
from freqprint.stats.aruc import per_family, summarise

__all__ = ["METAV_CLAIM", "metav_markdown", "run_metav_bench", "run_metav_task"]

# the published claim (Pan et al., KDD 2022, abstract): 70 suspect ResNet-18s (skin-cancer diagnosis)
METAV_CLAIM = {"suspects": 70, "tpr": 1.0, "tnr": 1.0}
KINDS = ("classification", "regression", "generation")
FLOOR_QUANTILE = 0.05  # the probe floor of the bench's claims (metav train's default); "no floor": --no-floor's verdict


def _scores_of(members: list, score: Callable[[Any], float]) -> tuple[list[float], list[int], list[str], list[str]]:
    s = [float(score(m)) for m in members]
    return s, [m.label for m in members], [m.entry.family for m in members], [m.name for m in members]


def _evaluate(
    val: list, test: list, score: Callable[[Any], float], threshold: float | None = None, rounds: int = 1000
) -> dict[str, Any]:
    """Calibrate (unless given) on ``val``, report on ``test``."""
    if threshold is None:
        sv, yv, _, _ = _scores_of(val, score)
        threshold = calibrate_threshold([s for s, y in zip(sv, yv) if y], [s for s, y in zip(sv, yv) if not y])
    st, yt, ft, nt = _scores_of(test, score)
    pos = [s for s, y in zip(st, yt) if y]
    neg = [s for s, y in zip(st, yt) if not y]
    return {**summarise(pos, neg, threshold, rounds), "families": per_family(st, yt, ft, threshold), "scores": dict(zip(nt, st))}


def _interval(k: int, n: int) -> tuple[float, float]:
    """Exact two-sided 95 % Clopper–Pearson interval of a rate k/n."""
    from scipy.stats import beta

    if n == 0:
        return (0.0, 1.0)
    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return (lo, hi)


def population(member: Any) -> str:
    """The population a test suspect belongs to, for the rates the issue's goals name."""
    fam = member.entry.family
    if member.label:
        return "students, held-out recipe or family" if fam.startswith("kd ") else "derived: weights, APIs, ensemble's KD"
    if fam.startswith(("other-data", "untrained", "null")) or fam.endswith(" far"):
        return "far: other data, untrained, null, served"
    return "close: owner-task independents and variants"


def _verdicts(mv: MetaV, test: list) -> dict[str, Any]:
    """Every test suspect's verdict; rates per family and per population, exact intervals.  Each
    row also holds, on the same answers, the joint rule that was measured and not adopted
    (``derived_joint``: max(p₁, joint rank by V or closeness) ≤ α, no λ;
    :func:`freqprint.stats.floor.joint_rank_pvalue`), the verdict without the probe floor
    (``derived_no_floor``: V ≥ λ and p ≤ α, the rule of 0.28 and before) and the suspect's quality
    (test accuracy, R²)."""
    from freqprint.stats.floor import joint_rank_pvalue

    t0 = time.time()
    rows = {m.name: mv.verdict(m.query).to_dict() for m in test}
    per_suspect = (time.time() - t0) / max(len(test), 1)  # the claim's verdict alone, as a user runs it
    f = mv.floor
    assert f is not None
    if f.replicates:  # the same claim without its replicate route: V's route alone at α
        alone = copy.copy(mv)
        alone.floor = dataclasses.replace(f, candidates=None, margins=None, replicate_frame=None)
        for m in test:
            rows[m.name]["derived_v_route"] = alone.verdict(m.query).derived
    for m in test:
        r = rows[m.name]
        ok = (f.agreement_p <= r["alpha"]).numpy()
        p_joint = joint_rank_pvalue(
            r["score"], r["closeness"], r["p_agreement"] <= r["alpha"], f.scores.numpy(), f.closeness.numpy(), ok
        )
        r["derived_joint"] = bool(max(r["p_agreement"], p_joint) <= r["alpha"])
        # with replicates p is already the union of the routes, V's taken only where V ≥ λ
        by_route = r["score"] >= r["threshold"] or r.get("margin") is not None
        r["derived_no_floor"] = bool(by_route and r["p_value"] <= r["alpha"])
        r.setdefault("derived_v_route", r["derived"])
        r["quality"] = m.quality
    fams: dict[tuple[int, str], list[str]] = {}
    pops: dict[tuple[int, str], list[str]] = {}
    for m in test:
        fams.setdefault((m.label, m.entry.family), []).append(m.name)
        pops.setdefault((m.label, population(m)), []).append(m.name)

    def rate(label: int, names: list[str]) -> dict[str, Any]:
        right = sum(rows[n]["derived"] == bool(label) for n in names)
        quality = [rows[n]["quality"] for n in names if rows[n]["quality"] is not None]
        return {
            "correct_joint": sum(rows[n]["derived_joint"] == bool(label) for n in names),
            "correct_no_floor": sum(rows[n]["derived_no_floor"] == bool(label) for n in names),
            "correct_v_route": sum(rows[n]["derived_v_route"] == bool(label) for n in names),
            "closeness_min": min(rows[n]["closeness"] for n in names),
            "closeness_max": max(rows[n]["closeness"] for n in names),
            "quality_median": float(np.median(quality)) if quality else None,
            "label": label,
            "n": len(names),
            "correct": right,
            "rate": right / len(names),
            "ci95": _interval(right, len(names)),
            "wrong_upper95": clopper_pearson_upper(len(names) - right, len(names)),
            "score_min": min(rows[n]["score"] for n in names),
            "score_max": max(rows[n]["score"] for n in names),
            "p_max": max(rows[n]["p_value"] for n in names),
            "p_min": min(rows[n]["p_value"] for n in names),
        }

    pos = [m.name for m in test if m.label]
    neg = [m.name for m in test if not m.label]
    return {
        "tpr": rate(1, pos),
        "tnr": rate(0, neg),
        "families": [{"family": f, **rate(y, ns)} for (y, f), ns in sorted(fams.items(), key=lambda kv: (-kv[0][0], kv[0][1]))],
        "populations": [
            {"population": f, **rate(y, ns)} for (y, f), ns in sorted(pops.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
        ],
        "verdicts": rows,
        "seconds_per_suspect": per_suspect,
    }


def _thief_rewrites(mv, task, test: list) -> dict[str, Any]:
    """What a README-reading thief does to a classifier at no cost, on the test models (their
    weights, not their API views):

    * function-preserving weight rewrites — permute and rescale every conv pair
      (``permute-blocks``, ``scale-blocks``); MetaV reads outputs, so its score must not move;
    * a temperature on the served probabilities, ``softmax(z / T)``: every label is kept, the
      probabilities MetaV reads are not.  Rates are the verdict's (V ≥ λ and p ≤ α)."""
    import torch

    from freqprint.attacks import BlockPermutation, BlockScaling, Compose
    from freqprint.attacks.equivariance import conv_pairs

    models = [m for m in test if m.entry.op not in ("output", "null")]
    rewrite = Compose([BlockPermutation(seed=1), BlockScaling(seed=2)])
    deltas, flips, rewritten = [], 0, 0
    for m in models:
        if not conv_pairs(m.model):
            continue
        before, after = mv.verdict(m.model), mv.verdict(rewrite(m.model))
        rewritten += 1
        deltas.append(abs(after.score - before.score))
        flips += before.derived != after.derived
    temps = {}
    for t in (0.5, 1.0, 2.0, 4.0):
        verdicts = [
            (mv.verdict(lambda x, mm=m.model, tt=t: torch.softmax(task.outputs(mm, x) / tt, 1)).derived, m.label) for m in models
        ]
        pos = [d for d, y in verdicts if y]
        neg = [d for d, y in verdicts if not y]
        temps[str(t)] = {
            "tpr": sum(pos) / len(pos),
            "tnr": sum(not d for d in neg) / len(neg),
            "n_pos": len(pos),
            "n_neg": len(neg),
        }
    return {
        "rewritten": rewritten,
        "max_score_change": max(deltas) if deltas else 0.0,
        "verdicts_flipped": flips,
        "temperature": temps,
    }


def v_rank_only(v: dict[str, Any]) -> bool:
    """The first framed design, measured and replaced (docs/benchmarks.md §13): a verdict read in
    the source's frame with p from V's rank alone, not the closeness's (a verdict's dict)."""
    floor = v.get("probe_floor")
    return bool(
        v["score"] >= v["threshold"]
        and max(v["p_agreement"], v["p_reference"]) <= v["alpha"]
        and (floor is None or (v.get("probe_statistic") is not None and v["probe_statistic"] >= floor))
    )


def _latent_rewrites(mv, test: list, served: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a thief does to a generator at no cost: serve it through a rotation of the latent code,
    ``z ↦ G(A z)`` (the prior N(0, I) is invariant, so the images keep their law;
    :mod:`freqprint.stats.latent`).  Every test suspect (models and APIs), each through its own
    seeded random orthogonal A; the verdicts as served (``served``: the bench's, by name) and
    rotated."""
    import torch

    g = torch.Generator().manual_seed(2024)
    dim = mv.task.input_shape[0]
    rows = []
    for m in test:
        a = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
        v = served[m.name]
        after = mv.verdict(lambda z, q=m.query, a=a: q(z @ a.T.to(z))).derived
        rows.append((m.label, v["derived"], after, v_rank_only(v)))
    pos = [r for r in rows if r[0]]
    neg = [r for r in rows if not r[0]]
    return {
        "derived_v_rank_only": sum(r[3] for r in pos),
        "innocent_accused_v_rank_only": sum(r[3] for r in neg),
        "n_pos": len(pos),
        "n_neg": len(neg),
        "derived_served": sum(r[1] for r in pos),
        "derived_rotated": sum(r[2] for r in pos),
        "innocent_accused_served": sum(r[1] for r in neg),
        "innocent_accused_rotated": sum(r[2] for r in neg),
        "flipped": sum(r[1] != r[2] for r in rows),
        "reads_frame": mv.frame is not None,
    }


def run_metav_task(
    kind: str,
    profile: str = "quick",
    cache_dir: str | Path = ".cache/freqprint/metav",
    out_dir: str | Path = "bench-results/metav",
    root: str | None = None,
    log: Callable[[str], None] = print,
    config: MetaVConfig | None = None,
    device: str = "cpu",
    executor: Any = None,
    alpha: float = 0.01,
) -> dict[str, Any]:
    t0 = time.time()
    manifest = default_manifest(kind, profile)
    log(f"[{kind}] building the ensemble ({len(manifest.entries)} entries, profile {profile})")
    ens: Ensemble = build_ensemble(manifest, cache_dir, root=root, log=log, device=device, executor=executor)
    t_build = time.time() - t0
    task, data = ens.task, ens.data
    train, val, test, ref, panel = (ens.split(s) for s in ("train", "val", "test", "reference", "panel"))
    cfg = config or dataclasses.replace(metav_configs(profile)[kind], floor_quantile=FLOOR_QUANTILE)
    log(f"[{kind}] training MetaV: {len(train)} train / {len(val)} val models, N = {cfg.n_inputs}, {cfg.steps} steps")
    t1 = time.time()
    mv = fit_claim(ens, cfg, alpha, log)
    t_fit = time.time() - t1
    verdicts = _verdicts(mv, test)
    per_suspect = verdicts.pop("seconds_per_suspect")
    results: dict[str, Any] = {"metav": _evaluate(val, test, lambda m: verdicts["verdicts"][m.name]["score"], mv.threshold)}
    results["metav"]["best_step"] = mv.history[-1]["best_step"]
    results["verdict"] = {k: v for k, v in verdicts.items() if k != "verdicts"}
    results["verdict"]["alpha"] = alpha
    results["verdict"]["reference"] = {"n": len(ref), "population": mv.floor.population if mv.floor else {}}
    results["verdict"]["probe_floor"] = {
        "value": mv.floor.probe_floor if mv.floor else None,
        "quantile": mv.floor.floor_quantile if mv.floor else None,
        "positives": mv.floor.probe_positives if mv.floor else 0,
        "statistic": task.probe_statistic_name,
    }
    results["verdict"]["seconds_per_suspect"] = per_suspect
    results["verdict"]["replicates"] = 0 if mv.floor is None else mv.floor.replicates
    results["verdicts"] = verdicts["verdicts"]

    # the claim: write, reload (commitment checked), the reloaded verifier must give the same scores
    out = Path(out_dir)
    claim_path = out / f"metav-{kind}.safetensors"
    commitment = save_claim(mv, claim_path, manifest.to_dict(), ens.hashes, {"profile": profile})
    mv2, _ = load_claim(claim_path)
    same = max(abs(mv2.score(m.query) - results["metav"]["scores"][m.name]) for m in test[:50])
    pr = panel_check(mv2, [m.query for m in panel], [m.name for m in panel])

    t2 = time.time()
    source = ens.source
    base: dict[str, Any] = {}
    sm = SameMistakes().fit(task, source.query, data.test)
    base["same-mistakes"] = _evaluate(val, test, lambda m: sm.score(m.query))
    if kind == "classification":
        ip = IPGuard(seed=1).fit(task, source.query, data.owner)
        base["ipguard"] = _evaluate(val, test, lambda m: ip.score(m.query))
        if source.entry.params.get("fingerprint"):
            ours = FrequencyFingerprintScore(fingerprint_secret(source.entry.seed)).fit(source.model)
            base["ours (white-box)"] = _evaluate(val, test, lambda m: ours.score_model(m.model)["score"], threshold=1 - 1e-6)
    t_base = time.time() - t2
    rewrites = _thief_rewrites(mv, task, test) if kind == "classification" else None
    latent = _latent_rewrites(mv, test, results["verdicts"]) if task.input_symmetry else None
    counts = ens.counts()
    quality = {m.name: m.quality for m in ens.members}
    return {
        "kind": kind,
        "profile": profile,
        "models": len(ens.members),
        "trained": ens.trained,
        "cached": ens.cached,
        "counts": counts,
        "config": cfg.to_dict(),
        "threshold": mv.threshold,
        "history": mv.history[:-1],
        "results": results,
        "baselines": base,
        "rewrites": rewrites,
        "latent_rewrites": latent,
        "claim": {"path": str(claim_path), "commitment": commitment, "reload_max_score_diff": same, "panel": pr.to_dict()},
        "source_quality": source.quality,
        "quality": quality,
        "seconds": {"ensemble": t_build, "metav_fit": t_fit, "baselines": t_base, "total": time.time() - t0},
    }


def run_metav_bench(
    profile: str = "quick",
    kinds: tuple[str, ...] = KINDS,
    cache_dir: str | Path = ".cache/freqprint/metav",
    out_dir: str | Path = "bench-results/metav",
    root: str | None = None,
    log: Callable[[str], None] = print,
    device: str = "cpu",
    executor: Any = None,
) -> dict[str, Any]:
    if profile not in PROFILES:
        from freqprint.errors import FreqprintError

        raise FreqprintError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    t0 = time.time()
    tasks = {k: run_metav_task(k, profile, cache_dir, out_dir, root, log, device=device, executor=executor) for k in kinds}
    res = {"profile": profile, "tasks": tasks, "seconds": time.time() - t0, "metav_claim": METAV_CLAIM}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metav.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "metav.md").write_text(metav_markdown(res))
    return res


def _ci(r: dict[str, Any], k: str) -> str:
    lo, hi = r["ci95"][k]
    return f"{r[k]:.3f} [{lo:.2f}, {hi:.2f}]"


def metav_markdown(res: dict[str, Any]) -> str:
    lines = [f"# MetaV benchmark (profile `{res['profile']}`, {res['seconds'] / 60:.1f} min)", ""]
    for kind, t in res["tasks"].items():
        lines += [
            f"## {kind}",
            "",
            f"{t['models']} models ({t['trained']} trained now, {t['cached']} from the cache); "
            f"ensemble {t['seconds']['ensemble']:.0f} s, MetaV training {t['seconds']['metav_fit']:.0f} s "
            f"(best step {t['results']['metav']['best_step']}), baselines {t['seconds']['baselines']:.0f} s.",
            "",
        ]
        lines += [
            "| method | test +/− | ARUC [95 % CI] | ROC-AUC | TPR@1%FPR | λ (val) | TPR at λ | TNR at λ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        rows = [("MetaV, V alone at λ", t["results"]["metav"])] + list(t["baselines"].items())
        for name, r in rows:
            lines.append(
                f"| {name} | {r['n_pos']}/{r['n_neg']} | {_ci(r, 'aruc')} | {_ci(r, 'roc_auc')} | {r['tpr_at_1pct_fpr']:.3f} | "
                f"{r['threshold']:.3g} | {_ci(r, 'tpr')} | {_ci(r, 'tnr')} |"
            )
        c = METAV_CLAIM
        lines += [
            f"| MetaV, published (abstract) | {c['suspects']} in all | – | – | – | – | {c['tpr']:.3f} | {c['tnr']:.3f} |",
            "",
        ]
        v = t["results"]["verdict"]
        ci = lambda r: f"{r['rate']:.3f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
        cf = v.get("probe_floor") or {}
        floor = (
            f"{cf.get('statistic', 'closeness')} with the source on the probes ≥ {cf['value']:.3f}, the {cf['quantile']:g} "
            f"quantile of {cf['positives']} train/val positives'"
            if cf.get("value") is not None
            else "no probe floor"
        )
        lines += [
            f"**Verdicts** (V ≥ λ, p ≤ α = {v['alpha']:g} and {floor}; p = max(agreement test, rank among the "
            f"{v['reference']['n']} reference models"
            + (
                ", rank of the closeness among them; every model read in the source's latent frame"
                if (t.get("latent_rewrites") or {}).get("reads_frame")
                else ""
            )
            + ")"
            + (
                f"; or, by the replicate route, the margin over {v['replicates']} replicates of the source ranked among the "
                "reference models' and the source's exact rank among the replicates, the agreement test a gate, each route "
                "at α/2 ('V's route alone': the same claim without it, at α)"
                if v.get("replicates")
                else ""
            )
            + f"; {v['seconds_per_suspect'] * 1e3:.0f} ms per suspect; "
            "'no floor': V ≥ λ and p ≤ α, the verdict of a claim without the probe floor (metav train --no-floor); "
            "'joint rule': p = max(agreement test, joint rank by V or closeness) ≤ α without λ, measured and not adopted): "
            f"TPR {ci(v['tpr'])} on {v['tpr']['n']}, TNR {ci(v['tnr'])} on {v['tnr']['n']} (exact 95 % intervals).",
            "",
            "| population | n | right | rate [95 % CI] | wrong: 95 % upper bound | V's route alone right | no floor right | joint rule right | V range | closeness | p range |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in v["populations"]:
            lines.append(
                f"| {'+' if r['label'] else '−'} {r['population']} | {r['n']} | {r['correct']} | {ci(r)} | "
                f"{r['wrong_upper95']:.3f} | {r.get('correct_v_route', '')} | {r.get('correct_no_floor', '')} | {r['correct_joint']} | {r['score_min']:.3f}–{r['score_max']:.3f} | "
                f"{r['closeness_min']:.3f}–{r['closeness_max']:.3f} | {r['p_min']:.2g}–{r['p_max']:.2g} |"
            )
        lines += [
            "",
            "Per family (the verdict; + = derived, its rate is TPR; − = independent, its rate is TNR):",
            "",
            "| family | n | right | rate [95 % CI] | no floor right | joint rule right | quality (median) | V range | closeness | p range |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in v["families"]:
            qual = "–" if f["quality_median"] is None else f"{f['quality_median']:.3f}"
            lines.append(
                f"| {'+' if f['label'] else '−'} {f['family']} | {f['n']} | {f['correct']} | {ci(f)} | "
                f"{f.get('correct_no_floor', '')} | {f['correct_joint']} | {qual} | "
                f"{f['score_min']:.3f}–{f['score_max']:.3f} | {f['closeness_min']:.3f}–{f['closeness_max']:.3f} | "
                f"{f['p_min']:.2g}–{f['p_max']:.2g} |"
            )
        vfam = {(f["label"], f["family"]): f for f in t["results"]["metav"]["families"]}
        alone = [f"{'+' if y else '−'} {fam} ({r['correct']}/{r['n']})" for (y, fam), r in sorted(vfam.items()) if r["rate"] < 1]
        lines += ["", "V alone at λ (no floor) gets these families wrong: " + (", ".join(alone) or "none") + ".", ""]
        fails = {
            name: [
                f"{'+' if f['label'] else '−'} {f['family']} ({f['correct']}/{f['n']})" for f in r["families"] if f["rate"] < 1
            ]
            for name, r in rows[1:]
        }
        lines += [
            "",
            "Baselines' families not fully right at their λ: "
            + "; ".join(f"**{k}**: {', '.join(v) or 'none'}" for k, v in fails.items()),
            "",
        ]
        lines += ["Models per split and family:", "", "| split | families (count) |", "|---|---|"]
        for split, fams in t["counts"].items():
            lines.append(f"| {split} | " + ", ".join(f"{k} ({v})" for k, v in sorted(fams.items())) + " |")
        p = t["claim"]["panel"]
        lines += [
            "",
            f"Claim artefact `{Path(t['claim']['path']).name}` (commitment `{t['claim']['commitment'][:16]}…`), reloaded: "
            f"max score change {t['claim']['reload_max_score_diff']:.2g}.  Fresh panel of {p['n']} independent models: "
            f"{p['false_positives']} false positive{'' if p['false_positives'] == 1 else 's'}, FPR ≤ {p['fpr_upper95']:.2f} "
            "(95 %, Clopper–Pearson).",
            "",
        ]
        rw = t.get("rewrites")
        if rw:
            temps = ", ".join(
                f"T = {k}: {v['tpr']:.3f} / {v['tnr']:.3f}"
                for k, v in sorted(rw["temperature"].items(), key=lambda kv: float(kv[0]))
            )
            lines += [
                f"The thief's free rewrites, on the {rw['temperature']['1.0']['n_pos']} + {rw['temperature']['1.0']['n_neg']} test "
                f"models (not their API views): permute + rescale every conv pair ({rw['rewritten']} models) changes MetaV's "
                f"score by at most {rw['max_score_change']:.2g} and flips {rw['verdicts_flipped']} verdicts; a temperature on the "
                f"served probabilities gives verdict TPR / TNR {temps}.",
                "",
            ]
        lr = t.get("latent_rewrites")
        if lr:
            lines += [
                f"The thief's free rewrite of a generator, every test suspect served through its own random rotation of the "
                f"latent code (`z ↦ G(A z)`; the claim {'reads' if lr['reads_frame'] else 'does not read'} suspects in the "
                f"source's frame): derived called derived {lr['derived_served']}/{lr['n_pos']} as served, "
                f"{lr['derived_rotated']}/{lr['n_pos']} rotated; innocents accused {lr['innocent_accused_served']}/{lr['n_neg']} "
                f"as served, {lr['innocent_accused_rotated']}/{lr['n_neg']} rotated; {lr['flipped']} verdicts flipped. "
                f"Read in the frame with p from V's rank alone (without the closeness's rank): derived "
                f"{lr['derived_v_rank_only']}/{lr['n_pos']}, innocents accused {lr['innocent_accused_v_rank_only']}/{lr['n_neg']}.",
                "",
            ]
        if t.get("source_quality") is not None:
            q = [v for v in t["quality"].values() if v is not None]
            lines += [
                f"Source test {'accuracy' if kind == 'classification' else 'R²'}: {t['source_quality']:.3f}; "
                f"over all models: median {np.median(q):.3f}, min {min(q):.3f}.",
                "",
            ]
    return "\n".join(lines) + "\n"
