"""``verify``, ``trace`` and ``lineage``: the verdicts (:mod:`freqprint.verification`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from freqprint.cli._shared import (
    DeviceOpt,
    PublishedOpt,
    ReportOpt,
    SignKeyOpt,
    _check_report_opts,
    _secret,
    _write_report,
    app,
    out_console,
)
from freqprint.errors import FreqprintError


@app.command("verify")
def verify_cmd(
    key: Path = typer.Argument(..., help="the owner's key file"),
    suspect: Path = typer.Argument(
        ..., help="suspect weights (.safetensors, .gguf, sharded folder, or a torch file: loaded weights-only)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    alpha: float = typer.Option(1e-6, help="significance level (false-positive probability)"),
    tau: float | None = typer.Option(None, help="τ of the reported score (default: the key's)"),
    search: str = typer.Option("auto", help="auto, all or none: search other conv weights for the fingerprint"),
    no_channel_alignment: bool = typer.Option(False, help="do not search input-channel permutations"),
    max_fits: int = typer.Option(64, help="at most this many candidate tensors are fully aligned"),
    no_describe: bool = typer.Option(False, "--no-describe", help="the verdict only: skip the τ-score and S′ cosine (faster)"),
    exhaustive: bool = typer.Option(
        False, "--exhaustive", help="full alignment search on every candidate, no early stop (slower)"
    ),
    no_gate: bool = typer.Option(
        False,
        "--no-gate",
        help="rank every tensor by an alignment pass instead of the Gram screen's gate (slower; finds renamed modules under heavier noise)",
    ),
    report: Path | None = ReportOpt,
    sign_key: Path | None = SignKeyOpt,
    published: str | None = PublishedOpt,
) -> None:
    """Is the key's fingerprint in the suspect?  Exit 0 = found, 1 = not found, 2 = error."""
    from freqprint.report import from_verify
    from freqprint.stats.screen import GATE_Z
    from freqprint.verification.verifier import format_p, verify

    _check_report_opts(report, sign_key)
    rep = verify(
        key,
        suspect,
        alpha=alpha,
        tau=tau,
        search=search,
        align_channels=not no_channel_alignment,
        max_fits=max_fits,
        describe=not no_describe,
        exhaustive=exhaustive,
        gate=None if no_gate else GATE_Z,
    )
    _write_report(report, sign_key, from_verify, rep, inputs=[("key", key), ("suspect", suspect)], published=published)
    if as_json:
        out_console.print_json(json.dumps(rep.to_dict()))
    elif rep.fitted == 0 and not rep.found:  # nothing in the file reads as the module's filters, or passed the screen
        out_console.print(f"not found: {suspect}\n{rep.summary()}", markup=False, highlight=False)
    else:
        t = Table(title=f"{'FOUND' if rep.found else 'not found'}: {suspect}", show_header=False)
        for k, v in [
            ("decision", "fingerprint found" if rep.found else "fingerprint not found"),
            ("p-value", f"{format_p(rep.log10_p)} (alpha {rep.alpha:g})"),
            ("τ-score", f"{rep.score:.4f} (τ = {rep.tau})" if rep.score is not None else "not computed (--no-describe)"),
            ("mean cosine", f"{rep.mean_cosine:.4f}" if rep.mean_cosine is not None else "not computed"),
            ("filters hit", f"{rep.hits}/{rep.filters} (alignment stage: {rep.stage})"),
            ("layer", f"{rep.layer} ({rep.layers_searched} screened, {rep.fitted} aligned)"),
            ("channels permuted", str(rep.channels_permuted)),
            ("key commitment", rep.key_commitment[:16] + "…"),
        ]:
            t.add_row(k, v)
        out_console.print(t)
    raise typer.Exit(0 if rep.found else 1)


