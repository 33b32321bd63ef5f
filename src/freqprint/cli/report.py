"""``report verify`` and ``report schema``: evidence reports (:mod:`freqprint.report`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from freqprint.cli._shared import app, out_console

report_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Evidence reports: check one (schema, signature, the inputs' digests) or print the JSON schema.",
)


app.add_typer(report_app, name="report")


@report_app.command("verify")
def report_verify_cmd(
    report: Path = typer.Argument(..., help="the report's JSON (its signature, if any, is REPORT.sig beside it)"),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="the signer's Ed25519 public key (PEM): require a signature by exactly this key"
    ),
    root: Path | None = typer.Option(None, "--root", help="folder the report's relative input paths are read from (default: .)"),
    as_json: bool = typer.Option(False, "--json", help="print the check as JSON"),
) -> None:
    """Check a report: its JSON schema, its signature (over the JSON and the HTML page beside it),
    and that every input it names still has the recorded SHA-256.  Exit 0 = all hold, 1 = something does not, 2 = the report is unreadable."""
    from dataclasses import asdict

    from freqprint.report.sign import check_report

    chk = check_report(report, public_key=public_key, root=root)
    if as_json:
        out_console.print_json(json.dumps({**asdict(chk), "ok": chk.ok}))
    else:
        lines = [f"{'OK' if chk.ok else 'FAILED'}: {report} (verdict: {chk.verdict or 'unknown'})"]
        lines += [f"  schema: {e}" for e in chk.schema_errors] or ["  schema: valid"]
        lines += [f"  input {i.role}: {i.status} ({i.path})" for i in chk.inputs]
        lines.append(f"  signature: {chk.signature}" + (f" (key id {chk.key_id})" if chk.key_id else ""))
        lines.append(f"  page: {chk.page}")
        lines += [f"  note: {n}" for n in chk.notes]
        out_console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if chk.ok else 1)


@report_app.command("schema")
def report_schema_cmd() -> None:
    """Print the evidence report's JSON schema (draft 2020-12)."""
    from freqprint.report.evidence import SCHEMA

    print(json.dumps(SCHEMA, indent=2, sort_keys=True, ensure_ascii=False))
