"""The owner's key: the fingerprint spectra at S′ plus everything needed to check a suspect.

A key holds ``T_uv(W_d)`` for every filter d and every frequency of the chosen set (S′ by default;
one representative per conjugate pair, with its multiplicity), the configuration (layer, M, N, K,
r, τ), a UTC timestamp and a SHA-256 **commitment** over all of it.  It is one safetensors file:
tensors ``spectra_real``/``spectra_imag`` ``[D, C, F]``, ``frequencies`` ``[F, 2]``,
``multiplicity`` ``[F]``, and the JSON metadata in the header.  Publishing the commitment (e.g. in
a dated release note) lets an owner later prove the key existed then; loading recomputes it and
refuses a key whose content no longer matches.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import nn

from freqprint.checkpoint import check_finite, load_state_dict
from freqprint.errors import FreqprintError
from freqprint.module import get_fingerprint_module
from freqprint.spectral import Frequency, conjugate_weights, invariant_frequencies, low_gain_frequencies, revised_dft_at

__all__ = ["FREQUENCY_SETS", "FingerprintKey", "extract", "find_module_weight", "frequency_set"]

FORMAT = "freqprint-key/2"
OLD_FORMATS = ("freqprint-key/1",)
FREQUENCY_SETS = ("sprime", "low-gain")


def frequency_set(name: str, grid: tuple[int, int], kernel_size: int, radius: int) -> list[Frequency]:
    """``"sprime"``: the paper's S′.  ``"low-gain"``: every frequency whose Dirichlet gain is no
    larger than S′'s worst (paper-notes §2.4), low band excluded; see BENCHMARKS.md for the study."""
    if name == "sprime":
        return invariant_frequencies(grid, kernel_size)
    if name == "low-gain":
        return low_gain_frequencies(grid, kernel_size, radius)
    raise FreqprintError(f"unknown frequency set {name!r}; choose from {', '.join(FREQUENCY_SETS)}")


