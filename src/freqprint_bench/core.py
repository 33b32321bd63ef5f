"""Micro-benchmarks of the core operations (``make bench`` / ``freqprint bench core``).

Speed is measured here, never asserted in tests.  Results are JSON: one record per operation
with the median and all timings in milliseconds, plus the machine and torch version.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from freqprint.fingerprint import FingerprintConfig, FingerprintModule, attach
from freqprint.models import create_model
from freqprint.training import resolve_device
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify
from freqprint_bench.report import timings

__all__ = ["run_core_bench"]


def _time(fn: Callable[[], Any], repeats: int, device: torch.device) -> list[float]:
    """Milliseconds of each repeat (:func:`freqprint_bench.report.timings`), CUDA synchronised."""
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    return [s * 1000 for s in timings(fn, repeats, sync)]


def run_core_bench(device: str = "cpu", repeats: int = 5) -> dict[str, Any]:
    dev = resolve_device(device)
    results = []

    def record(name: str, fn: Callable[[], Any], **info: Any) -> None:
        ts = _time(fn, repeats, dev)
        results.append({"name": name, "ms_median": statistics.median(ts), "ms": ts, "repeats": repeats, **info})

    # ResNet-18 placement of the paper: C = 64 input channels on a 32x32 grid, D = 256, batch 128
    x = torch.randn(128, 64, 32, 32, device=dev)
    for impl in ("fft", "spatial"):
        mod = FingerprintModule(64, 64, (32, 32), filters=256, secret="bench", implementation=impl).to(dev)

        def step(mod: FingerprintModule = mod) -> None:
            mod.zero_grad(set_to_none=True)
            mod(x).sum().backward()

        record(f"module forward+backward ({impl}), B=128 C=64 32x32 D=256", step, implementation=impl)

    host = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(dev)  # the host it sits beside: the ratio that matters

    def host_step() -> None:
        host.zero_grad(set_to_none=True)
        host(x).sum().backward()

    record("host conv forward+backward (3x3, 64->64), same input", host_step)

    model = create_model("resnet18", num_classes=10, in_channels=3, width=1.0)
    attach(model, FingerprintConfig(target="layer1.1.conv2", secret="bench"), torch.zeros(1, 3, 32, 32))
    record("extract key (ResNet-18, |S'| = 124)", lambda: extract(model))
    key = extract(model)
    other = create_model("resnet18", num_classes=10, in_channels=3, width=1.0)
    attach(other, FingerprintConfig(target="layer1.1.conv2", secret="other"), torch.zeros(1, 3, 32, 32))
    record("verify derived (same model)", lambda: verify(key, model), repeats_note="includes channel search")
    record("verify unrelated model", lambda: verify(key, other))
    return {
        "benchmark": "core",
        "device": str(dev),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "results": results,
    }


FINETUNE_SETTINGS: list[dict[str, Any]] = [
    {"optimizer": "sgd", "lr": 0.01, "epochs": 3},
    {"optimizer": "sgd", "lr": 0.1, "epochs": 3},
    {"optimizer": "sgd", "lr": 1.0, "epochs": 3},
    {"optimizer": "adam", "lr": 1e-3, "epochs": 3},
]


def run_frequency_bench(
    source: str,
    device: str = "cpu",
    digits_root: str | None = None,
    settings: list[dict[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune a fingerprinted model on the MNIST digits under several optimisers and learning
    rates; for each, the per-group frequency stability and the verification with S′ and with the
    low-gain set.  This is the study behind docs/benchmarks.md §"Which frequencies stay put"."""
    from freqprint.data import load_dataset
    from freqprint.fingerprint import get_fingerprint_module
    from freqprint.io.checkpoint import load_model
    from freqprint.study import block_change, frequency_stability
    from freqprint.training import TrainConfig, evaluate, train

    owner, recipe = load_model(source)
    _, fp = get_fingerprint_module(owner)
    w0 = fp.weight.detach().clone()
    keys = {name: extract(owner, frequencies=name) for name in ("sprime", "low-gain")}
    dg_train = load_dataset("mnist-digits", "train", root=digits_root)
    dg_test = load_dataset("mnist-digits", "test", root=digits_root)
    rows: list[dict[str, Any]] = []
    for st in settings or FINETUNE_SETTINGS:
        model, _ = load_model(source)
        cfg = TrainConfig(epochs=st["epochs"], lr=st["lr"], optimizer=st["optimizer"], lr_drop_at=None, device=device, seed=2)
        train(model, dg_train, cfg, progress=progress, description=f"{st['optimizer']} lr {st['lr']}")
        _, fpd = get_fingerprint_module(model)
        w1 = fpd.weight.detach().cpu()
        rows.append(
            {
                **st,
                "accuracy": evaluate(model, dg_test, recipe["num_classes"], device=device),
                "weight_change": float((w1 - w0).norm() / w0.norm()),
                "groups": [g.to_dict() for g in frequency_stability(w0, w1, fp.grid_size, fp.radius)],
                "blocks": block_change(w0, w1, fp.grid_size, fp.radius, include_dc=fp.include_dc),
                "verify": {name: verify(k, model).to_dict(include_timing=True) for name, k in keys.items()},
            }
        )
    return {
        "benchmark": "frequencies",
        "source": str(source),
        "device": device,
        "torch": torch.__version__,
        "frequencies": {name: sum(k.multiplicity) for name, k in keys.items()},
        "results": rows,
    }


