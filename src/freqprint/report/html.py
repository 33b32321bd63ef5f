"""An evidence report as one self-contained HTML page: no network, no external asset, every
figure inline as SVG.  The first screen says what was decided, on what evidence and with what
error probability; the rest shows the evidence, the accounting, the inputs, how to reproduce it
and what the verdict cannot say."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from freqprint.report.evidence import EvidenceReport
from freqprint.report.figures import to_svg
from freqprint.stats.null import format_p

__all__ = ["render"]

_COLOURS = {"derived": "#b2182b", "not derived": "#1a7f37", "inconclusive": "#6e7781"}
_WORDS = {"derived": "DERIVED", "not derived": "NOT DERIVED", "inconclusive": "INCONCLUSIVE"}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2328;background:#fff;line-height:1.45}
main{max-width:60rem;margin:0 auto;padding:1.2rem 1.5rem 3rem}
.banner{border-left:.6rem solid var(--c);background:#f6f8fa;padding:.9rem 1.2rem;margin-bottom:1rem}
.verdict{font-size:2rem;font-weight:700;color:var(--c);letter-spacing:.04em;margin:0}
.headline{font-size:1.15rem;margin:.3rem 0 .6rem}
.prob{margin:.2rem 0}
.cols{display:flex;gap:1.5rem;flex-wrap:wrap}.cols>div{flex:1 1 18rem}
h2{font-size:1.15rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:1.8rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;font-size:.88rem;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
figure{margin:.6rem 0 1rem}.ftitle{font-weight:600}figcaption{font-size:.85rem;color:#57606a}
svg{max-width:100%;height:auto}
.digest{word-break:break-all}
.small{font-size:.85rem;color:#57606a}
"""


def _p(log10_p: float | None) -> str:
    return "—" if log10_p is None else format_p(log10_p)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in items) + "</ul>"


def _table(head: list[str], rows: list[list[str]], raw: bool = False) -> str:
    cell = (lambda s: s) if raw else escape
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</tbody></table>"
    )


def _scan_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        ["file", "status", "matched", "p-value"],
        [
            [
                str(r.get("path", "")),
                str(r.get("status", "")),
                str(r.get("key") or r.get("parent") or ""),
                _p(r.get("log10_p")),
            ]
            for r in rows
        ],
    )


def render(rep: EvidenceReport) -> str:
    """The page (a string; write it with UTF-8)."""
    c = _COLOURS[rep.verdict]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>freqprint {escape(rep.command)}: {escape(rep.verdict)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f'<section class="banner" style="--c:{c}" id="verdict">',
        f'<p class="small">freqprint {escape(rep.command)} · evidence report</p>',
        f'<p class="verdict">{_WORDS[rep.verdict]}</p>',
        f'<p class="headline">{escape(rep.headline)}</p>',
        f'<p class="prob"><b>Error probability.</b> {escape(rep.error_probability)}</p>',
        "</section>",
        '<div class="cols"><div><b>What this means</b>',
        _list(rep.means),
        "</div><div><b>What it does not mean</b>",
        _list(rep.does_not_mean),
        "</div></div>",
        "<h2>The evidence</h2>",
    ]
    for ch in rep.channels:
        state = ("found" if ch.found else "not found") if ch.ran else "not run"
        parts.append(f"<h3>{escape(ch.name)}: {state}, p = {_p(ch.log10_p) if ch.ran else '—'}</h3>")
        parts.append(f"<p>{escape(ch.summary)}</p>")
        for fig in ch.figures:
            svg = to_svg(fig)
            body = svg if svg is not None else (_scan_table(fig.data.get("rows", [])) if fig.kind == "scan-table" else "")
            parts.append(
                f'<figure><div class="ftitle">{escape(fig.title)}</div>{body}<figcaption>{escape(fig.caption)}</figcaption></figure>'
            )
    if rep.accounting:
        parts.append("<h2>Accounting for several tests (Bonferroni)</h2>")
        parts.append(
            "<p>Each channel's p-value is multiplied by the number of channels that ran; the verdict is 'derived' when the "
            "smallest adjusted p-value is at most α. This holds whatever the dependence between the channels.</p>"
        )
        parts.append(
            _table(
                ["channel", "ran", "p-value", "× channels", "adjusted p", "α share"],
                [
                    [
                        a["channel"],
                        "yes" if a["ran"] else "no",
                        _p(a["log10_p"]) if a["ran"] else "—",
                        str(a["factor"]),
                        _p(a["log10_adjusted"]) if a["ran"] else "—",
                        f"{a['alpha_share']:g}",
                    ]
                    for a in rep.accounting
                ],
            )
        )
    parts.append("<h2>Inputs</h2>")
    parts.append("<p>Every file the verdict read, with its SHA-256; <code>freqprint report verify</code> checks them.</p>")
    parts.append(
        _table(
            ["role", "path", "SHA-256", "bytes"],
            [
                [escape(i.role), escape(i.path), f'<code class="digest">{escape(i.sha256)}</code>', f"{i.bytes:,}"]
                for i in rep.inputs
            ],
            raw=True,
        )
    )
    com = rep.commitment
    parts.append(
        _table(
            ["commitment", "value", "published"],
            [[str(com.get("kind", "")), str(com.get("value") or "—"), str(com.get("published") or "not given")]],
        )
    )
    env = rep.environment
    parts.append(_table(list(env), [[str(v) for v in env.values()]]))
    parts.append("<h2>Reproduce</h2>")
    parts.append(f"<pre>{escape(rep.reproduce)}</pre>")
    parts.append(
        "<p>Rerunning this command on the same files, with the same freqprint, torch version and thread count, writes a "
        "byte-identical JSON report (freqprint's tests check this). A secret given on the command line is never recorded: "
        "set <code>FREQPRINT_SECRET</code>.</p>"
    )
    parts.append("<h2>Limitations that apply here</h2>")
    parts.append(_list(rep.limitations))
    parts.append("<details><summary>The verdict's full record (JSON)</summary>")
    parts.append(f"<pre>{escape(json.dumps(rep.to_dict()['result'], indent=1, sort_keys=True, ensure_ascii=False))}</pre>")
    parts.append("</details>")
    parts.append(f'<p class="small">schema {escape(rep.schema_version)} · freqprint {escape(str(env.get("freqprint")))}</p>')
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
