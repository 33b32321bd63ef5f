"""Shared by the command modules: the root ``app``, the consoles, options several commands take,
and the small helpers that turn options into library arguments.  Imports no torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from freqprint.errors import FreqprintError

app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    help="Frequency fingerprints for neural networks that survive fine-tuning.",
)


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
    """Progress lines of long runs, printed as they are (no rich markup, no emoji codes: a model
    named ``kd:train:…`` stays as it is)."""
    console.print(message, markup=False, highlight=False, emoji=False)


def _secret(secret: str | None, secret_file: Path | None) -> str:
    if secret_file is not None:
        from freqprint.io.files import read_secret_file

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


ReportOpt = typer.Option(
    None, "--report", help="also write an evidence report: PATH.html (self-contained, for a person) and PATH.json"
)


SignKeyOpt = typer.Option(None, "--sign-key", help="sign the report's JSON with this Ed25519 private key (PEM; needs --report)")


PublishedOpt = typer.Option(None, "--published", help="where the key's or claim's commitment was published, for the report")


def _check_report_opts(report: Path | None, sign_key: Path | None) -> None:
    if sign_key is not None and report is None:
        raise FreqprintError("--sign-key signs a report: give --report PATH too")


def _write_report(path: Path | None, sign_key: Path | None, build: Any, *args: Any, inputs: list, **kw: Any) -> None:
    """With ``--report``: the verdict's evidence report (``build`` from :mod:`freqprint.report`),
    the ``(role, path)`` files it read digested; the files written go to stderr."""
    if path is None:
        return
    from freqprint.report import digest_inputs, environment, reproducing_command, write_report

    ev = build(*args, inputs=digest_inputs(inputs), reproduce=reproducing_command(), environment=environment(), **kw)
    files = write_report(ev, path, sign_key)
    console.print("report written: " + ", ".join(map(str, files)), markup=False, highlight=False)
