"""The thief's price table for structural rewrites (docs/benchmarks.md §8b, issue 25).

For each host (SmallCNN, ResNet-18) one owner is trained with the module (θ₀ seeded from the
secret, as ``freqprint embed`` does), and a thief's copy has the module removed and one epoch of
fine-tuning.  Every rewrite of :data:`REWRITES` is applied to both — alone on the owner's model,
and chained after removal + fine-tuning — and each result is traced by both channels (the
fingerprint with the key, lineage with the secret).  Per row: how exact the rewrite is (the
largest change of the logits of the model it rewrites over the probe images, or "by construction" where the rewrite lives in the
thief's own forward code and the stored tensors compose back to the original exactly), the
accuracy, stored parameters and multiply-accumulates relative to the owner, and each channel's p.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]


def macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``x`` (convs and linears)."""
    total = 0

    def hook(mod: nn.Module, inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += out.numel() // out.shape[0] * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def _stored(sd: StateDict) -> int:
    return sum(v.numel() for v in sd.values() if v.is_floating_point() or v.dtype in (torch.int8, torch.uint8))


def _int8(sd: StateDict) -> StateDict:
    """Every conv / linear weight int8 with a per-output-channel scale beside it."""
    out: StateDict = {}
    for name, w in sd.items():
        if w.is_floating_point() and w.ndim in (2, 4) and name.endswith("weight"):
            s = w.abs().flatten(1).amax(1).clamp_min(1e-12) / 127
            out[name] = torch.round(w / s.reshape(-1, *([1] * (w.ndim - 1)))).to(torch.int8)
            out[f"{name}_scale"] = s
        else:
            out[name] = w
    return out


def _dequantized(q: StateDict) -> StateDict:
    """What the thief's loader computes from :func:`_int8`'s tensors."""
    return {
        k: (v.float() * q[f"{k}_scale"].reshape(-1, *([1] * (v.ndim - 1))) if f"{k}_scale" in q else v)
        for k, v in q.items()
        if not (k.endswith("_scale") and k[: -len("_scale")] in q)
    }


def _pad5(model: nn.Module) -> nn.Module:
    """Every 3×3 conv outside the module run as a zero-padded 5×5 with one more pixel of padding."""
    from freqprint.fingerprint import FingerprintModule

    inside = {id(m) for fp in model.modules() if isinstance(fp, FingerprintModule) for m in fp.modules()}
    for conv in [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in inside and m.kernel_size == (3, 3)]:
        pad = conv.padding
        if isinstance(pad, str):
            continue  # "same"/"valid" padding: left as is
        conv.weight = nn.Parameter(nn.functional.pad(conv.weight.detach(), (1, 1, 1, 1)))
        conv.kernel_size = (5, 5)
        conv.padding = (pad[0] + 1, pad[1] + 1)
    return model


def _cut(sd: StateDict, dim: int, pieces: int) -> StateDict:
    """Every k×k conv weight (k ≥ 2) stored as ``pieces`` tensors along ``dim`` under new names."""
    out: StateDict = {}
    for name, w in sd.items():
        if w.is_floating_point() and w.ndim == 4 and w.shape[-1] >= 2 and w.shape[dim] >= pieces:
            for i, piece in enumerate(torch.chunk(w, pieces, dim)):
                out[f"shard{i}.{name.replace('.', '_')}"] = piece.clone()
        else:
            out[name] = w
    return out


def _module_name(sd: StateDict) -> str | None:
    return next((k for k in sd if k.endswith("fingerprint.weight")), None)


def _null5(sd: StateDict, grid: tuple[int, int], radius: int, include_dc: bool) -> StateDict | None:
    """The module's kernel stored 5×5: the 3×3 in a corner plus 10·std of content in the null
    space of its low-band map (the module computes exactly the same), and a 3×3 decoy beside it."""
    from freqprint.stats.spectral import lowband_map

    name = _module_name(sd)
    if name is None:
        return None
    w = sd[name].double()
    a5 = lowband_map(grid, 5, radius, include_dc)
    _, s, vh = torch.linalg.svd(a5)
    null = vh[int((s > 1e-9 * s[0]).sum()) :]
    g = torch.Generator().manual_seed(5)
    w5 = torch.zeros(*w.shape[:2], 5, 5, dtype=torch.float64)
    w5[..., :3, :3] = w
    w5 += (
        (torch.randn(*w.shape[:2], null.shape[0], generator=g, dtype=torch.float64) @ null).reshape(w5.shape)
        * 10
        * float(w.std())
    )
    out = dict(sd)
    out[name] = w5.float()
    out[name.replace(".weight", ".decoy")] = torch.randn(w.shape, generator=g).float()
    return out


def _module_factorised(sd: StateDict) -> StateDict | None:
    """The module's kernel stored as ``M·W·Pᵀ`` with the 1×1 maps ``P`` (input side) and ``Mᵀ``
    (output side, before the ReLU) beside it under unrelated names: composes back to W."""
    name = _module_name(sd)
    if name is None:
        return None
    w = sd[name].double()
    g = torch.Generator().manual_seed(6)
    p = torch.linalg.qr(torch.randn(w.shape[1], w.shape[1], generator=g, dtype=torch.float64))[0]
    m = torch.linalg.qr(torch.randn(w.shape[0], w.shape[0], generator=g, dtype=torch.float64))[0]
    out = {k: v for k, v in sd.items() if k != name}
    out["aux.kernel"] = torch.einsum("ed,dchw,fc->efhw", m, w, p).float()
    out["aux.feed"] = p[:, :, None, None].float()
    out["aux.unmix"] = m.T.contiguous().float()
    return out


def _module_separated(sd: StateDict) -> StateDict | None:
    """The module's kernel stored as a k×1 kernel into C·k channels and a 1×k kernel, the middle
    channels mixed by a random orthogonal R (the thief's forward runs both): their product is W."""
    from freqprint.attacks.reparam import separated

    name = _module_name(sd)
    if name is None:
        return None
    w = sd[name].double()
    n = w.shape[1] * w.shape[2]
    r = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(7), dtype=torch.float64))[0]
    first, second = separated(w, r)
    out = {key: v for key, v in sd.items() if key != name}
    out["aux.rows"], out["aux.cols"] = first.float(), second.float()
    return out


