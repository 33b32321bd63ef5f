"""``registry add|add-parent|list|rm`` and ``scan``: the key store and bulk scans (:mod:`freqprint.scan`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from freqprint.cli._shared import SignKeyOpt, _check_report_opts, _secret, _write_report, app, console, out_console
from freqprint.errors import FreqprintError

registry_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="A registry of owner keys and claim bundles (one SQLite file), for scans."
)


app.add_typer(registry_app, name="registry")


RegistryArg = typer.Option(Path("freqprint-registry.db"), "--registry", "-r", help="the registry file (SQLite)")


@registry_app.command("add")
def registry_add_cmd(
    keys: list[Path] = typer.Argument(..., help="key files or claim bundles"),
    registry: Path = RegistryArg,
    name: str | None = typer.Option(None, help="the entry's name (one key only; default: the file's stem)"),
    always_test: bool = typer.Option(
        False, "--always-test", help="skip the screen for these keys (Transformer hosts: docs/security.md)"
    ),
    secret: str | None = typer.Option(None, help="the keys' owner secret (prefer --secret-file or FREQPRINT_SECRET)"),
    secret_file: Path | None = typer.Option(None, help="file holding the keys' owner secret (checked, not stored)"),
    allow_bare: bool = typer.Option(
        False, "--allow-bare", help="register keys given without a secret, unverified (marked bare in every match)"
    ),
) -> None:
    """Register keys.  Each is checked against its commitment and, with the owner's secret, against
    the initialisation the secret gives its module: a verified key is matched against that
    initialisation only, so a key built from an innocent model cannot make a scan accuse it.
    Without a secret a key is refused unless --allow-bare."""
    from freqprint.scan import KeyStore

    if name is not None and len(keys) != 1:
        raise FreqprintError("--name needs exactly one key")
    given = secret_file is not None or bool(secret) or bool(os.environ.get("FREQPRINT_SECRET"))
    owner_secret = _secret(secret, secret_file) if given else None
    with KeyStore(registry) as reg:
        for k in keys:
            e = reg.add(k, name=name, always_test=always_test, secret=owner_secret, allow_bare=allow_bare)
            out_console.print(
                f"added {e.name} ({e.kind}, {e.trust}, {e.filters}x{e.channels}x{e.kernel_size}x{e.kernel_size}, "
                f"{e.commitment[:12]}…)",
                markup=False,
                highlight=False,
            )


@registry_app.command("add-parent")
def registry_add_parent_cmd(
    model: Path = typer.Argument(..., help="a released decoder (.gguf, .safetensors, sharded or Hugging Face folder)"),
    registry: Path = RegistryArg,
    name: str | None = typer.Option(None, help="the parent's name (default: the file's stem)"),
    units: int = typer.Option(32, help="MLP units per block the stored sketch keeps"),
) -> None:
    """Register a released decoder as a parent: a scan then reports every upload derived from its
    weights (`freqprint lineage`'s test; the sketch is stored, not the file)."""
    from freqprint.scan import KeyStore

    with KeyStore(registry) as reg:
        e = reg.add_parent(model, name=name, units=units)
    out_console.print(
        f"added parent {e.name} ({e.blocks} blocks of width {e.width}, sketch {e.sketch_bytes / 1e6:.1f} MB, sha256 {e.digest[:12]}…)",
        markup=False,
        highlight=False,
    )


@registry_app.command("list")
def registry_list_cmd(
    registry: Path = RegistryArg,
    as_json: bool = typer.Option(False, "--json"),
    parents: bool = typer.Option(False, "--parents", help="list the registered parents instead of the keys"),
) -> None:
    """The registered keys (or, with --parents, the registered parents)."""
    from dataclasses import asdict

    from freqprint.scan import KeyStore

    with KeyStore(registry, create=False) as reg:
        entries = reg.entries()
        parent_entries = reg.parent_entries()
    if parents:
        if as_json:
            out_console.print_json(json.dumps([asdict(p) for p in parent_entries]))
            return
        t = Table("name", "blocks", "width", "sketch", "sha256", "added", title=f"{registry}: {len(parent_entries)} parents")
        for p in parent_entries:
            t.add_row(p.name, str(p.blocks), str(p.width), f"{p.sketch_bytes / 1e6:.1f} MB", p.digest[:12] + "…", p.added)
        out_console.print(t)
        return
    if as_json:
        out_console.print_json(json.dumps([asdict(e) for e in entries]))
        return
    t = Table(title=f"{registry}: {len(entries)} keys")
    for c in ("name", "kind", "trust", "shape", "basis", "anchored", "screen", "commitment", "added"):
        t.add_column(c)
    for e in entries:
        t.add_row(
            e.name,
            e.kind,
            e.trust,
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
    """Remove keys (or registered parents, by name) from the registry."""
    from freqprint.scan import KeyStore

    with KeyStore(registry, create=False) as reg:
        parent_names = {p.name for p in reg.parent_entries()}
        for n in names:
            removed = reg.remove_parent(n).name if n in parent_names else reg.remove(n).name
            out_console.print(f"removed {removed}", markup=False, highlight=False)


@app.command("scan")
def scan_cmd(
    paths: list[Path] = typer.Argument(
        ..., help="checkpoint files and folders (walked recursively; a Hugging Face hub cache folder is read by revision)"
    ),
    registry: Path = RegistryArg,
    out: Path = typer.Option(Path("scan.jsonl"), "--out", "-o", help="JSON Lines output, appended; a rerun skips what it holds"),
    alpha: float = typer.Option(1e-6, help="family-wise significance level over all registered keys"),
    executor: str = typer.Option("local", help="local (a process pool) or ray"),
    workers: int = typer.Option(1, help="worker processes (local) or CPUs of a local Ray cluster"),
    address: str | None = typer.Option(None, help="Ray cluster address (auto, ray://host:port); default: start a local one"),
    no_screen: bool = typer.Option(
        False, "--no-screen", help="run the full test against every key (slow; never misses what the test finds)"
    ),
    no_probe: bool = typer.Option(
        False,
        "--no-probe",
        help="screen every wide tensor whole instead of probing a few random channels first "
        "(about 8x slower on a ResNet-18; no probe misses: docs/benchmarks.md §12h)",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="also write a summary page of the scan's records: PATH.html and PATH.json"
    ),
    sign_key: Path | None = SignKeyOpt,
) -> None:
    """Match every checkpoint under PATHS against the registry.  Exit 0 = done (matches or not), 2 = error."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from freqprint.scan.bulk import check_scan_options, scan

    if not registry.is_file():
        raise FreqprintError(f"{registry}: no such registry (create one with: freqprint registry add KEY --registry {registry})")
    check_scan_options(paths, registry, alpha, executor, workers)  # before the progress bar draws anything
    _check_report_opts(report, sign_key)
    found: list[tuple[str, str, float, str]] = []
    derived: list[tuple[str, str, float, str]] = []
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
                found.extend((rec["path"], m["key"], m["log10_p"], m["trust"]) for m in rec["matches"])
                derived.extend((rec["path"], p["parent"], p["log10_p_registry"], p["basis"]) for p in rec.get("derived_from", []))
            elif rec and rec["status"] == "error":
                errors.append((rec["path"], rec["error"]))

        summ = scan(
            paths,
            registry,
            out,
            alpha=alpha,
            screen=not no_screen,
            probe=not no_probe,
            executor=executor,
            workers=workers,
            address=address,
            progress=progress,
        )
    from freqprint.verification.verifier import format_p

    t = Table(title=f"scan: {summ.checkpoints} checkpoints in {summ.seconds:.1f} s -> {out}")
    for c in ("matched", "none", "errors", "skipped (done before)"):
        t.add_column(c)
    t.add_row(str(summ.matched), str(summ.none), str(summ.errors), str(summ.skipped))
    out_console.print(t)
    for path, key, lp, trust in found:  # plain lines: paths are never wrapped
        note = "  (bare key: unverified, evidence only for its holder)" if trust != "verified" else ""
        out_console.print(f"match: {path}  key {key}  p = {format_p(lp)}{note}", markup=False, highlight=False, soft_wrap=True)
    for path, parent, lp, basis in derived:
        how = f"p = {format_p(lp)}" if basis == "unit order" else "matched units: a measured rate, not a p-value"
        out_console.print(f"derived: {path}  from parent {parent}  ({how})", markup=False, highlight=False, soft_wrap=True)
    for path, err in errors[:20]:
        out_console.print(f"unreadable: {path}: {err}", markup=False, highlight=False, soft_wrap=True)
    if report is not None:
        from freqprint.report import from_scan, scan_rows

        _write_report(report, sign_key, from_scan, scan_rows(out), inputs=[("registry", registry)], alpha=alpha)
