"""``train``, ``embed``, ``extract``, ``finetune``, ``attack``, ``study``: make and change models
(the workflows themselves are :mod:`freqprint.workflows`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from freqprint.cli._shared import DataOpt, DeviceOpt, LimitOpt, RootOpt, _data, _secret, _train_cfg, app, out_console
from freqprint.errors import FreqprintError


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
        1, help="L_attack on every k-th batch only, weighted k·λ (cheaper above 1; docs/benchmarks.md §12d)"
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
    from freqprint.fingerprint import FingerprintConfig
    from freqprint.io.checkpoint import read_recipe
    from freqprint.models import default_target
    from freqprint.workflows import embed

    found = read_recipe(init) if init else None
    base = found.model if found is not None else model
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
    from freqprint.verification.key import extract

    given = secret is not None or secret_file is not None or os.environ.get("FREQPRINT_SECRET")
    k = extract(model, frequencies=frequencies, tau=tau, target=target, secret=_secret(secret, secret_file) if given else None)
    k.save(out)
    out_console.print(f"key: {k.filters} filters x {k.channels} channels x {sum(k.multiplicity)} frequencies of {k.layer}")
    out_console.print(f"sha256 commitment {k.commitment}  created {k.created}", soft_wrap=True)


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
    from freqprint.io.checkpoint import load_model, save_model
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
    from freqprint.io.checkpoint import load_model, save_model
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