def _module_unshuffled(sd: StateDict) -> StateDict | None:
    """The module's kernel stored re-indexed for a grid pixel-unshuffled by 2 (the thief's forward
    unshuffles the module's input and shuffles its output back)."""
    from freqprint.io.canonical import space_to_depth_kernel

    name = _module_name(sd)
    if name is None:
        return None
    out = {key: v for key, v in sd.items() if key != name}
    out["aux.unshuffled"] = space_to_depth_kernel(sd[name])[0].float()
    return out


def mixed_segments(model: nn.Module, maps: int, cond: float, seed: int, skip: str = "fingerprint") -> StateDict:
    """A weights file in which every k×k conv W (outside names containing ``skip``) is stored as
    ``Q·W·P`` with Q, P invertible and far from orthogonal (singular values spread log-evenly
    over ``cond``), and each of Q⁻¹ and P⁻¹ as a product of ``maps`` 1×1 maps: no product of
    fewer stored tensors is W.  The file is what lineage reads; the thief's forward would run
    the maps."""
    g = torch.Generator().manual_seed(seed)

    def invertible(n: int) -> torch.Tensor:
        u, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        return u @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ v

    def factors(m: torch.Tensor) -> list[torch.Tensor]:
        fs = [invertible(m.shape[0]) for _ in range(maps - 1)]
        rest = m
        for f in fs:
            rest = torch.linalg.solve(f, rest)
        return [*fs, rest]  # f1·f2·…·rest = m

    out: StateDict = {}
    for name, w in model.state_dict().items():
        if w.ndim == 4 and w.shape[2] >= 2 and skip not in name:
            q, p = invertible(w.shape[0]), invertible(w.shape[1])
            out[name] = torch.einsum("de,echw,cf->dfhw", q, w.double(), p).float()
            for j, f in enumerate(factors(torch.linalg.inv(q)) + factors(torch.linalg.inv(p))):
                out[f"{name}.map{j}"] = f[:, :, None, None].float()
        else:
            out[name] = w.detach().clone()
    return out


@dataclass(frozen=True)
class Rewrite:
    """A rewrite: ``module`` rewrites the network (exactness measured on its outputs) or ``tensors``
    rewrites the stored tensors (the thief's forward undoes it; exact by construction unless
    ``measure`` gives the model it computes)."""

    label: str
    module: Callable[[nn.Module], nn.Module] | None = None
    tensors: Callable[[StateDict, nn.Module], StateDict | None] | None = None
    measure: Callable[[StateDict, nn.Module], nn.Module] | None = None
    macs_factor: str = "1"  # for tensor rewrites: how the MACs change (a description)


