"""``metav build|train|verify|bench``: black-box MetaV (:mod:`freqprint.metav`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from freqprint.cli._shared import (
    DeviceOpt,
    PoolAddressOpt,
    PoolExecutorOpt,
    PoolGpusOpt,
    PoolWorkersOpt,
    PublishedOpt,
    RootOpt,
    SignKeyOpt,
    _check_report_opts,
    _log,
    _pool_executor,
    _write_report,
    app,
    out_console,
)
from freqprint.errors import FreqprintError

metav_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="MetaV: black-box, task-agnostic fingerprints (learned inputs + a meta-verifier).",
)


app.add_typer(metav_app, name="metav")


MetavCacheOpt = typer.Option(
    Path(".cache/freqprint/metav"), "--cache", help="where trained ensemble models are cached (by recipe hash)"
)


def _metav_manifest(manifest: Path | None, task: str, profile: str):
    from freqprint.metav import Manifest, default_manifest

    return Manifest.load(manifest) if manifest is not None else default_manifest(task, profile)


@metav_app.command("build")
def metav_build_cmd(
    task: str = typer.Option("classification", help="classification, regression or generation (without --manifest)"),
    profile: str = typer.Option("quick", help="tiny, quick or large (without --manifest)"),
    manifest: Path | None = typer.Option(None, help="a manifest file (JSON) instead of the default ensemble"),
    write_manifest: Path | None = typer.Option(None, help="write the manifest here (edit it, then pass it with --manifest)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="write/show the manifest, train nothing"),
    cache: Path = MetavCacheOpt,
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
    executor: str = PoolExecutorOpt,
    workers: int = PoolWorkersOpt,
    address: str | None = PoolAddressOpt,
    gpus_per_job: float = PoolGpusOpt,
) -> None:
    """Train (or load from the cache) every model of a suspect ensemble (in parallel on an executor:
    ``--executor ray --address auto --gpus-per-job 1 --device cuda`` on a GPU cluster)."""
    from freqprint.metav import build_ensemble

    m = _metav_manifest(manifest, task, profile)
    if write_manifest is not None:
        m.save(write_manifest)
        out_console.print(f"manifest written: {write_manifest} ({len(m.entries)} entries, sha256 {m.sha256()[:16]}…)")
    if dry_run:
        return
    with _pool_executor(executor, workers, address, gpus_per_job) as ex:
        ens = build_ensemble(m, cache, root=str(data_root) if data_root else None, log=_log, device=device, executor=ex)
    t = Table(
        title=f"{m.task['kind']} ensemble: {len(ens.members)} models ({ens.trained} trained, {ens.cached} cached, {ens.seconds:.0f} s)"
    )
    for c in ("split", "models", "derived", "independent", "families"):
        t.add_column(c)
    for split, fams in ens.counts().items():
        pos = sum(v for k, v in fams.items() if k.startswith("+"))
        t.add_row(split, str(sum(fams.values())), str(pos), str(sum(fams.values()) - pos), ", ".join(sorted(fams)))
    out_console.print(t)


@metav_app.command("train")
def metav_train_cmd(
    out: Path = typer.Option(..., "--out", help="the claim artefact to write (.safetensors)"),
    task: str = typer.Option("classification", help="classification, regression or generation (without --manifest)"),
    profile: str = typer.Option("quick", help="tiny, quick or large (without --manifest)"),
    manifest: Path | None = typer.Option(None, help="a manifest file (JSON) instead of the default ensemble"),
    inputs: int | None = typer.Option(None, help="number of fingerprint inputs N (default: the profile's)"),
    steps: int | None = typer.Option(None, help="training steps (default: the profile's)"),
    updates: str | None = typer.Option(None, help="simultaneous or alternating"),
    augment: float | None = typer.Option(None, help="input-augmentation strength (0: none)"),
    floor_quantile: float | None = typer.Option(
        None,
        help="the probe floor: a 'derived' verdict also needs the task's probe statistic with the source on natural inputs "
        "(label agreement for a classifier, closeness otherwise) >= this quantile of the training and validation "
        "positives' (default 0.05; docs/benchmarks.md §13 measures its price)",
    ),
    no_floor: bool = typer.Option(
        False, "--no-floor", help="no probe floor: V's score and the p-value alone decide (accuses far models more often)"
    ),
    seed: int = typer.Option(0),
    alpha: float = typer.Option(
        0.01, help="the p-value a 'derived' verdict needs (the reference split must hold >= 1/alpha - 1 models)"
    ),
    cache: Path = MetavCacheOpt,
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
) -> None:
    """Train the fingerprint inputs and the meta-verifier, calibrate λ and the floor, write the committed claim."""
    from freqprint.metav.trainer import train_claim

    m = _metav_manifest(manifest, task, profile)
    r = train_claim(
        m,
        out,
        cache,
        seed=seed,
        n_inputs=inputs,
        steps=steps,
        updates=updates,
        augment=augment,
        floor_quantile=floor_quantile,
        no_floor=no_floor,
        root=data_root,
        device=device,
        alpha=alpha,
        log=_log,
    )
    floor = (
        f"\n  and {r.probe_statistic} >= {r.probe_floor:.4f} with the source on the natural probes (the "
        f"{r.floor_quantile:g} quantile of the training and validation positives')"
        if r.probe_floor is not None and r.floor_quantile is not None
        else ""
    )
    reps = (
        f"\n  or, instead of V's score, a replicate margin above the reference's over {r.replicates} replicates of the "
        f"source (each route at alpha/2)"
        if r.replicates
        else ""
    )
    out_console.print(
        f"claim written: {r.path}\n  task {r.kind}, N = {r.n_inputs}, λ = {r.threshold:.4f} (calibrated on {r.validation_models} "
        f"validation models; their ARUC {r.validation_aruc:.3f}); a verdict needs p <= {r.alpha:g} against "
        f"{r.reference_models} reference models{floor}{reps}\n  commitment {r.commitment}\n"
        "  publish the commitment now: it is what dates the claim",
        markup=False,
        highlight=False,
    )


def _metav_paths(items: list[str]) -> list[str]:
    from freqprint.scan.bulk import find_checkpoints

    out: list[str] = []
    for s in items:
        p = Path(s)
        out.extend([str(c) for c in find_checkpoints([p])] if p.is_dir() else [s])
    return out


@metav_app.command("verify")
def metav_verify_cmd(
    claim: Path = typer.Argument(..., help="a MetaV claim artefact"),
    suspects: list[str] | None = typer.Argument(
        None, help="model files (freqprint recipe), or py:MODULE:FUNCTION callables with --allow-code"
    ),
    panel: list[str] | None = typer.Option(
        None, "--panel", help="independent models (files or folders) to re-check the claim on"
    ),
    allow_code: bool = typer.Option(
        False,
        "--allow-code",
        help="let py:MODULE:FUNCTION suspects import and run that Python code (never for a spec you did not write)",
    ),
    alpha: float | None = typer.Option(None, help="the p-value a 'derived' verdict needs (default: the claim's)"),
    as_json: bool = typer.Option(False, "--json"),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="also write an evidence report per suspect: PATH.html and PATH.json (PATH-1, PATH-2, ... for several)",
    ),
    sign_key: Path | None = SignKeyOpt,
    published: str | None = PublishedOpt,
) -> None:
    """Score suspects (exit 0: every one judged derived, 1: not) and/or re-check the claim on a panel.

    Derived means V's score reaches the claim's λ, the verdict's p-value (the larger of the
    agreement test's and the rank among the claim's reference models; for a generator, read in
    the source's latent frame, also the closeness's rank) is at most alpha, and the
    task's probe statistic with the source on the claim's natural probe inputs reaches the
    claim's probe floor, if it has one (``metav train --floor-quantile``).  The closeness on the
    probes and its own rank among the reference models are printed beside it.  A claim with
    replicates of the source (the default generation claim) has a second route: the suspect's
    closeness to the source minus its largest closeness to a replicate (the suspect read in
    each one's frame), ranked among the reference models' and the source's own rank among the
    replicates, the agreement test a gate; each route at alpha/2, p their union.
    A py:MODULE:FUNCTION suspect imports MODULE and runs it: refused without --allow-code."""
    from freqprint.metav import load_claim, panel_check
    from freqprint.metav.suspects import CODE_PREFIX, load_suspect
    from freqprint.report import from_metav, numbered

    _check_report_opts(report, sign_key)
    code = [s for s in [*(suspects or []), *(panel or [])] if s.startswith(CODE_PREFIX)]
    if code and not allow_code:
        raise FreqprintError(
            f"{code[0]} is Python code: importing it runs that module with your rights; "
            "pass --allow-code only for code you trust (never for a spec another party handed you)"
        )
    if alpha is not None and not 0.0 < alpha < 1.0:
        raise FreqprintError(f"--alpha must be in (0, 1), got {alpha}")
    mv, meta = load_claim(claim)
    if not suspects and not panel:
        raise FreqprintError("give suspects to verify, or --panel models to re-check the claim on")
    rows = [{"suspect": s, **mv.verify(load_suspect(s, allow_code), alpha)} for s in (suspects or [])]
    doc: dict = {"claim": str(claim), "commitment": meta["commitment"], "task": meta["task"]["kind"], "suspects": rows}
    if report is not None and rows:
        assert mv.floor is not None  # load_claim gives a calibrated claim
        ref = mv.floor.scores.tolist()
        about = {"commitment": meta["commitment"], "task": meta["task"]["kind"], "population": mv.floor.population}
        for i, r in enumerate(rows, 1):
            _write_report(
                numbered(report, i, len(rows)),
                sign_key,
                from_metav,
                r,
                about,
                ref,
                inputs=[("claim", claim), ("suspect", r["suspect"])],
                published=published,
            )
    if panel:
        names = _metav_paths(panel)
        doc["panel"] = panel_check(mv, [load_suspect(n, allow_code) for n in names], names, alpha).to_dict()
    if as_json:
        out_console.print_json(json.dumps(doc))
    else:
        for r in rows:
            out_console.print(
                f"{'DERIVED' if r['derived'] else 'not derived'}: {r['suspect']}: p = {r['p_value']:.3g} (alpha {r['alpha']:g}; "
                f"agreement {r['agreement']:.3f}, p {r['p_agreement']:.3g}; rank among {r['reference_n']} reference models, "
                f"p {r['p_reference']:.3g}); score {r['score']:.4f}, threshold {r['threshold']:.4f}; "
                f"closeness {r['closeness']:.4f}"
                + (
                    ""
                    if r["probe_floor"] is None
                    else f"; probe statistic {r['probe_statistic']:.4f}, floor {r['probe_floor']:.4f}"
                )
                + f" (its rank: p {r['p_closeness']:.3g})"
                + (
                    f"; replicate margin {r['margin']:+.4f} over {r['replicates']} replicates (its rank: p {r['p_margin']:.3g}; "
                    f"the source's rank among them: p {r['p_replicates']:.3g})"
                    if r.get("margin") is not None
                    else ""
                )
                + ("; read in the source's latent frame" if r.get("in_frame") else ""),
                markup=False,
                highlight=False,
            )
        if panel:
            p = doc["panel"]
            out_console.print(
                f"panel: {p['false_positives']} of {p['n']} independent models flagged; FPR {p['fpr']:.3f}, "
                f"95 % upper bound {p['fpr_upper95']:.3f} (Clopper–Pearson)",
                markup=False,
                highlight=False,
            )
    if rows and not all(r["derived"] for r in rows):
        raise typer.Exit(1)


@metav_app.command("bench")
def metav_bench_cmd(
    profile: str = typer.Option("quick", help="tiny (smoke), quick (2 CPU cores, < 45 min) or large (a GPU)"),
    tasks: str = typer.Option("classification,regression,generation", help="comma-separated task kinds"),
    out: Path = typer.Option(Path("bench-results/metav"), "--out", help="folder for metav.json, metav.md and the claims"),
    cache: Path = MetavCacheOpt,
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
    executor: str = PoolExecutorOpt,
    workers: int = PoolWorkersOpt,
    address: str | None = PoolAddressOpt,
    gpus_per_job: float = PoolGpusOpt,
) -> None:
    """MetaV beside IPGuard, "same mistakes" and the frequency fingerprint, per task kind, on held-out suspects."""
    from freqprint_bench.metav import KINDS, run_metav_bench

    kinds = tuple(k.strip() for k in tasks.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise FreqprintError(f"unknown task kind(s) {', '.join(bad) or '(none)'}; choose from {', '.join(KINDS)}")
    with _pool_executor(executor, workers, address, gpus_per_job) as ex:
        run_metav_bench(profile, kinds, cache, out, str(data_root) if data_root else None, log=_log, device=device, executor=ex)
    out_console.print((out / "metav.md").read_text(), markup=False, highlight=False)
    out_console.print(f"written: {out / 'metav.json'}, {out / 'metav.md'}")