@app.command("trace")
def trace_cmd(
    owner: Path = typer.Argument(..., help="the owner's model file (its recipe gives the architecture for lineage)"),
    suspect: Path = typer.Argument(..., help="suspect weights (.safetensors, .gguf, torch file, sharded folder)"),
    key: Path | None = typer.Option(None, "--key", help="the owner's key (default: extracted from OWNER's module)"),
    secret: str | None = typer.Option(None, help="owner secret (lineage of a backbone seeded from it)"),
    secret_file: Path | None = typer.Option(None, help="file holding the owner secret"),
    init_seed: int | None = typer.Option(
        None, help="the torch seed OWNER was built with (models whose recipe does not record it)"
    ),
    no_lineage: bool = typer.Option(False, "--no-lineage", help="skip the backbone-lineage channel"),
    no_fingerprint: bool = typer.Option(False, "--no-fingerprint", help="skip the frequency-fingerprint channel"),
    parent: bool = typer.Option(
        False, "--parent", help="add the parent-lineage channel: OWNER's released weights as evidence (decoders)"
    ),
    alpha: float = typer.Option(1e-6, help="significance level of the combined verdict"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    report: Path | None = ReportOpt,
    sign_key: Path | None = SignKeyOpt,
    published: str | None = PublishedOpt,
) -> None:
    """Does SUSPECT derive from OWNER?  Every channel with material, one combined p-value that holds
    without assuming the channels independent.  Exit 0 = derived, 1 = not, 2 = error."""

    from freqprint.io.checkpoint import read_recipe
    from freqprint.report import from_trace
    from freqprint.stats.null import format_p
    from freqprint.verification.provenance import LineageUnavailable, trace_files

    _check_report_opts(report, sign_key)
    recipe = read_recipe(owner)  # None for a model trained elsewhere: the fingerprint alone (--no-lineage)
    # the secret is read only where it is used: a secret-seeded backbone needs it (unless --init-seed)
    needs = not no_lineage and init_seed is None and recipe is not None and (recipe.init or {}).get("scheme") == "secret"
    given = secret is not None or secret_file is not None or os.environ.get("FREQPRINT_SECRET")
    sec = _secret(secret, secret_file) if needs or given else None
    try:
        rep = trace_files(
            owner,
            suspect,
            key=key,
            secret=sec,
            seed=init_seed,
            fingerprint=not no_fingerprint,
            lineage=not no_lineage,
            alpha=alpha,
            parent=parent,
        )
    except LineageUnavailable as e:
        raise FreqprintError(f"{e} (or --no-lineage for the fingerprint alone)") from None
    _write_report(
        report, sign_key, from_trace, rep, inputs=[("owner", owner), ("key", key), ("suspect", suspect)], published=published
    )
    if as_json:
        out_console.print_json(json.dumps(rep.to_dict()))
    else:
        t = Table("channel", "p-value", "verdict", "detail", title=f"{'DERIVED' if rep.found else 'not derived'}: {suspect}")
        for c in rep.channels:
            t.add_row(
                c.name,
                format_p(c.log10_p) if c.ran else "—",
                ("found" if c.found else "not found") if c.ran else "not run",
                c.summary,
            )
        m = sum(c.ran for c in rep.channels)
        t.add_row(
            "combined",
            format_p(rep.log10_p),
            "DERIVED" if rep.found else "not derived",
            f"Bonferroni over {m} channel{'s' if m != 1 else ''}, alpha {rep.alpha:g}",
        )
        out_console.print(t)
    raise typer.Exit(0 if rep.found else 1)


@app.command("lineage")
def lineage_cmd(
    parent: Path = typer.Argument(
        ...,
        help="the released parent decoder (.gguf, .safetensors, sharded or Hugging Face folder); with a secret: the public base",
    ),
    suspect: Path = typer.Argument(..., help="the suspect decoder, in any of the same formats"),
    secret: str | None = typer.Option(
        None, help="the owner's secret: also test for the delta seed_delta seeded into the owner's fine-tune of PARENT"
    ),
    secret_file: Path | None = typer.Option(None, help="file holding the owner's secret"),
    scale: float = typer.Option(1e-3, help="the σ the owner's delta was seeded with (changes only the reported z)"),
    alpha: float = typer.Option(1e-6, help="significance level of the exact tests"),
    units: int = typer.Option(128, help="parent MLP units sampled per block"),
    seed: int = typer.Option(0, help="seed of the unit and token samples"),
    device: str = DeviceOpt,
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    report: Path | None = ReportOpt,
    sign_key: Path | None = SignKeyOpt,
) -> None:
    """Does SUSPECT derive from PARENT's released weights (a Llama-architecture decoder)?  An exact
    p-value from the MLP units' order, and a symmetry-invariant unit match whose error rate is
    measured, not exact (docs/security.md).  With the owner's secret, PARENT is the public base the
    owner fine-tuned, and the verdict is whether SUSPECT carries the owner's seeded delta (an exact
    p-value; every fine-tune of the base shares its lineage).  Exit 0 = derived, 1 = not, 2 = error."""
    from freqprint.report import from_lineage
    from freqprint.stats.null import format_p
    from freqprint.verification.parent import MATCH_FRACTION, MATCH_SCORE, parent_lineage

    _check_report_opts(report, sign_key)
    given = secret is not None or secret_file is not None
    sec = _secret(secret, secret_file) if given else None
    rep = parent_lineage(parent, suspect, alpha=alpha, units=units, seed=seed, device=device)
    delta = None
    if sec is not None:
        from freqprint.verification.delta import delta_lineage

        delta = delta_lineage(parent, suspect, sec, scale=scale, alpha=alpha, device=device)
    found = delta.found if delta is not None else rep.found
    _write_report(report, sign_key, from_lineage, rep, delta, inputs=[("parent", parent), ("suspect", suspect)])
    if as_json:
        doc = rep.to_dict()
        if delta is not None:
            doc["delta"] = delta.to_dict()
        out_console.print_json(json.dumps(doc))
    elif rep.reason and delta is None:
        out_console.print(f"not derived: {suspect}\n{rep.summary()}", markup=False, highlight=False)
    else:
        fixed, sampled = rep.fixed
        title = (
            ("CARRIES THE OWNER'S DELTA" if found else "no evidence of the owner's delta")
            if delta
            else ("DERIVED" if found else "not derived")
        )
        t = Table(title=f"{title}: {suspect}", show_header=False)
        rows = []
        if delta is not None:
            rows.append(("owner's delta", delta.summary()))
        rows += [
            (
                "lineage" if delta is not None else "decision",
                f"derived from {parent} ({rep.basis})" if rep.found else "no evidence of derivation",
            ),
            ("unit order", f"p = {format_p(rep.log10_p)} (alpha {rep.alpha:g}; exact): {fixed}/{sampled} sampled units in place"),
            (
                "matched units",
                f"{rep.matched:.2f} of the upper-quartile block's units score >= {MATCH_SCORE} "
                f"({'match' if rep.matched >= MATCH_FRACTION else 'no match'} at {MATCH_FRACTION}; a measured rate, not a p-value)",
            ),
            (
                "blocks",
                f"{len(rep.blocks)} of the parent's {rep.detail.get('parent_blocks')} (suspect: {rep.detail.get('suspect_blocks')})",
            ),
            ("residual alignment", f"relative error {rep.alignment_residual:.3g} (embeddings, shared vocabulary)"),
        ]
        for k, v in rows:
            t.add_row(k, v)
        out_console.print(t)
    raise typer.Exit(0 if found else 1)


@app.command("lineage-tree")
def lineage_tree_cmd(
    models: list[Path] = typer.Argument(..., help="two or more decoders (.gguf, .safetensors, sharded or Hugging Face folders)"),
    alpha: float = typer.Option(1e-6, help="significance level of the pairwise test that joins models into families"),
    units: int = typer.Option(256, help="reference MLP units sampled per block for the coordinates"),
    seed: int = typer.Option(0, help="seed of the unit samples"),
    device: str = DeviceOpt,
    as_json: bool = typer.Option(False, "--json", help="print the tree as JSON"),
) -> None:
    """Which of MODELS derives from which: families by `freqprint lineage`'s test, then each
    family's tree (direct parents, merges, the root) estimated from aligned weight distances and
    direction cues (depth, pruning, quantization, a student's distance to its teacher's line,
    kurtosis).  An estimate, not a p-value: docs/benchmarks.md §14e measures its edge accuracy.
    Exit 0 = some model derives from another, 1 = none does, 2 = error."""
    from freqprint.verification.tree import lineage_tree

    tree = lineage_tree({str(m): m for m in models}, alpha=alpha, units=units, seed=seed, device=device)
    if as_json:
        out_console.print_json(json.dumps(tree.to_dict()))
    else:
        t = Table(title="lineage tree", show_header=True)
        for col in ("model", "parent", "distance", "direction cue"):
            t.add_column(col)
        by_child = {e.child: e for e in tree.edges}
        for fam in tree.families:
            for n in fam:
                e = by_child.get(n)
                if e is None:
                    t.add_row(n, "(root)" if len(fam) > 1 else "(unrelated to the others)", "", "")
                else:
                    origin = tree.detail.get("task_arithmetic", {}).get(n)
                    kind = f" − {origin} (task arithmetic)" if origin else " (merge)" if e.merge else ""
                    t.add_row(n, " + ".join(tree.parents[n]) + kind, f"{e.distance:.4f}", e.cue or "none")
            t.add_section()
        out_console.print(t)
    raise typer.Exit(0 if tree.edges else 1)