def frequency_bench_markdown(res: dict[str, Any]) -> str:
    from freqprint.verification.verifier import format_p

    lines = [
        "| fine-tuning | acc. | ‖ΔW‖/‖W‖ | group | #freq | max gain | mean cos | frac cos ≥ 0.99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["results"]:
        head = f"{r['optimizer'].upper()} lr {r['lr']:g}, {r['epochs']} ep"
        for i, g in enumerate(r["groups"]):
            lead = f"| {head} | {r['accuracy']:.3f} | {r['weight_change']:.3f} " if i == 0 else "| | | "
            lines.append(
                f"{lead}| {g['group']} | {g['frequencies']} | {g['max_gain']:.3f} | {g['mean_cosine']:.4f} | {g['frac_above_tau']:.3f} |"
            )
    lines += [
        "",
        "| fine-tuning | block (dims) | energy share | ‖Δz‖²/‖z‖² | mean kernel cosine | p of this block |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["results"]:
        pb = r["verify"]["sprime"].get("log10_p_blocks", {})
        for name, b in r.get("blocks", {}).items():
            lines.append(
                f"| {r['optimizer'].upper()} lr {r['lr']:g} | {name} ({b['dims']}) | {b['energy_share']:.3f} | "
                f"{b['relative_change']:.2e} | {b['mean_cosine']:.4f} | {format_p(pb.get(name, 0.0))} |"
            )
    lines += ["", "| fine-tuning | set | τ-score | mean cosine | hits | p-value |", "|---|---|---|---|---|---|"]
    for r in res["results"]:
        for name, v in r["verify"].items():
            lines.append(
                f"| {r['optimizer'].upper()} lr {r['lr']:g} | {name} ({res['frequencies'][name]}) | {v['score']:.3f} | "
                f"{v['mean_cosine']:.4f} | {v['hits']}/{v['filters']} | {format_p(v['log10_p'])} |"
            )
    return "\n".join(lines) + "\n"


def run_calibration_bench(
    channels: tuple[int, ...] = (8, 32), n_keys: int = 100, seed: int = 123, verifier_pairs: int = 100
) -> dict[str, Any]:
    """The verifier's null model against independently initialised modules (secret-seeded).

    For each C: a KS test of the per-frequency cosines on S′ against the circular law
    ``Beta(C-1/2, C-1/2)``, and for several hit rules (t, h) the measured chance that a random key
    filter hits one fixed suspect filter (bound: q(t)/h) or any of 16 (bound: 16·q(t)/h).  With
    ``verifier_pairs``, the whole verifier too (:func:`verifier_null_check`).
    """
    from scipy import stats

    from freqprint.stats.null import null_tail
    from freqprint.stats.spectral import complex_cosine, invariant_frequencies, revised_dft_at

    grid = (24, 24)
    freqs = invariant_frequencies(grid, 3)
    reps = freqs[: len(freqs) // 2]
    out = []
    for c in channels:

        def spectra(tag: str, count: int) -> torch.Tensor:
            w = torch.cat([FingerprintModule(c, 4, grid, filters=16, secret=f"{tag}-{i}").weight.detach() for i in range(count)])
            return revised_dft_at(w.double(), grid, reps)

        keys, suspects = spectra(f"calib-key-{seed}", n_keys), spectra(f"calib-suspect-{seed}", 1)
        cos = complex_cosine(keys[:, None], suspects[None], dim=2)  # [keys, 16, F]
        # one cosine per key filter (frequency i mod F): cosines of one filter at several
        # frequencies are correlated, and the KS test needs independent samples
        pick = cos[torch.arange(cos.shape[0]), 0, torch.arange(cos.shape[0]) % cos.shape[2]]
        ks = stats.kstest(((1 + pick) / 2).numpy(), stats.beta(c - 0.5, c - 0.5).cdf)
        rules = []
        for t, h in ((0.3, 0.3), (0.5, 0.2), (0.6, 0.1), (0.7, 0.5), (0.8, 0.5)):
            frac = (cos >= t).double().mean(-1)
            q = null_tail(t, c)
            rules.append(
                {
                    "t": t,
                    "h": h,
                    "hit_one": float((frac[:, 0] >= h).double().mean()),
                    "bound_one": min(1.0, q / h),
                    "hit_any16": float((frac >= h).any(1).double().mean()),
                    "bound_any16": min(1.0, 16 * q / h),
                }
            )
        out.append(
            {
                "channels": c,
                "key_filters": int(keys.shape[0]),
                "ks_pvalue_circular_law": float(ks.pvalue),
                "rules": rules,
                "kernel_test": _kernel_null_check(c, n_keys, seed),
            }
        )
    verifier = verifier_null_check(channels, pairs=verifier_pairs, seed=seed) if verifier_pairs else []
    return {"benchmark": "calibration", "grid": list(grid), "results": out, "verifier": verifier}


def verifier_null_check(channels: tuple[int, ...], pairs: int = 100, seed: int = 123, filters: int = 64) -> list[dict[str, Any]]:
    """The whole verifier under H0: ``pairs`` keys of independently seeded modules against as many
    independent suspects (every layout under the eight symmetries of the square, both the
    permuted-channel and the rotated-channel test, as ``verify`` runs them).  Reported: the rate of
    p ≤ α for α = 0.1, 0.01, and the smallest p; and, separately, the rotated-channel test alone
    (``verify._rotation_test``) with its rate of p ≤ 0.1 and 0.01."""
    import math

    from freqprint.fingerprint import FingerprintedConv
    from freqprint.stats.align import unit
    from freqprint.stats.spectral import kernel_basis
    from freqprint.verification.key import FingerprintKey
    from freqprint.verification.verifier import _rotation_test

    grid = (14, 14)
    out = []
    for c in channels:
        logs, rot = [], []
        v, gain = kernel_basis(grid, 3, 1, include_dc=False)
        blocks = {"visible": (gain >= 0.1).nonzero().squeeze(1), "hidden": (gain < 0.1).nonzero().squeeze(1)}
        for i in range(pairs):

            def host(tag: str) -> nn.Module:
                fp = FingerprintModule(c, 4, grid, filters=filters, secret=f"{tag}-{seed}-{c}-{i}", context="conv")
                return nn.ModuleDict({"conv": FingerprintedConv(nn.Conv2d(c, 4, 3, padding=1), fp)})

            key: FingerprintKey = extract(host("null-key"))
            suspect = host("null-suspect")
            logs.append(verify(key, suspect, search="all").log10_p)
            zk = key.kernels().reshape(filters, c, 9) @ v
            zs = suspect.get_parameter("conv.fingerprint.weight").detach().double().reshape(filters, c, 9) @ v
            rot.append(
                min(0.0, _rotation_test(zk, zs, {b: unit(zk[..., idx]) for b, idx in blocks.items()}, blocks, None)[0])
                / math.log(10)
            )
        rate = lambda xs, a: sum(x <= math.log10(a) for x in xs) / len(xs)
        out.append(
            {
                "channels": c,
                "pairs": pairs,
                "filters": filters,
                "grid": list(grid),
                "verify_rate_p_le_0.1": rate(logs, 0.1),
                "verify_rate_p_le_0.01": rate(logs, 0.01),
                "verify_min_log10_p": min(logs),
                "rotation_rate_p_le_0.1": rate(rot, 0.1),
                "rotation_rate_p_le_0.01": rate(rot, 0.01),
                "rotation_min_log10_p": min(rot),
            }
        )
    return out


def _kernel_null_check(c: int, n_keys: int, seed: int, grid: tuple[int, int] = (28, 28)) -> dict[str, Any]:
    """The decision statistic's null law (``freqprint.stats.null``) against independently seeded modules:
    per block, a KS test of single per-kernel cosines against Beta((k-1)/2, (k-1)/2), and the rate
    at which a key filter's mean cosine over its C channels reaches t, against the Chernoff bound."""
    import math

    from scipy import stats

    from freqprint.stats.null import kernel_logtail
    from freqprint.stats.spectral import kernel_basis

    v, gain = kernel_basis(grid, 3, 1, include_dc=False)

    def units(tag: str, count: int) -> torch.Tensor:
        w = torch.cat([FingerprintModule(c, 4, grid, filters=16, secret=f"{tag}-{i}").weight.detach() for i in range(count)])
        return w.double().reshape(w.shape[0], c, 9) @ v

    zk, zs = units(f"kernel-key-{seed}", n_keys), units(f"kernel-suspect-{seed}", 1)[0]
    out: dict[str, Any] = {}
    for block, mask in (("visible", gain >= 0.1), ("hidden", gain < 0.1)):
        a = zk[..., mask] / zk[..., mask].norm(dim=-1, keepdim=True)
        b = zs[..., mask] / zs[..., mask].norm(dim=-1, keepdim=True)
        cos = torch.einsum("dck,ck->dc", a, b)  # [key filters, C] against one fixed suspect filter
        k = int(mask.sum())
        ks = stats.kstest(((1 + cos[:, 0]) / 2).numpy(), stats.beta((k - 1) / 2, (k - 1) / 2).cdf)
        mean = cos.mean(1)
        rates = [
            {"t": t, "rate": float((mean >= t).double().mean()), "bound": math.exp(kernel_logtail(t, k, c))}
            for t in (0.1, 0.2, 0.3)
        ]
        out[block] = {"dims": k, "ks_pvalue": float(ks.pvalue), "rates": rates}
    return out


def calibration_markdown(res: dict[str, Any]) -> str:
    lines = [
        "| C | t | h | hit rate vs 1 filter | bound q(t)/h | hit rate vs any of 16 | bound 16·q(t)/h |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["results"]:
        for x in r["rules"]:
            lines.append(
                f"| {r['channels']} | {x['t']} | {x['h']} | {x['hit_one']:.4f} | {x['bound_one']:.4f} | "
                f"{x['hit_any16']:.4f} | {x['bound_any16']:.4f} |"
            )
    lines.append("")
    lines += [
        f"KS test of S′ cosines against Beta(C−½, C−½), C = {r['channels']} ({r['key_filters']} key filters): "
        f"p = {r['ks_pvalue_circular_law']:.3f}"
        for r in res["results"]
    ]
    lines += [
        "",
        "The decision statistic (per-kernel cosines, mean over the C channels of a filter):",
        "",
        "| C | block (dims) | KS p, one kernel vs Beta((k−1)/2, (k−1)/2) | t | rate of mean ≥ t | Chernoff bound |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["results"]:
        for block, kt in r["kernel_test"].items():
            for x in kt["rates"]:
                lines.append(
                    f"| {r['channels']} | {block} ({kt['dims']}) | {kt['ks_pvalue']:.3f} | {x['t']} | {x['rate']:.4f} | {x['bound']:.4f} |"
                )
    if res.get("verifier"):
        lines += [
            "",
            "The whole verifier under H0 (independent keys and suspects; every reading, both tests), and the "
            "rotated-channel test alone — a valid p-value has rate(p ≤ α) ≤ α:",
            "",
            "| C | pairs | verify: rate p ≤ 0.1 | rate p ≤ 0.01 | smallest log10 p | rotated test: rate p ≤ 0.1 | rate p ≤ 0.01 | smallest log10 p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in res["verifier"]:
            lines.append(
                f"| {x['channels']} | {x['pairs']} | {x['verify_rate_p_le_0.1']:.3f} | {x['verify_rate_p_le_0.01']:.3f} | "
                f"{x['verify_min_log10_p']:.2f} | {x['rotation_rate_p_le_0.1']:.3f} | {x['rotation_rate_p_le_0.01']:.3f} | "
                f"{x['rotation_min_log10_p']:.2f} |"
            )
    return "\n".join(lines) + "\n"


# (label, attack specs applied in order, test set the accuracy is measured on)
ATTACK_SUITE: list[tuple[str, list[str], str]] = [
    ("none", [], "source"),
    ("module scaling a=10 (Table 5)", ["scale-module(a=10)"], "source"),
    ("module scaling a=100 (Table 5)", ["scale-module(a=100)"], "source"),
    ("module filter permutation (Table 6)", ["permute-module(seed=1)"], "source"),
    ("block permutation + scaling", ["permute-blocks(seed=1)", "scale-blocks(seed=2)"], "source"),
    # the knowing attacker's zero-cost rewrites (issue 8; docs/benchmarks.md §8 has them on every layout)
    ("per-input-channel scaling, s_c in [0.1, 10]", ["scale-channels(seed=1)"], "source"),
    ("dead input channels added (+8)", ["pad-channels(extra=8,seed=1)"], "source"),
    ("dummy filters added (+256)", ["dummy-filters(extra=256,seed=1)"], "source"),
    ("filter mixing (exact for the linear merge only)", ["mix-filters(seed=1)"], "source"),
    ("collapse to P·W (linear merge only)", ["collapse"], "source"),
    ("redraw in P's null space (exact for the linear merge only)", ["redraw-nullspace(seed=1)"], "source"),
    ("redraw the invisible directions", ["redraw-invisible(seed=1)"], "source"),
    (
        "redraw the invisible directions, then fine-tune lr 0.01",
        ["redraw-invisible(seed=1)", "finetune(lr=0.01,data=mnist-digits)"],
        "target",
    ),
    ("fine-tune SGD lr 0.01 (Table 4)", ["finetune(lr=0.01,data=mnist-digits)"], "target"),
    ("fine-tune SGD lr 0.1", ["finetune(lr=0.1,data=mnist-digits)"], "target"),
    ("fine-tune Adam lr 1e-3", ["finetune(lr=0.001,optimizer=adam,data=mnist-digits)"], "target"),
    ("fine-tune LoRA rank 4, lr 0.01", ["finetune(lr=0.01,lora_rank=4,data=mnist-digits)"], "target"),
    ("fine-tune, new head, lr 0.01", ["finetune(lr=0.01,head=replace,data=mnist-digits)"], "target"),
    ("fine-tune last layer only, lr 0.01", ["finetune(lr=0.01,layers=last,data=mnist-digits)"], "target"),
    ("overwrite: replacement", ["overwrite(kind=replace)"], "source"),
    ("overwrite: spectral noise 0.5", ["overwrite(kind=spectral)"], "source"),
    ("overwrite: weight noise 0.5", ["overwrite(kind=weights)"], "source"),
    ("replacement, then fine-tune lr 0.01", ["overwrite(kind=replace)", "finetune(lr=0.01,data=mnist-digits)"], "target"),
    ("spectral noise, then fine-tune lr 0.01", ["overwrite(kind=spectral)", "finetune(lr=0.01,data=mnist-digits)"], "target"),
    ("weight noise, then fine-tune lr 0.01", ["overwrite(kind=weights)", "finetune(lr=0.01,data=mnist-digits)"], "target"),
    ("fine-tune lr 0.01, then spectral noise", ["finetune(lr=0.01,data=mnist-digits)", "overwrite(kind=spectral)"], "target"),
    (
        "fine-tune lr 0.01, then replacement (rebuttal)",
        ["finetune(lr=0.01,data=mnist-digits)", "overwrite(kind=replace)"],
        "target",
    ),
    ("prune 50 % (magnitude)", ["prune(kind=unstructured,rate=0.5)"], "source"),
    ("prune 90 % (magnitude)", ["prune(kind=unstructured,rate=0.9)"], "source"),
    ("prune 25 % of filters", ["prune(kind=structured,rate=0.25)"], "source"),
    ("prune 50 % of filters", ["prune(kind=structured,rate=0.5)"], "source"),
    ("int8 quantization", ["quantize(bits=8)"], "source"),
    ("int4 quantization", ["quantize(bits=4)"], "source"),
    ("distillation into a fresh student (same arch, no module)", ["distill(data=fashion-mnist,epochs=3)"], "source"),
    (
        "distillation into a fresh SmallCNN (other arch for ResNet/AlexNet hosts)",
        ["distill(data=fashion-mnist,epochs=3,student=smallcnn)"],
        "source",
    ),
    ("module removal", ["remove-module"], "source"),
    ("module removal, then fine-tune lr 0.01", ["remove-module", "finetune(lr=0.01,data=mnist-digits)"], "target"),
    # issue 10: removal / replacement at the largest lr of the Done-when, and the knowing thief's
    # answer to the lineage test (wash θ₀ out of the backbone, let fine-tuning repair the accuracy)
    ("module removal, then fine-tune lr 0.1", ["remove-module", "finetune(lr=0.1,data=mnist-digits)"], "target"),
    ("replacement, then fine-tune lr 0.1", ["overwrite(kind=replace)", "finetune(lr=0.1,data=mnist-digits)"], "target"),
    (
        "backbone noise 1×‖W‖, then fine-tune lr 0.01",
        ["noise-backbone(scale=1)", "finetune(lr=0.01,data=mnist-digits)"],
        "target",
    ),
    (
        "backbone noise 3×‖W‖, then fine-tune lr 0.01",
        ["noise-backbone(scale=3)", "finetune(lr=0.01,data=mnist-digits)"],
        "target",
    ),
    (
        "replacement + backbone noise 3×‖W‖, then fine-tune lr 0.01",
        ["overwrite(kind=replace)", "noise-backbone(scale=3)", "finetune(lr=0.01,data=mnist-digits)"],
        "target",
    ),
    ("factorize every backbone conv into M·W and M⁻¹ (exact; +1 1×1 conv per layer)", ["factorize(seed=1)"], "source"),
    (
        "replacement + factorize, then fine-tune lr 0.01",
        ["overwrite(kind=replace)", "factorize(seed=1)", "finetune(lr=0.01,data=mnist-digits)"],
        "target",
    ),
]


# the rows that decide issue 10 (which channel catches which thief), for a shorter run: `--suite trace`
TRACE_SUITE = (
    "none",
    "block permutation + scaling",
    "fine-tune SGD lr 0.01 (Table 4)",
    "fine-tune SGD lr 0.1",
    "overwrite: replacement",
    "module removal",
    "replacement, then fine-tune lr 0.01",
    "replacement, then fine-tune lr 0.1",
    "module removal, then fine-tune lr 0.01",
    "module removal, then fine-tune lr 0.1",
    "prune 50 % (magnitude)",
    "int4 quantization",
    "distillation into a fresh student (same arch, no module)",
    "distillation into a fresh SmallCNN (other arch for ResNet/AlexNet hosts)",
    "backbone noise 1×‖W‖, then fine-tune lr 0.01",
    "backbone noise 3×‖W‖, then fine-tune lr 0.01",
    "replacement + backbone noise 3×‖W‖, then fine-tune lr 0.01",
    "factorize every backbone conv into M·W and M⁻¹ (exact; +1 1×1 conv per layer)",
    "replacement + factorize, then fine-tune lr 0.01",
)


def run_attack_bench(
    sources: dict[str, str],
    device: str = "cpu",
    source_data: str = "fashion-mnist",
    target_data: str = "mnist-digits",
    data_root: str | None = None,
    target_root: str | None = None,
    limit: int | None = 20000,
    owners: dict[str, Any] | None = None,
    suite: str = "all",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Apply every attack of :data:`ATTACK_SUITE` to each source model; record the accuracy the
    thief is left with and what the verifier says.  With ``owners`` (source name → its
    :class:`freqprint.verification.backbone.OwnerInit`) every row also gets the lineage channel and the combined
    verdict of :func:`freqprint.verification.provenance.trace`.  ``suite="trace"`` runs only :data:`TRACE_SUITE`; any
    other text than ``"all"``, only the rows whose label contains it (a supplementary run)."""
    from freqprint.attacks import Compose, create_attack
    from freqprint.data import load_dataset
    from freqprint.errors import FreqprintError, NotApplicable
    from freqprint.io.checkpoint import load_model
    from freqprint.training import evaluate
    from freqprint.verification.provenance import trace

    tests = {
        "source": load_dataset(source_data, "test", root=data_root),
        "target": load_dataset(target_data, "test", root=target_root or data_root),
    }
    rows: list[dict[str, Any]] = []
    for sname, path in sources.items():
        model, recipe = load_model(path)
        key = extract(model)
        for label, specs, test in ATTACK_SUITE:
            if (suite == "trace" and label not in TRACE_SUITE) or suite not in ("all", "trace", label) and suite not in label:
                continue
            t = time.time()
            chain = Compose(
                [
                    create_attack(
                        s, data_root=target_root if "mnist-digits" in s else data_root, device=device, recipe=recipe, limit=limit
                    )
                    for s in specs
                ]
            )
            row: dict[str, Any] = {"source": sname, "attack": label, "specs": specs, "test": test}
            try:
                attacked = chain(model)
            except NotApplicable as e:  # e.g. collapse of a ReLU-merge module: no such rewrite exists
                row.update(accuracy=float("nan"), found=False, not_applicable=str(e), seconds=time.time() - t)
                rows.append(row)
                log(f"{sname} | {label}: not applicable ({e})")
                continue
            except FreqprintError as e:  # e.g. fine-tuning diverged: the thief is left with no model
                row.update(accuracy=float("nan"), found=False, diverged=str(e), seconds=time.time() - t)
                rows.append(row)
                log(f"{sname} | {label}: {e}")
                continue
            row["accuracy"] = evaluate(attacked, tests[test], chain.update_recipe(recipe)["num_classes"], device=device)
            try:  # one trace: the fingerprint channel is the verify report, lineage runs when the owner's θ₀ is known
                tr = trace(attacked, key=key, owner_init=(owners or {}).get(sname))
            except FreqprintError as e:
                row.update(found=False, error=str(e))
            else:
                fpc, d = tr.channel("fingerprint"), tr.channel("fingerprint").detail
                if d:
                    row.update(
                        found=d["found"],
                        log10_p=d["log10_p"],
                        score=d["score"],
                        mean_cosine=d["mean_cosine"],
                        hits=d["hits"],
                        layer=d["layer"],
                        log10_p_blocks=d["log10_p_blocks"],
                    )
                else:  # no module-shaped tensor left
                    row.update(found=False, error=fpc.summary)
                lin = tr.channel("lineage")
                if lin.ran:
                    row.update(
                        lineage_log10_p=lin.log10_p, lineage_found=lin.found, combined_log10_p=tr.log10_p, combined_found=tr.found
                    )
            row["seconds"] = time.time() - t
            rows.append(row)
            lin_text = (
                f" lineage {row['lineage_log10_p']:.1f} combined {row['combined_log10_p']:.1f}"
                if "lineage_log10_p" in row
                else ""
            )
            log(
                f"{sname} | {label}: acc {row['accuracy']:.4f} found {row['found']} score {row.get('score', float('nan')):.3f}"
                f"{lin_text} ({row['seconds']:.0f} s)"
            )
    return {
        "benchmark": "attacks",
        "device": device,
        "torch": torch.__version__,
        "sources": sources,
        "suite": suite,
        "lineage": {k: v.describe() for k, v in (owners or {}).items()},
        "results": rows,
    }


def attack_bench_markdown(res: dict[str, Any]) -> str:
    from freqprint.verification.verifier import format_p

    names = list(res["sources"])
    head = "| attack | test set | " + " | ".join(f"{n}: acc. / τ-score / p (visible, hidden block)" for n in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    by = {(r["source"], r["attack"]): r for r in res["results"]}
    for label, _, test in ATTACK_SUITE:
        if not any((n, label) in by for n in names):
            continue  # not in this run's suite
        cells = []
        for n in names:
            r = by.get((n, label))
            if r is None:
                cells.append("")
            elif "not_applicable" in r:
                cells.append("not a rewrite of this model")
            elif "diverged" in r:
                cells.append("diverged: no model for the thief")
            elif "error" in r:
                cells.append(f"{r['accuracy']:.4f} / — / no candidate layer")
            else:
                blocks = r.get("log10_p_blocks") or {}
                detail = f" ({', '.join(format_p(blocks[b]) for b in ('visible', 'hidden') if b in blocks)})" if blocks else ""
                cells.append(
                    f"{r['accuracy']:.4f} / {r['score']:.3f} / {format_p(r['log10_p'])}{' ✓' if r['found'] else ' ✗'}{detail}"
                )
        lines.append(f"| {label} | {test} | " + " | ".join(cells) + " |")
    if res.get("lineage"):
        lines += ["", channel_table_markdown(res)]
    return "\n".join(lines) + "\n"


def channel_table_markdown(res: dict[str, Any]) -> str:
    """Which channel catches which attack: per source, the fingerprint's p, the lineage p and the
    combined verdict (Bonferroni over the two channels; ✓ = p < 1e-6)."""
    from freqprint.verification.verifier import format_p

    names = [n for n in res["sources"] if n in res.get("lineage", {})]
    head = "| attack | " + " | ".join(f"{n}: acc. / fingerprint / lineage / **combined**" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    by = {(r["source"], r["attack"]): r for r in res["results"]}

    def p(r: dict[str, Any], k: str, f: str) -> str:
        return f"{format_p(r[k])}{' ✓' if r[f] else ' ✗'}" if k in r else "p = 1 (no module)"

    for label, _, _ in ATTACK_SUITE:
        if not any((n, label) in by for n in names):
            continue
        cells = []
        for n in names:
            r = by.get((n, label))
            if r is None or "not_applicable" in r:
                cells.append("n/a" if r else "")
            elif "diverged" in r:
                cells.append("diverged")
            else:
                fp = p(r, "log10_p", "found") if "error" not in r else "1 ✗ (no module)"
                cells.append(
                    f"{r['accuracy']:.4f} / {fp} / {p(r, 'lineage_log10_p', 'lineage_found')} / "
                    f"**{p(r, 'combined_log10_p', 'combined_found')}**"
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# rebuttal (reviewer Q5), ResNet-18 on CIFAR-100: accuracy % at input-noise scale 0, .01, .05, .1, .5
PAPER_NOISE = {
    "plain": (76.3, 76.2, 74.9, 67.5, 9.3),
    "L_CE only": (76.5, 76.4, 74.8, 67.7, 11.4),
    "L_CE+L_attack": (75.5, 75.5, 73.7, 66.8, 10.9),
}


def run_noise_bench(
    models: dict[str, str],
    data: str = "fashion-mnist",
    data_root: str | None = None,
    scales: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.5),
    repeats: int = 3,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Input-noise sensitivity (the rebuttal's question: does L_attack make a model more fragile?).

    Each test image x gets Gaussian noise rescaled to ‖noise‖₂ = s·‖x‖₂ (per image, as in the
    rebuttal); accuracy is averaged over ``repeats`` noise draws (seeds 0..repeats-1, the same
    draws for every model).
    """
    from freqprint.data import ArrayDataset, load_dataset
    from freqprint.io.checkpoint import load_model
    from freqprint.training import evaluate

    test = load_dataset(data, "test", root=data_root)
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    for name, path in models.items():
        model, recipe = load_model(path)
        accs = []
        for s in scales:
            vals = []
            for r in range(repeats if s > 0 else 1):
                g = torch.Generator().manual_seed(r)
                noise = torch.randn(test.images.shape, generator=g)
                norm_x = test.images.flatten(1).norm(dim=1).clamp_min(1e-12)
                noise = noise * (s * norm_x / noise.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)
                noisy = ArrayDataset(test.images + noise, test.labels, test.classes, test.name)
                vals.append(evaluate(model, noisy, recipe["num_classes"], device=device))
            accs.append(sum(vals) / len(vals))
        rows.append({"model": name, "path": path, "accuracy": dict(zip(map(str, scales), accs))})
        log(f"{name}: " + ", ".join(f"{s:g}: {a:.4f}" for s, a in zip(scales, accs)))
    return {
        "benchmark": "input-noise",
        "data": data,
        "scales": list(scales),
        "repeats": repeats,
        "device": device,
        "torch": torch.__version__,
        "seconds": time.time() - t0,
        "rows": rows,
    }


def noise_bench_markdown(res: dict[str, Any]) -> str:
    scales = [f"{s:g}" for s in res["scales"]]
    lines = [
        f"Accuracy on the {res['data']} test set with Gaussian input noise, ‖noise‖ = s·‖x‖ per image "
        f"(mean of {res['repeats']} draws); paper (rebuttal, ResNet-18 on CIFAR-100) in parentheses where it has the row.",
        "",
        "| model | " + " | ".join(f"s = {s}" for s in scales) + " |",
        "|---|" + "---|" * len(scales),
    ]
    for row in res["rows"]:
        paper = PAPER_NOISE.get(row["model"])
        cells = [
            f"{row['accuracy'][s]:.4f}" + (f" ({paper[i]:.1f} %)" if paper else "") for i, s in enumerate(map(str, res["scales"]))
        ]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# The knowing attacker (docs/benchmarks.md §8): rewrites that need no data and no training.
REWRITES: list[tuple[str, list[str], str | None]] = [
    ("per-input-channel scaling, s_c in [0.1, 10]", ["scale-channels(seed=1)"], None),
    ("filter mixing (random orthogonal D×D)", ["mix-filters(seed=1)"], None),
    ("collapse to C_out filters P·W", ["collapse"], None),
    ("redraw in the null space of P", ["redraw-nullspace(seed=1)"], None),
    ("redraw the invisible directions (gain < 0.05)", ["redraw-invisible(seed=1)"], None),
    ("dead input channels added (+8)", ["pad-channels(extra=8,seed=1)"], None),
    ("dummy filters added (+256)", ["dummy-filters(extra=256,seed=1)"], None),
    ("renamed, flattened to [D, C·K²]", [], "flat"),
    ("renamed, HWIO layout", [], "HWIO"),
    ("renamed, bfloat16", [], "bf16"),
    (
        "every exact rewrite at once",
        [
            "permute-blocks(seed=1)",
            "scale-blocks(seed=2)",
            "scale-channels(seed=3)",
            "permute-module(seed=4)",
            "scale-module(a=10)",
            "pad-channels(extra=8,seed=5)",
            "dummy-filters(extra=256,seed=6)",
            "redraw-invisible(seed=7)",
        ],
        "flat",
    ),
]
THEN = ["permute-blocks(seed=11)", "scale-blocks(seed=12)", "finetune(lr=0.01,epochs=1,data=mnist-digits)"]
FINETUNES = [
    ("SGD lr 0.01", "finetune(lr=0.01,epochs=1,data=mnist-digits)"),
    ("SGD lr 0.1", "finetune(lr=0.1,epochs=1,data=mnist-digits)"),
    ("SGD lr 1", "finetune(lr=1.0,epochs=1,data=mnist-digits)"),
    ("Adam lr 1e-3", "finetune(lr=0.001,optimizer=adam,epochs=1,data=mnist-digits)"),
    ("redraw invisible, then SGD lr 0.1", "redraw-invisible(seed=1)|finetune(lr=0.1,epochs=1,data=mnist-digits)"),
]


def run_rewrite_bench(
    merges: tuple[str, ...] = ("relu", "linear"),
    limit: int = 20000,
    epochs: int = 1,
    data_root: str | None = None,
    digits_root: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one owner (and one independent) SmallCNN per merge on Fashion-MNIST, then apply each
    rewrite of :data:`REWRITES` alone (outputs compared, source accuracy) and followed by block
    permutation + scaling + one epoch of fine-tuning on the MNIST digits; verify every result.
    Also: the evidence each kernel block keeps under the fine-tunes of :data:`FINETUNES`."""
    from freqprint.attacks import Compose, create_attack, relayout_state_dict
    from freqprint.data import load_dataset
    from freqprint.errors import FreqprintError
    from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.training import TrainConfig, evaluate, train

    t_start = time.time()
    fm_train = load_dataset("fashion-mnist", "train", root=data_root, limit=limit)
    fm_test = load_dataset("fashion-mnist", "test", root=data_root)
    dg_test = load_dataset("mnist-digits", "test", root=digits_root)
    probe = fm_test.images[:512]

    def attack(specs: list[str]):
        return Compose(
            [create_attack(s, data_root=digits_root if "mnist-digits" in s else data_root, device=device) for s in specs]
        )

    def check(key, model, layout: str | None) -> dict[str, Any]:
        sd = {k: v.detach() for k, v in model.state_dict().items()}
        try:
            rep = verify(key, relayout_state_dict(sd, layout) if layout else sd)
        except FreqprintError as e:
            return {"found": False, "error": str(e)}
        return {
            "found": rep.found,
            "log10_p": rep.log10_p,
            "block": rep.block,
            "log10_p_blocks": rep.log10_p_blocks,
            "hits": rep.hits,
            "score": rep.score,
            "seconds": rep.seconds,
        }

    out: dict[str, Any] = {
        "benchmark": "rewrites",
        "device": device,
        "torch": torch.__version__,
        "limit": limit,
        "epochs": epochs,
        "merges": {},
    }
    for merge in merges:
        models = {}
        for role, secret, seed in (("owner", "owner-secret", 0), ("independent", "independent-secret", 1)):
            torch.manual_seed(seed)
            m = create_model("smallcnn", num_classes=10, in_channels=1)
            attach(m, FingerprintConfig(target="conv2", secret=secret, merge=merge), fm_train.images[:2])
            add_pseudo_class(m)
            train(m, fm_train, TrainConfig(epochs=epochs, lr=0.05, seed=seed, device=device), criterion=FingerprintLoss(10))
            models[role] = m.cpu().eval()
        owner = models["owner"]
        key = extract(owner)
        res: dict[str, Any] = {
            "accuracy": evaluate(owner, fm_test, 10),
            "independent": check(key, models["independent"], None),
            "owner": check(key, owner, None),
            "rewrites": [],
            "finetunes": [],
        }
        log(f"[{merge}] owner acc {res['accuracy']:.4f}; independent: {res['independent']}")
        with torch.no_grad():
            ref = owner(probe)
        for label, specs, layout in REWRITES:
            row: dict[str, Any] = {"rewrite": label, "specs": specs, "layout": layout}
            try:
                alone = attack(specs)(owner) if specs else owner
            except FreqprintError as e:
                row["not_applicable"] = str(e)
                res["rewrites"].append(row)
                log(f"[{merge}] {label}: n/a ({e})")
                continue
            with torch.no_grad():
                row["max_logit_change"] = float((alone(probe)[:, :10] - ref[:, :10]).abs().max())
            row["accuracy"] = evaluate(alone, fm_test, 10)
            row["alone"] = check(key, alone, layout)
            then = attack(THEN)(alone)
            row["then_accuracy_digits"] = evaluate(then, dg_test, 10)
            row["then"] = check(key, then, layout)
            res["rewrites"].append(row)
            log(
                f"[{merge}] {label}: Δlogit {row['max_logit_change']:.1e} acc {row['accuracy']:.4f} "
                f"alone {row['alone'].get('log10_p')} then {row['then'].get('log10_p')} ({time.time() - t_start:.0f} s)"
            )
        for label, spec in FINETUNES:
            tuned = attack(spec.split("|"))(owner)
            row = {"finetune": label, "accuracy_digits": evaluate(tuned, dg_test, 10), **check(key, tuned, None)}
            res["finetunes"].append(row)
            log(f"[{merge}] {label}: acc {row['accuracy_digits']:.4f} blocks {row.get('log10_p_blocks')}")
        out["merges"][merge] = res
    out["seconds"] = time.time() - t_start
    return out


def rewrite_bench_markdown(res: dict[str, Any]) -> str:
    from freqprint.verification.verifier import format_p

    def verdict(v: dict[str, Any]) -> str:
        if "error" in v:
            return "no candidate ✗"
        return f"{format_p(v['log10_p'])} {'✓' if v['found'] else '✗'}"

    merges = list(res["merges"])
    lines = [
        "| rewrite | "
        + " | ".join(f"{m}: max Δlogit / acc. / p alone / p after perm+scale+FT (digits acc.)" for m in merges)
        + " |",
        "|---|" + "---|" * len(merges),
    ]
    by = {m: {r["rewrite"]: r for r in res["merges"][m]["rewrites"]} for m in merges}
    for label, _, _ in REWRITES:
        cells = []
        for m in merges:
            r = by[m].get(label, {})
            if "not_applicable" in r:
                cells.append("not a rewrite of this merge")
            else:
                cells.append(
                    f"{r['max_logit_change']:.1e} / {r['accuracy']:.4f} / {verdict(r['alone'])} / "
                    f"{verdict(r['then'])} ({r['then_accuracy_digits']:.4f})"
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| fine-tuning (1 epoch, MNIST digits) | " + " | ".join(f"{m}: acc. / p visible / p hidden" for m in merges) + " |",
        "|---|" + "---|" * len(merges),
    ]
    for i, (label, _) in enumerate(FINETUNES):
        cells = []
        for m in merges:
            r = res["merges"][m]["finetunes"][i]
            pb = r.get("log10_p_blocks", {})
            cells.append(f"{r['accuracy_digits']:.4f} / {format_p(pb.get('visible', 0.0))} / {format_p(pb.get('hidden', 0.0))}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        " ".join(
            f"{m}: owner accuracy {res['merges'][m]['accuracy']:.4f}, independent model p = "
            f"{verdict(res['merges'][m]['independent'])}."
            for m in merges
        ),
    ]
    return "\n".join(lines) + "\n"


def run_claim_bench(
    n: int = 100,
    limit: int = 2000,
    width: int = 8,
    filters: int = 64,
    data_root: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Claim bundles over ``n`` independently seeded owners (issue 12): each owner's SmallCNN is
    trained for one epoch on ``limit`` real Fashion-MNIST images with its module, then

    * its own bundle is checked with its secret (must be accepted) and with the next owner's
      secret (must be rejected);
    * forged bundles under its secret commitment — the next owner's key, and a key made from
      conv2 of a plain model — must be rejected;
    * the chimera key (W₀'s hidden block, the next owner's visible block) passes the key check by
      construction; the secret-anchored verdict must find the owner's model and not the next one.
    """
    from freqprint.data import load_dataset
    from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.stats.spectral import kernel_basis
    from freqprint.training import TrainConfig, train
    from freqprint.verification.claim import ClaimBundle, check_claim, create_claim
    from freqprint.verification.key import FingerprintKey

    t0 = time.time()
    ds = load_dataset("fashion-mnist", "train", root=data_root, limit=limit)
    owners = []
    for i in range(n + 1):
        torch.manual_seed(1000 + i)
        m = create_model("smallcnn", num_classes=10, in_channels=1, width=width)
        attach(m, FingerprintConfig(target="conv2", secret=f"owner-{i}", filters=filters), ds.images[:2])
        add_pseudo_class(m)
        train(m, ds, TrainConfig(epochs=1, lr=0.05, seed=i, device=device), criterion=FingerprintLoss(10))
        owners.append(m.cpu().eval())
    log(f"trained {n + 1} owners ({time.time() - t0:.0f} s)")

    def forged(real: ClaimBundle, key: FingerprintKey) -> ClaimBundle:
        b = ClaimBundle(key=key, host=real.host, salt=real.salt, secret_commitment=real.secret_commitment, created="2001-01-01")
        b.commitment = b.compute_commitment()
        return b

    rows: list[dict[str, Any]] = []
    for i in range(n):
        own, nxt = owners[i], owners[i + 1]
        secret = f"owner-{i}"
        real = create_claim(own, secret)
        k = real.key
        plain = create_model("smallcnn", num_classes=10, in_channels=1, width=width)
        wp = plain.get_parameter("conv2.weight").detach()
        reps = max(1, -(-k.filters // wp.shape[0]))
        fake_w = wp.repeat(reps, 1, 1, 1)[: k.filters, : k.channels] if wp.shape[1] >= k.channels else None
        v, gain = kernel_basis(k.grid, k.kernel_size, k.radius, include_dc=k.merge == "linear")
        vis = gain >= 0.1
        z_own = k.kernels().reshape(k.filters, k.channels, -1) @ v
        z_nxt = nxt.get_parameter("conv2.fingerprint.weight").detach().double().reshape(k.filters, k.channels, -1) @ v
        chim_w = (torch.where(vis, z_nxt, z_own) @ v.T).reshape(k.kernels().shape).float()

        def variant(w: torch.Tensor) -> FingerprintKey:
            f = FingerprintKey(
                layer=k.layer,
                grid=k.grid,
                kernel_size=k.kernel_size,
                radius=k.radius,
                frequency_set=k.frequency_set,
                frequencies=k.frequencies,
                multiplicity=k.multiplicity,
                spectra=k.spectra,
                weights=w,
                merge=k.merge,
            )
            f.commitment = f.compute_commitment()
            return f

        genuine = check_claim(real, secret, suspect=own)
        row = {
            "owner": i,
            "genuine_accepted": genuine.genuine,
            "hidden_cosine": genuine.blocks["hidden"].mean_cosine,
            "visible_cosine": genuine.blocks["visible"].mean_cosine,
            "hidden_log10_p": genuine.blocks["hidden"].log10_p,
            "anchored_finds_owner": bool(genuine.suspect and genuine.suspect["found"]),
            "anchored_log10_p_owner": genuine.suspect["log10_p"] if genuine.suspect else 0.0,
            "wrong_secret_rejected": not check_claim(real, f"owner-{i + 1}").genuine,
            "other_key_rejected": not check_claim(forged(real, extract(nxt)), secret).genuine,
            "plain_conv_key_rejected": fake_w is None or not check_claim(forged(real, variant(fake_w)), secret).genuine,
        }
        chim = check_claim(forged(real, variant(chim_w)), secret, suspect=nxt)
        row["chimera_key_check_passes"] = chim.genuine
        row["chimera_key_finds_other"] = verify(variant(chim_w), nxt).found
        row["anchored_clears_other"] = not (chim.suspect and chim.suspect["found"])
        rows.append(row)
    checks = [
        "genuine_accepted",
        "anchored_finds_owner",
        "wrong_secret_rejected",
        "other_key_rejected",
        "plain_conv_key_rejected",
        "anchored_clears_other",
    ]
    summary = {c: sum(r[c] for r in rows) for c in checks + ["chimera_key_check_passes", "chimera_key_finds_other"]}
    summary["wrong_answers"] = sum(not r[c] for r in rows for c in checks)
    summary["min_hidden_cosine"] = min(r["hidden_cosine"] for r in rows)
    summary["min_visible_cosine"] = min(r["visible_cosine"] for r in rows)
    summary["max_hidden_log10_p"] = max(r["hidden_log10_p"] for r in rows)
    log(json.dumps(summary))
    return {
        "benchmark": "claims",
        "n": n,
        "limit": limit,
        "width": width,
        "filters": filters,
        "device": device,
        "torch": torch.__version__,
        "seconds": time.time() - t0,
        "summary": summary,
        "rows": rows,
    }


def claim_bench_markdown(res: dict[str, Any]) -> str:
    s, n = res["summary"], res["n"]
    lines = ["| check | count |", "|---|---|"]
    labels = [
        ("genuine bundle accepted", "genuine_accepted"),
        ("wrong secret rejected", "wrong_secret_rejected"),
        ("forged: another owner's key under this secret, rejected", "other_key_rejected"),
        ("forged: key from a plain model's conv2, rejected", "plain_conv_key_rejected"),
        ("secret-anchored verdict finds the owner's model", "anchored_finds_owner"),
        ("secret-anchored verdict clears the other model (chimera claim)", "anchored_clears_other"),
        ("chimera key passes the key check (the documented limit)", "chimera_key_check_passes"),
        ("chimera key alone 'finds' the other model", "chimera_key_finds_other"),
    ]
    lines += [f"| {label} | {s[k]} / {n} |" for label, k in labels]
    lines += [
        "",
        f"Wrong answers: {s['wrong_answers']}.  Genuine keys against W₀: hidden block mean cosine ≥ "
        f"{s['min_hidden_cosine']:.4f}, visible ≥ {s['min_visible_cosine']:.4f}, hidden p ≤ 1e{s['max_hidden_log10_p']:.1f}.",
    ]
    return "\n".join(lines) + "\n"


def run_hostile_bench(decoys: int = 2000, wide_filters: int = 8192, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time and memory of ``verify`` on hostile suspects (issue 12), as ratios within one run:

    * the module renamed among ``decoys`` random conv tensors: the default screened search
      (``MAX_FITS`` candidates aligned) against the full search (every candidate aligned);
    * the module layer of a D = 256, C = 32 SmallCNN padded with random filters to
      ``wide_filters``: seconds and the growth of the process's peak RSS.
    """
    import resource
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_file

    from freqprint.verification.verifier import MAX_FITS

    out: dict[str, Any] = {"benchmark": "hostile", "torch": torch.__version__, "threads": torch.get_num_threads()}
    g = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        small = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()
        attach(small, FingerprintConfig(target="conv2", secret="bench", filters=16), torch.zeros(1, 1, 28, 28))
        key = extract(small)
        sd = {k: v.detach().clone() for k, v in small.state_dict().items()}
        w = sd.pop("conv2.fingerprint.weight")
        for i in range(decoys):
            sd[f"decoy.{i:05d}.weight"] = torch.randn(w.shape, generator=g)
        sd["zz.renamed"] = w
        path = Path(tmp) / "decoys.safetensors"
        save_file(sd, str(path))
        rows: list[dict[str, Any]] = []
        for label, fits in (("screened (default)", MAX_FITS), ("full search", 10**9)):
            t = time.perf_counter()
            rep = verify(key, path, max_fits=fits)
            rows.append(
                {
                    "search": label,
                    "seconds": time.perf_counter() - t,
                    "found": rep.found,
                    "log10_p": rep.log10_p,
                    "fitted": rep.fitted,
                    "screened": rep.layers_searched,
                }
            )
            log(f"{decoys} decoys, {label}: {rows[-1]['seconds']:.1f} s, found {rep.found}, fitted {rep.fitted}")
        out["decoys"] = {"count": decoys, "rows": rows, "speedup": rows[1]["seconds"] / rows[0]["seconds"]}

        torch.manual_seed(0)
        big = create_model("smallcnn", num_classes=10, in_channels=1).eval()
        attach(big, FingerprintConfig(target="conv2", secret="bench"), torch.zeros(1, 1, 28, 28))
        key = extract(big)
        sd = {k: v.detach().clone() for k, v in big.state_dict().items()}
        w = sd["conv2.fingerprint.weight"]
        extra = torch.randn(wide_filters - w.shape[0], *w.shape[1:], generator=g) * float(w.std())
        sd["conv2.fingerprint.weight"] = torch.cat([w, extra])
        path = Path(tmp) / "wide.safetensors"
        save_file(sd, str(path))
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        rep = verify(key, path)
        seconds = time.perf_counter() - t
        grow = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024  # kB -> MiB on Linux
        out["wide"] = {
            "filters": wide_filters,
            "tensor_mib": wide_filters * w[0].numel() * 4 / 2**20,
            "seconds": seconds,
            "peak_rss_growth_mib": grow,
            "found": rep.found,
            "log10_p": rep.log10_p,
        }
        log(f"module padded to {wide_filters} filters: {seconds:.1f} s, peak RSS +{grow:.0f} MiB, found {rep.found}")
    return out


def hostile_bench_markdown(res: dict[str, Any]) -> str:
    from freqprint.verification.verifier import format_p

    d, w = res["decoys"], res["wide"]
    lines = ["| suspect | search | seconds | found (p) | candidates fitted / screened |", "|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(
            f"| module renamed among {d['count']} random conv tensors | {r['search']} | {r['seconds']:.1f} | "
            f"{'yes' if r['found'] else 'no'} ({format_p(r['log10_p'])}) | {r['fitted']} / {r['screened']} |"
        )
    lines.append(
        f"| module layer padded to {w['filters']} filters ({w['tensor_mib']:.1f} MiB) | default | {w['seconds']:.1f} | "
        f"{'yes' if w['found'] else 'no'} ({format_p(w['log10_p'])}) | peak RSS +{w['peak_rss_growth_mib']:.0f} MiB |"
    )
    lines += ["", f"Screened search {d['speedup']:.1f}× faster than the full search, same verdict."]
    return "\n".join(lines) + "\n"