def _rewrites() -> list[Rewrite]:
    from freqprint.attacks import Compose, Factorize, Separate, SpaceToDepth, Widen
    from freqprint.fingerprint import get_fingerprint_module

    def loaded(sd: StateDict, model: nn.Module) -> nn.Module:
        m = copy.deepcopy(model)
        m.load_state_dict(sd)
        return m

    def null5(sd: StateDict, model: nn.Module) -> StateDict | None:
        try:
            _, fp = get_fingerprint_module(model)
        except Exception:
            return None
        return _null5(sd, fp.grid_size, fp.radius, fp.include_dc)

    return [
        Rewrite("as left"),
        Rewrite("widen ×2, consumers [W+N, −N], ‖N‖ = 3‖W‖", module=Widen(noise=3.0)),
        Rewrite("widen ×2, ‖N‖ = 10‖W‖", module=Widen(noise=10.0)),
        Rewrite("factorise every conv on both channel sides (1×1 P, M·W·Pᵀ, 1×1 M⁻¹)", module=Factorize(sides=2)),
        Rewrite("widen ×2 (r = 3), then factorise both sides", module=Compose([Widen(noise=3.0), Factorize(sides=2)])),
        Rewrite("factorise both sides, M⁻¹ and P each stored as two 1×1 convs", module=Factorize(sides=2, split=2)),
        Rewrite(
            "widen ×2 (r = 3), then factorise both sides with two 1×1 convs per side",
            module=Compose([Widen(noise=3.0), Factorize(sides=2, split=2)]),
        ),
        Rewrite("every k×k conv as a k×1 conv into C·k mixed channels, then a 1×k conv", module=Separate()),
        Rewrite("every stride-1 k×k conv run on a 2× space-to-depth grid (re-indexed [4D, 4C] kernel)", module=SpaceToDepth()),
        Rewrite("every conv 5×5 (zero-padded, padding + 1)", module=_pad5),
        Rewrite(
            "every conv/linear stored int8 + per-channel scale",
            tensors=lambda sd, m: _int8(sd),
            measure=lambda q, m: loaded(_dequantized(q), m),
        ),
        Rewrite("every k×k conv cut in 4 filter pieces", tensors=lambda sd, m: _cut(sd, 0, 4)),
        Rewrite("every k×k conv cut in 4 channel pieces", tensors=lambda sd, m: _cut(sd, 1, 4)),
        Rewrite("module 5×5, null space of its low-band map filled, + 3×3 decoy", tensors=null5, macs_factor="module ×25/9"),
        Rewrite(
            "module stored as a k×1 kernel into C·k mixed channels and a 1×k kernel",
            tensors=lambda sd, m: _module_separated(sd),
            macs_factor="module ×(C + D)/D",
        ),
        Rewrite(
            "module stored re-indexed for a 2× space-to-depth grid",
            tensors=lambda sd, m: _module_unshuffled(sd),
            macs_factor="module ×k′²/k² (×1 for 3×3)",
        ),
        Rewrite(
            "module factorised by inserted 1×1 convs on both sides",
            tensors=lambda sd, m: _module_factorised(sd),
            macs_factor="module + C² + D² per pixel",
        ),
    ]


