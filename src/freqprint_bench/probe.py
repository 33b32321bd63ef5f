"""``bench scale --which probe``: what the registry screen's probe costs and what it lets go, on a
full-width ResNet-18 (docs/benchmarks.md §12h).

The screen reads a suspect reading of more than ``2·PROBE_CHANNELS`` input channels first on
``PROBE_CHANNELS`` of them, drawn at random (:mod:`freqprint.scan.sketch`), and sketches the
reading whole only where some key reaches ``Z_PROBE`` on the probe.  So the screen's miss rate now
depends on the draw: each derived suspect here is screened under :data:`SEEDS` probe seeds, and
the row counts the seeds under which the owner's key passed the whole screen (probe, then the
channel score).  Beside it: the screen without a probe (``probe=0``, every reading sketched whole:
the screen before 0.17) and the full test (:func:`freqprint.verification.verifier.verify`), which
decides a match.

Owner: a full-width ResNet-18 (1 input channel, 10 classes, freshly initialised: the screen's
work does not depend on training) with the module on ``layer1.1.conv2`` (256 filters on 64
channels), its key registered with its secret.  Suspects, each the owner after a
function-preserving permutation of every block's channels and the module's filters (another
seed per suspect), then:

* Gaussian noise of σ·(each weight tensor's std) on every weight tensor (:data:`NOISE`);
* each rewrite of :data:`freqprint_bench.rewrites.REWRITES` at the ResNet-18 layout, alone and
  under noise σ = 0.4;
* a real fine-tune (:func:`freqprint_bench.rewrites.fine_tuned`: 1 epoch of SGD on
  :data:`FINE_TUNE_IMAGES` Fashion-MNIST images, every weight moving);
* the module tensor padded with J input channels of random kernels (:data:`PADDING`): a thief who
  pays J more channels into the module so that a probe draws fewer of the real ones.  A tensor-level
  stand-in (the producer is left as it is), so it bounds what any such padding can buy.

The screen's two decoy steps (:func:`freqprint.scan.sketch.score`: 16 decoys first, all 128 only
for a key past half the threshold) against every decoy scored at once: :data:`TWO_STEP_DRAWS`
permuted and noised suspects per level of :data:`TWO_STEP_NOISE`, screened whole.

Unrelated suspects: :data:`UNRELATED` ResNet-18s of other seeds and secrets, each screened under
:data:`SEEDS` probe seeds: keys passed (should be none), and how many readings the probe let on
to the whole sketch (the not-found path's cost depends on it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

__all__ = ["bench_probe", "probe_markdown", "resnet_owner"]

SEEDS = 40  # probe seeds per suspect
NOISE = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75)
REWRITE_NOISE = (0.0, 0.4)
PADDING = (64, 192, 448, 960)  # junk input channels added to the 64 of the module: ×2, ×4, ×8, ×16
UNRELATED = 8
FINE_TUNE_IMAGES = 1000
TWO_STEP_NOISE = (0.7, 0.75, 0.8)  # where the whole screen's z crosses Z_PASS on this owner
TWO_STEP_DRAWS = 10


def resnet_owner(secret: str, seed: int) -> torch.nn.Module:
    """A full-width ResNet-18 (1 channel in, 10 classes), freshly initialised with ``seed``, with
    the fingerprint module of ``secret`` on ``layer1.1.conv2``."""
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.models import create_model

    torch.manual_seed(seed)
    m = create_model("resnet18", num_classes=10, in_channels=1, width=1.0).eval()
    attach(m, FingerprintConfig(target="layer1.1.conv2", secret=secret), torch.zeros(2, 1, 28, 28))
    return m


def _padded(sd: dict[str, torch.Tensor], extra: int, g: torch.Generator, module: str) -> dict[str, torch.Tensor]:
    w = sd[module]
    junk = torch.randn(w.shape[0], extra, *w.shape[2:], generator=g) * w.std()
    cols = torch.cat([w, junk], 1)
    return {**sd, module: cols[:, torch.randperm(cols.shape[1], generator=g)].contiguous()}


def bench_probe(work: Path, log=print) -> dict[str, Any]:
    from freqprint.io.checkpoint import open_tensors
    from freqprint.scan import KeyStore
    from freqprint.scan.sketch import PROBE_CHANNELS, PROBE_REAL, Z_PASS, Z_PROBE
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import verify
    from freqprint_bench.million import _noisy
    from freqprint_bench.rewrites import RESNET18, REWRITES, fine_tuned
    from freqprint_bench.scale import _derived

    owner = resnet_owner("probe-owner", 0)
    key = extract(owner, secret="probe-owner")
    reg = KeyStore(work / "probe.db")
    reg.add(key.save(work / "probe.key"), name="owner", secret="probe-owner")
    (owner_id,) = next(iter(reg.groups().values())).ids
    path = work / "probe-suspect.safetensors"

    def tally(suspect: str, sigma: float, sd: dict[str, torch.Tensor]) -> dict[str, Any]:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        store = open_tensors(path)
        probed = [owner_id in reg.screen(store, PROBE_CHANNELS, s).passed for s in range(SEEDS)]
        whole = reg.screen(store, 0).passed.get(owner_id)
        row = {
            "suspect": suspect,
            "sigma": sigma,
            "seeds": SEEDS,
            "screen_probe": sum(probed),
            "whole_z": whole,
            "verify": verify(key, path, describe=False).found,
        }
        log(f"probe {row}")
        return row

    rows: list[dict[str, Any]] = []
    case = 0
    for sigma in NOISE:
        case += 1
        sd = _noisy(_derived(owner, seed=case).state_dict(), sigma, seed=case)
        rows.append(tally("permuted + noise", sigma, sd))
    for name, f in REWRITES.items():
        for sigma in REWRITE_NOISE:
            case += 1
            sd = _noisy(_derived(owner, seed=case).state_dict(), sigma, seed=case)
            rows.append(tally(name, sigma, f(sd, torch.Generator().manual_seed(case), RESNET18)))
    t0 = time.perf_counter()
    tuned = fine_tuned(_derived(owner, seed=case + 1), seed=0, images=FINE_TUNE_IMAGES)
    log(f"probe: fine-tuning took {time.perf_counter() - t0:.0f} s")
    rows.append(tally(f"fine-tuned: 1 epoch of SGD on {FINE_TUNE_IMAGES:,} Fashion-MNIST images", 0.0, tuned.state_dict()))
    for extra in PADDING:
        for sigma in REWRITE_NOISE:
            case += 1
            sd = _noisy(_derived(owner, seed=case).state_dict(), sigma, seed=case)
            label = f"module padded with {extra} random input channels (×{(64 + extra) // 64})"
            rows.append(tally(label, sigma, _padded(sd, extra, torch.Generator().manual_seed(case), RESNET18.module)))

    two_step = _two_step(reg, owner, owner_id, key, case, log)

    unrelated: list[dict[str, Any]] = []
    for i in range(UNRELATED):
        save_file({k: v.contiguous() for k, v in resnet_owner(f"probe-other-{i}", 100 + i).state_dict().items()}, str(path))
        store = open_tensors(path)
        got = [reg.screen(store, PROBE_CHANNELS, s) for s in range(SEEDS)]
        unrelated.append(
            {
                "suspect": f"ResNet-18, seed {100 + i}, its own secret",
                "seeds": SEEDS,
                "passed": sum(owner_id in x.passed for x in got),
                "probed": got[0].probed,
                "sketched_max": max(x.sketched for x in got),
                "sketched_mean": sum(x.sketched for x in got) / SEEDS,
            }
        )
        log(f"probe unrelated {unrelated[-1]}")
    reg.close()
    return {
        "rows": rows,
        "two_step": two_step,
        "unrelated": unrelated,
        "probe_channels": PROBE_CHANNELS,
        "probe_real": PROBE_REAL,
        "z_probe": Z_PROBE,
        "z_pass": Z_PASS,
        "model": "resnet18 width 1, module on layer1.1.conv2 (256 filters, 64 channels), freshly initialised",
    }


def _two_step(reg, owner, owner_id: int, key, case: int, log) -> list[dict[str, Any]]:
    """The screen's two decoy steps against all of its decoys at once: :data:`TWO_STEP_DRAWS`
    suspects per noise level of :data:`TWO_STEP_NOISE` (where the screen's z crosses Z_PASS),
    screened whole (no probe) as the screen runs (``FIRST_DECOYS`` first, all only past half the
    threshold) and with every decoy scored for every key; with the full test beside them."""
    import freqprint.scan.sketch as sketch
    from freqprint.io.checkpoint import open_tensors
    from freqprint.verification.verifier import verify
    from freqprint_bench.million import _noisy
    from freqprint_bench.scale import _derived

    out = []
    first = sketch.FIRST_DECOYS
    for sigma in TWO_STEP_NOISE:
        hits = {"two_step": 0, "all_decoys": 0, "verify": 0}
        for _ in range(TWO_STEP_DRAWS):
            case += 1
            sd = _noisy(_derived(owner, seed=case).state_dict(), sigma, seed=case)
            hits["two_step"] += owner_id in reg.screen(open_tensors(sd), 0).passed
            try:
                sketch.FIRST_DECOYS = sketch.DECOYS  # every decoy in the first step
                hits["all_decoys"] += owner_id in reg.screen(open_tensors(sd), 0).passed
            finally:
                sketch.FIRST_DECOYS = first
            hits["verify"] += verify(key, sd, describe=False).found
        out.append({"sigma": sigma, "draws": TWO_STEP_DRAWS, **hits})
        log(f"probe two-step {out[-1]}")
    return out


def _whole(x: dict[str, Any]) -> str:
    return "fail" if x["whole_z"] is None else f"pass (z {x['whole_z']:.1f})"


def _probe_size(p: dict[str, Any]) -> str:
    """The probe's size as the run drew it: fixed before 0.27, ``max(16, ⌈4·C′/C⌉)`` since."""
    if "probe_real" not in p:
        return str(p["probe_channels"])
    return f"max({p['probe_channels']}, ⌈{p['probe_real']}·C′/64⌉) of a reading's C′"


def probe_markdown(p: dict[str, Any]) -> list[str]:
    out = [
        f"## the screen's probe on a full-width ResNet-18 ({p['model']}; probes of {_probe_size(p)} channels, "
        f"z ≥ {p['z_probe']} to sketch a reading whole, z ≥ {p['z_pass']} to pass)",
        "",
        "| suspect | σ | screen with probe: seeds passed | screen without probe | full test |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {x['suspect']} | {x['sigma']} | {x['screen_probe']}/{x['seeds']} | {_whole(x)} | "
        f"{'found' if x['verify'] else 'not found'} |"
        for x in p["rows"]
    ]
    if p.get("two_step"):
        out += [
            "",
            "| σ (screened whole, no probe) | screen: two decoy steps | screen: every decoy scored | full test |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {x['sigma']} | {x['two_step']}/{x['draws']} | {x['all_decoys']}/{x['draws']} | {x['verify']}/{x['draws']} |"
            for x in p["two_step"]
        ]
    out += [
        "",
        "| unrelated suspect | seeds where the key passed | readings probed | readings sketched whole per seed: mean (max) |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {x['suspect']} | {x['passed']}/{x['seeds']} | {x['probed']} | {x['sketched_mean']:.2f} ({x['sketched_max']}) |"
        for x in p["unrelated"]
    ]
    out.append("")
    return out