@dataclass
class FingerprintKey:
    layer: str
    grid: tuple[int, int]
    kernel_size: int
    radius: int
    frequency_set: str
    frequencies: list[Frequency]
    multiplicity: list[int]
    spectra: torch.Tensor  # complex64 [D, C, F]
    weights: torch.Tensor | None = None  # float32 [D, C, K, K]: the module's kernels
    tau: float = 0.99
    merge: str = "linear"
    created: str = ""
    commitment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def filters(self) -> int:
        return int(self.spectra.shape[0])

    @property
    def channels(self) -> int:
        return int(self.spectra.shape[1])

    def kernels(self) -> torch.Tensor:
        """The module's K×K kernels ``[D, C, K, K]`` (float64), as the verifier compares them.

        They are stored beside the spectra because S′ alone does not determine a kernel: its rows
        ``u`` and ``M−u`` are conjugate, so S′ fixes only ``W·f`` and ``Wᵀ·f`` (f = the phase vector
        of row u), and every kernel ``n·nᵀ`` with n ⟂ Re f, Im f is invisible to it.
        """
        if self.weights is None:
            raise FreqprintError("this key holds no kernels")
        return self.weights.double()

    def metadata(self) -> dict[str, Any]:
        meta = {
            "format": FORMAT,
            "layer": self.layer,
            "grid": list(self.grid),
            "kernel_size": self.kernel_size,
            "radius": self.radius,
            "frequency_set": self.frequency_set,
            "tau": self.tau,
            "filters": self.filters,
            "channels": self.channels,
            "created": self.created,
            "extra": self.extra,
        }
        if self.merge != "linear":  # keys of linear modules keep the fields (and commitments) of 0.1
            meta["merge"] = self.merge
        return meta

    def compute_commitment(self) -> str:
        """SHA-256 over the canonical metadata, the frequencies and the spectra's bytes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.metadata(), sort_keys=True, separators=(",", ":")).encode())
        h.update(np.asarray(self.frequencies, dtype="<i8").tobytes())
        h.update(np.asarray(self.multiplicity, dtype="<i8").tobytes())
        s = self.spectra.to(torch.complex64)
        h.update(s.real.contiguous().numpy().astype("<f4").tobytes())
        h.update(s.imag.contiguous().numpy().astype("<f4").tobytes())
        if self.weights is not None:
            h.update(self.weights.float().contiguous().numpy().astype("<f4").tobytes())
        return h.hexdigest()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self.spectra.to(torch.complex64)
        tensors = {
            "spectra_real": s.real.contiguous(),
            "spectra_imag": s.imag.contiguous(),
            "frequencies": torch.tensor(self.frequencies, dtype=torch.int64).reshape(-1, 2),
            "multiplicity": torch.tensor(self.multiplicity, dtype=torch.int64),
        }
        if self.weights is not None:
            tensors["kernels"] = self.weights.float().contiguous()
        meta = dict(self.metadata(), commitment=self.commitment)
        save_file(tensors, str(path), metadata={"freqprint.key": json.dumps(meta, sort_keys=True)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> FingerprintKey:
        path = Path(path)
        sd = load_state_dict(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["freqprint.key"])
        except (KeyError, ValueError, SafetensorError, OSError):
            raise FreqprintError(f"{path} is not a freqprint key (no key metadata)") from None
        if meta.get("format") in OLD_FORMATS:
            raise FreqprintError(f"{path} is a {meta['format']} key, which cannot be verified by this version "
                                 "(its spectra do not determine the kernels); re-extract it: freqprint extract MODEL --out KEY")
        if meta.get("format") != FORMAT:
            raise FreqprintError(f"{path}: unsupported key format {meta.get('format')!r}")
        need = {"spectra_real", "spectra_imag", "frequencies", "multiplicity", "kernels"}
        if not need <= set(sd):
            raise FreqprintError(f"{path}: key file lacks tensors {sorted(need - set(sd))}")
        check_finite(sd, str(path))
        key = cls(
            layer=meta["layer"],
            grid=tuple(meta["grid"]),
            kernel_size=int(meta["kernel_size"]),
            radius=int(meta["radius"]),
            frequency_set=meta["frequency_set"],
            frequencies=[tuple(f) for f in sd["frequencies"].tolist()],
            multiplicity=sd["multiplicity"].tolist(),
            spectra=torch.complex(sd["spectra_real"].float(), sd["spectra_imag"].float()),
            weights=sd["kernels"].float(),
            tau=float(meta["tau"]),
            merge=meta.get("merge", "linear"),
            created=meta["created"],
            commitment=meta.get("commitment", ""),
            extra=meta.get("extra", {}),
        )
        if key.compute_commitment() != key.commitment:
            raise FreqprintError(f"{path}: the key's content does not match its SHA-256 commitment (tampered or corrupt)")
        return key


def find_module_weight(sd: dict[str, torch.Tensor], target: str | None, source: str) -> tuple[str, torch.Tensor, list[int]]:
    """``(name, weight, grid)`` of the one fingerprint module stored in a state dict; ``grid`` is
    ``[M, N, K, r]`` plus ``1`` for the ReLU merge."""
    names = [k[: -len(".weight")] for k in sd if k.endswith("fingerprint.weight") and k[: -len(".weight")] + ".grid" in sd]
    if target is not None:
        names = [n for n in names if n == f"{target}.fingerprint" or n == target]
    if not names:
        raise FreqprintError(f"{source} carries no fingerprint module" + (f" at {target!r}" if target else ""))
    if len(names) > 1:
        raise FreqprintError(f"{source} has several fingerprint modules ({', '.join(names)}); pass target=")
    return f"{names[0]}.weight", sd[f"{names[0]}.weight"], sd[f"{names[0]}.grid"].tolist()


def extract(
    source: nn.Module | str | Path | dict[str, torch.Tensor],
    frequencies: str = "sprime",
    tau: float = 0.99,
    target: str | None = None,
    extra: dict[str, Any] | None = None,
) -> FingerprintKey:
    """The key of a fingerprinted model, checkpoint file or state dict.

    Args:
        frequencies: ``"sprime"`` (the paper's S′) or ``"low-gain"`` (see :func:`frequency_set`).
        tau: the per-component cosine threshold of the τ-score (paper: 0.99).
        target: the host layer, when the model carries several modules.
    """
    if isinstance(source, nn.Module):
        host, fp = get_fingerprint_module(source, target)
        layer, weight = f"{host}.fingerprint.weight", fp.weight.detach()
        grid = fp.grid.tolist()
    else:
        sd = source if isinstance(source, dict) else load_state_dict(source)
        check_finite(sd, str(source) if not isinstance(source, dict) else "state dict")
        layer, weight, grid = find_module_weight(sd, target, str(source) if not isinstance(source, dict) else "state dict")
    if len(grid) not in (4, 5):
        raise FreqprintError(f"the fingerprint module's grid buffer {grid} is not [M, N, K, r(, merge)]")
    m, n, k, r = (int(g) for g in grid[:4])
    merge = "relu" if len(grid) == 5 else "linear"
    if not 0 < tau <= 1:
        raise FreqprintError(f"tau must be in (0, 1], got {tau}")
    freqs = frequency_set(frequencies, (m, n), k, r)
    reps, mult = conjugate_weights(freqs, (m, n))
    spectra = revised_dft_at(weight.detach().double().cpu(), (m, n), reps).to(torch.complex64)
    key = FingerprintKey(
        layer=layer,
        grid=(m, n),
        kernel_size=k,
        radius=r,
        frequency_set=frequencies,
        frequencies=reps,
        multiplicity=mult,
        spectra=spectra,
        weights=weight.detach().float().cpu().clone(),
        tau=tau,
        merge=merge,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        extra=extra or {},
    )
    key.commitment = key.compute_commitment()
    return key
