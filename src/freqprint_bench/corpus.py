"""A folder of mixed checkpoints with known labels, for the scan's test and benchmark.

Owners are SmallCNNs with a fingerprint module, each seeded by its own secret; their anchored keys
go into a registry.  The folder then holds, in every format the scan reads (safetensors, torch
zip, a sharded folder with an index, a Hugging Face-style folder):

* **derived** — each owner's model rewritten by the attack suite's function-preserving or
  fingerprint-keeping attacks (permutations, scalings, dead channels, dummy filters, the module
  on a transposed grid, factorisation, invisible-direction redraw, pruning, quantisation,
  backbone noise), after a block permutation, and stored under a new name in another layout
  (flat, HWIO, OHWI, fp16, transposed or rotated kernels);
* **unrelated** — models fingerprinted with secrets not in the registry, and plain models;
* **corrupt** — truncated files, random bytes, an empty file, NaN in the module's weights;
* **hostile** — a pickle that would run code, a header claiming 2⁶⁰ bytes, a shard index that
  points outside its folder.

``labels`` maps each checkpoint path to its owner's name, ``None`` (must not match) or
``"error"`` (must be reported as an error).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

from freqprint.attacks import Compose, create_attack, relayout_state_dict
from freqprint.attacks.equivariance import BlockPermutation
from freqprint.errors import NotApplicable
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.models import create_model
from freqprint.verification.key import extract

__all__ = ["DERIVING_ATTACKS", "build_corpus", "owner_model"]

DERIVING_ATTACKS = (
    "scale-channels",
    "permute-module",
    "scale-module",
    "grid-transpose",
    "dummy-filters(extra=16)",
    "pad-channels(extra=4)",
    "factorize",
    "redraw-invisible",
    "prune",
    "quantize",
    "noise-backbone",
    "scale-blocks",
)
LAYOUTS = ("rename", "flat", "HWIO", "OHWI", "fp16", "T", "rot90", None)  # None: as trained, module name kept
FORMATS = ("safetensors", "pt", "sharded", "hf")


def owner_model(secret: str, width: int, filters: int) -> torch.nn.Module:
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=width).eval()
    attach(model, FingerprintConfig(target="conv2", secret=secret, filters=filters), torch.zeros(1, 1, 28, 28))
    return model


def _write(sd: dict[str, torch.Tensor], path: Path, fmt: str) -> Path:
    sd = {k: v.detach().contiguous().clone() for k, v in sd.items()}
    if fmt == "safetensors":
        save_file(sd, str(path.with_suffix(".safetensors")))
        return path.with_suffix(".safetensors")
    if fmt == "pt":
        torch.save(sd, path.with_suffix(".pt"))
        return path.with_suffix(".pt")
    path.mkdir(parents=True)
    if fmt == "hf":
        (path / "config.json").write_text(json.dumps({"model_type": "smallcnn"}))
        save_file(sd, str(path / "model.safetensors"))
        return path
    names = sorted(sd)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    wmap = {}
    for shard, ks in shards.items():
        save_file({k: sd[k] for k in ks}, str(path / shard))
        wmap.update({k: shard for k in ks})
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wmap}))
    return path


def build_corpus(
    root: str | Path,
    owners: int = 3,
    derived_per_owner: int = 40,
    unrelated: int = 50,
    corrupt: int = 15,
    hostile: int = 15,
    width: int = 8,
    filters: int = 32,
) -> tuple[list[Path], dict[str, str | None]]:
    """Write the corpus under ``root``: ``(owner key files, labels)`` (module docstring)."""
    root = Path(root)
    (root / "keys").mkdir(parents=True, exist_ok=True)
    scan_dir = root / "checkpoints"
    scan_dir.mkdir(exist_ok=True)
    labels: dict[str, str | None] = {}
    keys = []
    models = {}
    for o in range(owners):
        name = f"owner{o}"
        m = owner_model(f"secret-{name}", width, filters)
        models[name] = m
        keys.append(extract(m, secret=f"secret-{name}").save(root / "keys" / f"{name}.key"))
    i = 0
    for name, m in models.items():
        made = 0
        j = 0
        while made < derived_per_owner:
            spec = DERIVING_ATTACKS[j % len(DERIVING_ATTACKS)]
            j += 1
            try:
                s = Compose([BlockPermutation(seed=i), create_attack(spec)])(m)
            except NotApplicable:
                continue
            sd = s.state_dict()
            layout = LAYOUTS[i % len(LAYOUTS)]
            if layout is not None and spec.split("(")[0] not in ("grid-transpose", "factorize"):
                sd = relayout_state_dict(sd, layout)
            fmt = FORMATS[i % len(FORMATS)]
            p = _write(sd, scan_dir / f"derived-{i:03d}-{name}-{spec.split('(')[0]}", fmt)
            labels[str(p)] = name
            i += 1
            made += 1
    for u in range(unrelated):
        if u % 2 == 0:
            m = owner_model(f"stranger-{u}", width, filters)
        else:
            torch.manual_seed(1000 + u)
            m = create_model("smallcnn", num_classes=10, in_channels=1, width=width * (1 + u % 3))
        p = _write(m.state_dict(), scan_dir / f"unrelated-{u:03d}", FORMATS[u % len(FORMATS)])
        labels[str(p)] = None
    some = next(p for p, lab in labels.items() if lab and p.endswith(".safetensors"))
    data = Path(some).read_bytes()
    for c in range(corrupt):
        p = scan_dir / f"corrupt-{c:03d}.safetensors"
        kind = c % 4
        if kind == 0:
            p.write_bytes(data[: len(data) * (c + 1) // (corrupt + 2)])
        elif kind == 1:
            p.write_bytes(os.urandom(4096 + c))
        elif kind == 2:
            p = p.with_suffix(".pt")
            p.write_bytes(b"")
        else:
            m = owner_model("secret-owner0", width, filters)
            sd = {k: v.clone() for k, v in m.state_dict().items()}
            sd["conv2.fingerprint.weight"][0, 0, 0, 0] = float("nan")
            save_file(sd, str(p))
        labels[str(p)] = "error"
    for h in range(hostile):
        kind = h % 3
        if kind == 0:
            p = scan_dir / f"hostile-{h:03d}.pt"

            class Evil:
                def __reduce__(self):
                    return (os.system, ("echo pwned > /tmp/freqprint-pwned",))

            torch.save({"w": torch.zeros(2), "x": Evil()}, p, pickle_module=pickle)
        elif kind == 1:
            p = scan_dir / f"hostile-{h:03d}.safetensors"
            p.write_bytes(struct.pack("<Q", 2**60) + b"{}")
        else:
            p = scan_dir / f"hostile-{h:03d}"
            p.mkdir()
            (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../../etc/passwd"}}))
        labels[str(p)] = "error"
    return keys, labels
