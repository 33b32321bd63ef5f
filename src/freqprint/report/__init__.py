"""Evidence reports: every verdict as a self-contained HTML page and the same content as JSON, with
the inputs' digests, the environment, the reproducing command, the limitations that apply, and an
optional Ed25519 signature (``--report PATH [--sign-key PEM]`` on ``verify``, ``trace``,
``lineage``, ``claim check``, ``metav verify`` and ``scan``; ``freqprint report verify``).

    rep = freqprint.verify("owner.key", "suspect.safetensors")
    ev = from_verify(rep, inputs=digest_inputs([("key", "owner.key"), ("suspect", "suspect.safetensors")]),
                     reproduce="freqprint verify owner.key suspect.safetensors", environment=environment())
    write_report(ev, "verdict.html")          # verdict.html and verdict.json
"""

from __future__ import annotations

import os
from pathlib import Path

from freqprint.report.build import from_claim, from_lineage, from_metav, from_scan, from_trace, from_verify, scan_rows
from freqprint.report.evidence import (
    SCHEMA,
    SCHEMA_VERSION,
    Channel,
    EvidenceReport,
    Figure,
    InputDigest,
    digest_inputs,
    environment,
    reproducing_command,
)

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Channel",
    "EvidenceReport",
    "Figure",
    "InputDigest",
    "digest_inputs",
    "environment",
    "from_claim",
    "from_lineage",
    "from_metav",
    "from_scan",
    "from_trace",
    "from_verify",
    "numbered",
    "report_paths",
    "reproducing_command",
    "scan_rows",
    "write_report",
]


def numbered(path: str | os.PathLike[str], i: int, n: int) -> Path:
    """The ``i``-th of ``n`` reports written for one ``--report PATH``: PATH itself when n = 1,
    else PATH-1, PATH-2, ... (a suffix kept last)."""
    p = Path(path)
    return p if n == 1 else p.with_name(f"{p.name.removesuffix(p.suffix)}-{i}{p.suffix}")


def report_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(html, json)`` for ``--report PATH``: ``PATH`` with suffix ``.html`` and ``.json`` (a
    path given as ``x.html`` or ``x.json`` or ``x`` names the same pair)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix.lower() in (".html", ".htm", ".json") else p
    return Path(str(stem) + ".html"), Path(str(stem) + ".json")


def write_report(rep: EvidenceReport, path: str | os.PathLike[str], sign_key: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the HTML page and the JSON (and, with ``sign_key``, the JSON's signature); returns
    the files written.  The folder is created if needed."""
    from freqprint.report.html import render

    html_path, json_path = report_paths(path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(rep.to_json(), encoding="utf-8")
    html_path.write_text(render(rep), encoding="utf-8")
    out = [html_path, json_path]
    if sign_key is not None:
        from freqprint.report.sign import sign_report

        out.append(sign_report(json_path, sign_key))
    return out
