"""Registry poisoning: keys a forger builds from innocent models, for ``bench scale``'s
``poisoning`` table (docs/benchmarks.md §12).

The forger knows the method and the code and holds secrets of their own, never the innocent
owners'.  From each innocent model they build:

* **lifted** — the model's fingerprint module extracted as it is (someone else's module);
* **conv** — a conv layer of the model passed off as a module (``conv2``: any model has one);
* **chimera** — a claim bundle under the forger's own secret whose key keeps the hidden block of
  the forger's W₀ and takes the visible block from the innocent model's kernels (module or conv2):
  it passes the claim check by design (training may move the visible block).
"""

from __future__ import annotations

from pathlib import Path

import torch

from freqprint.fingerprint import initial_weight
from freqprint.stats.spectral import kernel_basis
from freqprint.verification.claim import create_claim
from freqprint.verification.key import FingerprintKey, extract
from freqprint.verification.verifier import VISIBLE_GAIN

__all__ = ["forged_keys", "kernels_key"]

GRID = (28, 28)


def kernels_key(w: torch.Tensor, host: str = "conv2") -> FingerprintKey:
    """A key whose module kernels are ``w`` ``[D, C, 3, 3]``, as anyone can build from any layer."""
    return extract({f"{host}.fingerprint.weight": w.contiguous(), f"{host}.fingerprint.grid": torch.tensor([*GRID, 3, 1, 1])})


def _chimera(w: torch.Tensor, forger_secret: str, host: str = "conv2") -> FingerprintKey:
    d, c, k = int(w.shape[0]), int(w.shape[1]), int(w.shape[2])
    v, gain = kernel_basis(GRID, k, 1, include_dc=False)
    visible = gain >= VISIBLE_GAIN
    w0 = initial_weight(forger_secret, host, d, c, k).double()
    z = torch.where(visible, w.double().reshape(d, c, -1) @ v, w0.reshape(d, c, -1) @ v)
    return kernels_key((z @ v.T).reshape(w0.shape).float(), host)


def forged_keys(model: torch.nn.Module, forger_secret: str, out: Path) -> dict[str, Path]:
    """The forger's key files for one innocent model (module docstring), written under ``out``:
    ``{"lifted" (when the model has a module), "conv", "chimera"}``."""
    out.mkdir(parents=True, exist_ok=True)
    keys: dict[str, Path] = {}
    host = model.get_submodule("conv2")
    fp = getattr(host, "fingerprint", None)
    conv_w = (host.get_submodule("base") if fp is not None else host).get_parameter("weight").detach()
    target = fp.get_parameter("weight").detach() if fp is not None else conv_w
    if fp is not None:
        keys["lifted"] = extract(model).save(out / "lifted.key")
    keys["conv"] = kernels_key(conv_w).save(out / "conv.key")
    keys["chimera"] = create_claim(model, forger_secret, key=_chimera(target, forger_secret)).save(out / "chimera.claim")
    return keys