def run_structural_bench(
    hosts: tuple[str, ...] = ("smallcnn", "resnet18"),
    limit: int = 10000,
    epochs: int = 1,
    data_root: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one owner per host, remove its module and fine-tune a thief's copy, and trace every
    rewrite of both (module docstring)."""
    from freqprint import FingerprintConfig, OwnerInit, trace
    from freqprint.attacks import Compose, FineTune, RemoveModule
    from freqprint.data import load_dataset
    from freqprint.training import TrainConfig, evaluate
    from freqprint.workflows import embed

    t0 = time.time()
    train = load_dataset("fashion-mnist", "train", root=data_root, limit=limit)
    test = load_dataset("fashion-mnist", "test", root=data_root)
    probe = test.images[:500]
    widths = {"smallcnn": 32, "resnet18": 0.25}
    targets = {"smallcnn": "conv2", "resnet18": "layer1.1.conv2"}
    out: dict[str, Any] = {"benchmark": "structural", "torch": torch.__version__, "limit": limit, "epochs": epochs, "hosts": {}}
    for host in hosts:
        secret = f"structural-{host}"
        with tempfile.TemporaryDirectory() as tmp:
            fit = embed(
                f"{tmp}/owner.safetensors",
                train,
                test,
                FingerprintConfig(target=targets[host], secret=secret, filters=64),
                model=host,
                width=widths[host],
                config=TrainConfig(epochs=epochs, lr=0.05, seed=0, device=device),
                key=f"{tmp}/owner.key",
                progress=False,
            )
        owner, key = fit.model.cpu().eval(), fit.key
        assert key is not None
        init = OwnerInit.from_recipe(fit.recipe, secret=secret)
        thief = Compose([RemoveModule(), FineTune(data=train, lr=0.01, epochs=1, seed=3, device=device)])(owner).cpu().eval()
        base_macs, base_params = macs(owner, probe), _stored(owner.state_dict())
        with torch.no_grad():
            refs = {"alone": owner(probe)[:, :10], "after removal + 1 epoch FT": thief(probe)[:, :10]}
        res: dict[str, Any] = {
            "width": widths[host],
            "owner_accuracy": evaluate(owner, test, 10),
            "thief_accuracy": evaluate(thief, test, 10),
            "rows": [],
        }
        log(
            f"[{host}] owner {res['owner_accuracy']:.4f}, removed + fine-tuned {res['thief_accuracy']:.4f} ({time.time() - t0:.0f} s)"
        )
        for rw in _rewrites():
            for start, model in (("alone", owner), ("after removal + 1 epoch FT", thief)):
                row: dict[str, Any] = {"rewrite": rw.label, "chain": start}
                sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if rw.module is not None:
                    new = rw.module(copy.deepcopy(model)).eval()
                    suspect: Any = {k: v.detach().clone() for k, v in new.state_dict().items()}
                    computed, row["macs_ratio"] = new, macs(new, probe) / base_macs
                elif rw.tensors is not None:
                    suspect = rw.tensors(sd, model)
                    if suspect is None:
                        continue  # a rewrite of the module, and there is none
                    computed = rw.measure(suspect, model) if rw.measure is not None else model
                    row["macs_ratio"] = rw.macs_factor
                    row["exact_by_construction"] = rw.measure is None
                else:
                    suspect, computed, row["macs_ratio"] = sd, model, macs(model, probe) / base_macs
                with torch.no_grad():
                    row["max_logit_change"] = float((computed(probe)[:, :10] - refs[start]).abs().max())
                row["accuracy"] = evaluate(computed, test, 10)
                row["params_ratio"] = _stored(suspect) / base_params
                rep = trace(suspect, key=key, owner_init=init)
                row["log10_p"] = rep.log10_p
                row["channels"] = {c.name: c.log10_p for c in rep.channels if c.ran}
                res["rows"].append(row)
                log(
                    f"[{host}] {rw.label} / {start}: Δlogit {row['max_logit_change']:.1e}, acc {row['accuracy']:.4f}, "
                    f"p {row['channels']} ({time.time() - t0:.0f} s)"
                )
        out["hosts"][host] = res
    out["seconds"] = time.time() - t0
    return out


def structural_markdown(res: dict[str, Any]) -> str:
    from freqprint.stats.null import format_p

    lines = []
    for host, r in res["hosts"].items():
        lines.append(
            f"**{host}** (width {r['width']}): owner accuracy {r['owner_accuracy']:.4f}; module removed + 1 epoch of "
            f"fine-tuning {r['thief_accuracy']:.4f}. Max Δlogit: the rewrite's own change of the logits (against the "
            "model it was applied to), over 500 test images.\n"
        )
        rows = []
        for row in r["rows"]:
            exact = f"{row['max_logit_change']:.1e}" + (" (by construction)" if row.get("exact_by_construction") else "")
            m = row["macs_ratio"]
            ch = row["channels"]
            rows.append(
                [
                    row["rewrite"],
                    row["chain"],
                    exact,
                    f"{row['accuracy']:.4f}",
                    f"{row['params_ratio']:.2f}",
                    f"{m:.2f}" if isinstance(m, float) else m,
                    format_p(ch.get("fingerprint", 0.0)),
                    format_p(ch.get("lineage", 0.0)),
                    format_p(row["log10_p"]),
                ]
            )
        head = ["rewrite", "from", "max Δlogit", "accuracy", "params ×", "MACs ×", "p fingerprint", "p lineage", "p trace"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)
