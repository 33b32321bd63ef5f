"""``claim create`` and ``claim check``: claim bundles (:mod:`freqprint.verification.claim`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from freqprint.cli._shared import (
    PublishedOpt,
    ReportOpt,
    SignKeyOpt,
    _check_report_opts,
    _secret,
    _write_report,
    app,
    out_console,
)

claim_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Claim bundles: a key bound to the owner's secret (docs/security.md)."
)


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
    from freqprint.verification.claim import create_claim

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
    report: Path | None = ReportOpt,
    sign_key: Path | None = SignKeyOpt,
    published: str | None = PublishedOpt,
) -> None:
    """Does the bundle's key come from this secret?  (And does the suspect carry the secret's
    module?)  Exit 0 = genuine (and found), 1 = not, 2 = error."""
    from freqprint.report import from_claim
    from freqprint.verification.claim import check_claim
    from freqprint.verification.verifier import format_p

    _check_report_opts(report, sign_key)
    rep = check_claim(bundle, _secret(secret, secret_file), suspect=suspect)
    _write_report(report, sign_key, from_claim, rep, inputs=[("claim", bundle), ("suspect", suspect)], published=published)
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
