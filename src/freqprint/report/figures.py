"""The pictures of an evidence report, drawn with matplotlib as inline SVG.

Each :class:`~freqprint.report.evidence.Figure` kind has one drawing function here.  The SVG is
deterministic (a fixed hash salt, no date, text kept as text), so a rerun draws the same bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from freqprint.report.evidence import Figure

__all__ = ["DRAW", "to_svg"]

_RC: Any = {
    "svg.hashsalt": "freqprint-report",
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_HIT, _MISS, _NULL = "#b2182b", "#8c96a6", "#e6e9ef"


def _filter_cosines(ax: Any, d: dict[str, Any]) -> None:
    cos = np.asarray(d["cosines"], dtype=float)
    t = float(d["threshold"])
    x = np.arange(len(cos))
    ax.axhspan(0, t, color=_NULL, zorder=0, label="where unrelated filters fall (≥ 99 %)")
    # one line per filter (a single collection: 256 bars as patches cost 10× more to draw and to store)
    ax.vlines(x, 0, cos, colors=np.where(cos >= t, _HIT, _MISS), linewidth=max(0.6, 0.7 * 360 / max(1, len(cos))), zorder=2)
    ax.axhline(t, color="k", lw=0.8, ls="--", label=f"hit threshold {t:.2f}")
    ax.set_xlabel("key filter")
    ax.set_ylabel("cosine with its match")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.8, len(cos) - 0.2)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)


def _hit_tail(ax: Any, d: dict[str, Any]) -> None:
    from freqprint.stats.null import log_binom_tail  # the verifier's own tail: the curve meets the verdict's p

    n, p1, factor, hits = int(d["filters"]), float(d["p1"]), float(d["log10_factor"]), int(d["hits"])
    k = np.arange(n + 1)
    tail = np.array([min(0.0, log_binom_tail(int(i), n, p1) / math.log(10) + factor) for i in k])
    la = math.log10(float(d["alpha"]))
    floor = min(la, float(tail[hits])) - 5
    ax.plot(k, np.maximum(tail, floor), color="#2166ac", lw=1.2, label="an unrelated model reaches ≥ k hits")
    ax.axhline(la, color="k", lw=0.8, ls="--", label=f"α = {d['alpha']:g}")
    ax.plot([hits], [tail[hits]], "o", color=_HIT, ms=7, label=f"this suspect: {hits} hits")
    ax.set_xlabel("hits k")
    ax.set_ylabel("log₁₀ probability")
    ax.set_ylim(floor, 1)
    ax.legend(loc="lower left", frameon=False, fontsize=8)


def _map_columns(n: int) -> int:
    return min(16, n) if n <= 64 else 32


def _filter_map(ax: Any, d: dict[str, Any]) -> None:
    cos = np.asarray(d["cosines"], dtype=float)
    match = list(d["match"])
    cols = _map_columns(len(cos))
    rows = math.ceil(len(cos) / cols)
    grid = np.full((rows, cols), np.nan)
    grid.flat[: len(cos)] = cos
    ax.pcolormesh(grid, cmap="Reds", vmin=0, vmax=1, edgecolors="white", linewidth=1)
    if len(cos) <= 128:
        for i, (c, m) in enumerate(zip(cos, match)):
            r, q = divmod(i, cols)
            ax.text(
                q + 0.5,
                r + 0.5,
                "–" if m < 0 else str(m),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if c > 0.6 else "black",
            )
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    for s in ("left", "bottom"):
        ax.spines[s].set_visible(False)


def _neg_log_bars(ax: Any, names: list[str], log10_p: list[float | None], line: float | None, label: str) -> None:
    vals = [0.0 if v is None else max(0.0, -float(v)) for v in log10_p]
    y = np.arange(len(names))
    ax.barh(y, vals, color=[_HIT if v >= line else _MISS for v in vals] if line is not None else "#2166ac")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("−log₁₀ p (larger: stronger evidence)")
    if line is not None:
        ax.axvline(line, color="k", lw=0.8, ls="--", label=label)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
    for yi, v in zip(y, vals):
        ax.text(v, yi, f" {v:.1f}", va="center", fontsize=8)


def _channels(ax: Any, d: dict[str, Any]) -> None:
    line = -math.log10(float(d["alpha"]) / int(d["m"]))
    _neg_log_bars(ax, d["names"], d["log10_p"], line, f"α/{d['m']}")


def _per_layer(ax: Any, d: dict[str, Any]) -> None:
    _neg_log_bars(ax, d["names"], d["log10_p"], None, "")


def _blocks(ax: Any, d: dict[str, Any]) -> None:
    x = np.asarray(d["block"])
    ax.bar(x, d["fixed"], color="#2166ac", label="units in place (exact test)")
    ax.plot(x, d["matched"], "D", color=_HIT, ms=4, label="units matched (any order)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("parent block")
    ax.set_ylabel("share of sampled units")
    ax.legend(loc="lower right", frameon=False, fontsize=8)


def _claim_blocks(ax: Any, d: dict[str, Any]) -> None:
    y = np.arange(len(d["blocks"]))
    ax.barh(y, d["cosines"], color="#2166ac")
    ax.set_yticks(y, d["blocks"])
    ax.set_xlim(-0.1, 1.05)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("mean cosine of the key's kernels with W₀")


def _reference_rank(ax: Any, d: dict[str, Any]) -> None:
    ref = np.asarray(d["reference"], dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(ref))
    ax.plot(ref, jitter, "o", color=_MISS, ms=3, alpha=0.7, label=f"{len(ref)} reference models")
    ax.plot([d["score"]], [0], "D", color=_HIT, ms=9, label="this suspect")
    ax.axvline(float(d["threshold"]), color="k", lw=0.8, ls="--", label="threshold λ")
    ax.set_yticks([])
    ax.set_ylim(-1, 1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("meta-verifier score V")
    ax.spines["left"].set_visible(False)
    ax.legend(loc="upper center", frameon=False, fontsize=8, ncol=3, bbox_to_anchor=(0.5, 1.18))


DRAW: dict[str, tuple[Callable[[Any, dict[str, Any]], None], tuple[float, float]]] = {
    "filter-cosines": (_filter_cosines, (7.0, 2.4)),
    "hit-tail": (_hit_tail, (7.0, 2.4)),
    "filter-map": (_filter_map, (7.0, 2.4)),
    "channels": (_channels, (7.0, 1.6)),
    "per-layer": (_per_layer, (7.0, 2.2)),
    "blocks": (_blocks, (7.0, 2.4)),
    "claim-blocks": (_claim_blocks, (7.0, 1.4)),
    "reference-rank": (_reference_rank, (7.0, 1.8)),
}


def to_svg(fig: Figure) -> str | None:
    """The figure as an ``<svg>`` element (no XML prologue), or None for a kind drawn as a table."""
    if fig.kind not in DRAW:
        return None
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure as MplFigure

    draw, size = DRAW[fig.kind]
    if fig.kind == "filter-map":  # square cells, as many rows as the filters need
        n = len(fig.data["cosines"])
        cols = _map_columns(n)
        size = (size[0], 0.3 + 6.6 / cols * math.ceil(n / cols))
    with matplotlib.rc_context(_RC):
        f = MplFigure(figsize=size, layout="constrained")
        FigureCanvasSVG(f)
        draw(f.add_subplot(), fig.data)
        buf = io.StringIO()
        f.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]
