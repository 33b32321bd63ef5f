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
from safetensors.torch import save as safetensors_save
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument, NoMaterial, UnreadableFile
from freqprint.fingerprint import get_fingerprint_module, initial_weight
from freqprint.io.artefact import Fields, header_metadata, read_json_metadata, tensors_from_bytes
from freqprint.io.checkpoint import TensorStore, check_finite, open_tensors
from freqprint.stats.spectral import (
    Frequency,
    conjugate_weights,
    count_invariant_frequencies,
    count_low_gain_frequencies,
    invariant_frequencies,
    low_gain_frequencies,
    revised_dft_at,
)

__all__ = [
    "FREQUENCY_SETS",
    "FingerprintKey",
    "check_key_size",
    "extract",
    "find_module_weight",
    "frequency_count",
    "frequency_set",
    "parse_grid",
    "read_json_metadata",
]

FORMAT = "freqprint-key/2"
OLD_FORMATS = ("freqprint-key/1",)
FREQUENCY_SETS = ("sprime", "low-gain")
MAX_GRID = 4096  # feature grids larger than this are refused (a hostile header cannot make us allocate M·N)
MAX_KEY_BYTES = 256 * 2**20  # a key for D=256 filters on C=512 channels is ~5 MB


def frequency_count(name: str, grid: tuple[int, int], kernel_size: int, radius: int) -> int:
    """How many frequencies :func:`frequency_set` holds, in O(M + N) time and memory."""
    if name == "sprime":
        return count_invariant_frequencies(grid, kernel_size)
    if name == "low-gain":
        return count_low_gain_frequencies(grid, kernel_size, radius)
    raise InvalidArgument(f"unknown frequency set {name!r}; choose from {', '.join(FREQUENCY_SETS)}")


def frequency_set(name: str, grid: tuple[int, int], kernel_size: int, radius: int) -> list[Frequency]:
    """``"sprime"``: the paper's S′.  ``"low-gain"``: every frequency whose Dirichlet gain is no
    larger than S′'s worst, low band excluded; see docs/benchmarks.md for the study."""
    if name == "sprime":
        return invariant_frequencies(grid, kernel_size)
    if name == "low-gain":
        return low_gain_frequencies(grid, kernel_size, radius)
    raise InvalidArgument(f"unknown frequency set {name!r}; choose from {', '.join(FREQUENCY_SETS)}")


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
    anchor: torch.Tensor | None = None  # float32 [D, C, K, K]: W₀, the secret-seeded initial kernels (see decision_kernels)
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

    def decision_kernels(self) -> torch.Tensor:
        """The kernels the verifier's p-value is computed against: the secret-seeded initial kernels
        W₀ when the key holds them (``extract(..., secret=...)``), else the trained ones.

        Why W₀: the verifier's null says the key's kernel directions are uniform and independent of
        an unrelated suspect.  That is exactly true of W₀, a fresh Gaussian draw from the secret.
        It is true of the trained kernels only while training barely moves them — SGD with the
        module's small projection (paper App. B.1).  Adam moves each kernel entry by about its
        learning rate per step whatever the gradient's size, along directions shared by every
        model trained on similar data: an independently trained ViT then matches the owner's
        trained kernels at p = 1e-10.6 and 1e-399.1, and W₀ at p = 1 (docs/benchmarks.md §11, docs/security.md).
        An anchor in a key file is as trustworthy as the file: an arbiter regenerates W₀ from the
        revealed secret instead (:mod:`freqprint.verification.claim`)."""
        return (self.anchor if self.anchor is not None else self.kernels()).double()

    @property
    def anchored(self) -> bool:
        return self.anchor is not None

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
        if self.anchor is not None:  # unanchored keys keep their earlier commitments
            meta["anchor"] = "init"
        return meta

    def compute_commitment(self) -> str:
        """SHA-256 over the canonical metadata, the frequencies and the spectra's bytes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.metadata(), sort_keys=True, separators=(",", ":")).encode())
        h.update(np.asarray(self.frequencies, dtype="<i8").tobytes())
        h.update(np.asarray(self.multiplicity, dtype="<i8").tobytes())
        s = self.spectra.to(torch.complex64)
        for part in (s.real, s.imag, self.weights, self.anchor):
            if part is None:
                continue
            flat = part.detach().float().reshape(part.shape[0], -1) if part.ndim else part.detach().float().reshape(1, 1)
            for i in range(0, flat.shape[0], 16):  # a few filters at a time: no full copy of a large key's spectra
                h.update(np.ascontiguousarray(flat[i : i + 16].numpy(), dtype="<f4").data)
        return h.hexdigest()

    def save(self, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
        """One safetensors file; ``extra_metadata`` adds header fields (a claim bundle's)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes(extra_metadata))
        return path

    def to_bytes(self, extra_metadata: dict[str, str] | None = None) -> bytes:
        """The key file's bytes (what :meth:`save` writes)."""
        s = self.spectra.to(torch.complex64)
        tensors = {
            "spectra_real": s.real.contiguous(),
            "spectra_imag": s.imag.contiguous(),
            "frequencies": torch.tensor(self.frequencies, dtype=torch.int64).reshape(-1, 2),
            "multiplicity": torch.tensor(self.multiplicity, dtype=torch.int64),
        }
        if self.weights is not None:
            tensors["kernels"] = self.weights.float().contiguous()
        if self.anchor is not None:
            tensors["anchor"] = self.anchor.float().contiguous()
        meta = dict(self.metadata(), commitment=self.commitment)
        return safetensors_save(tensors, metadata={**(extra_metadata or {}), "freqprint.key": json.dumps(meta, sort_keys=True)})

    @classmethod
    def load(cls, path: str | Path) -> FingerprintKey:
        """Read a key (or a claim bundle, which holds one) and check its commitment.  Every
        malformed field gives one :class:`FreqprintError` naming it.  The file is read once, as a
        regular file of at most ``MAX_KEY_BYTES``, and its tensors are views of those bytes."""
        from freqprint.io.files import read_small_file

        return cls.from_bytes(read_small_file(path, MAX_KEY_BYTES, "key file"), str(path))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, source: str) -> FingerprintKey:
        """A key from the bytes of a key file (a registry keeps them in its database); the same
        checks as :meth:`load`."""
        if len(data) > MAX_KEY_BYTES:
            raise UnreadableFile(f"{source}: {len(data)} bytes, more than a key can need")
        meta = header_metadata(data, "freqprint.key", "a freqprint key", source)
        if meta.get("format") in OLD_FORMATS:
            raise FreqprintError(
                f"{source} is a {meta['format']} key, which cannot be verified by this version "
                "(its spectra do not determine the kernels); re-extract it: freqprint extract MODEL --out KEY"
            )
        if meta.get("format") != FORMAT:
            raise FreqprintError(f"{source}: unsupported key format {meta.get('format')!r}")
        return cls.from_parts(meta, tensors_from_bytes(data, source), source)

    @classmethod
    def from_parts(cls, meta: dict[str, Any], sd: dict[str, torch.Tensor], source: str) -> FingerprintKey:
        """A key from its header metadata and tensors, every field type- and range-checked."""
        need = {"spectra_real", "spectra_imag", "frequencies", "multiplicity", "kernels"}
        if not need <= set(sd):
            raise FreqprintError(f"{source}: key file lacks tensors {sorted(need - set(sd))}")
        f = Fields(meta, source)
        layer = f.get("layer", str)
        grid = f.get("grid", list)
        if len(grid) != 2 or not all(type(g) is int and 1 <= g <= MAX_GRID for g in grid):
            raise FreqprintError(f"{source}: key field 'grid' must be [M, N] with 1 <= M, N <= {MAX_GRID}, got {grid!r}")
        k = f.get("kernel_size", int)
        r = f.get("radius", int)
        if not (1 <= k <= min(grid)) or not (0 <= r and 2 * r + 1 <= min(grid)):
            raise FreqprintError(f"{source}: kernel_size {k} / radius {r} do not fit the {grid[0]}x{grid[1]} grid")
        fset = f.get("frequency_set", str)
        if fset not in FREQUENCY_SETS:
            raise FreqprintError(f"{source}: key field 'frequency_set' must be one of {', '.join(FREQUENCY_SETS)}, got {fset!r}")
        tau = f.get("tau", (int, float))
        if not (0 < tau <= 1):  # also false for NaN
            raise FreqprintError(f"{source}: key field 'tau' must be in (0, 1], got {tau!r}")
        merge = meta.get("merge", "linear")
        if merge not in ("relu", "linear"):
            raise FreqprintError(f"{source}: key field 'merge' must be 'relu' or 'linear', got {merge!r}")
        created = f.get("created", str)
        extra = meta.get("extra", {})
        commitment = meta.get("commitment", "")
        if not isinstance(extra, dict) or not isinstance(commitment, str):
            raise FreqprintError(f"{source}: key fields 'extra' (an object) or 'commitment' (a string) are malformed")
        w = sd["kernels"]
        if w.ndim != 4 or tuple(w.shape[2:]) != (k, k) or w.shape[0] < 1 or w.shape[1] < 1 or not w.is_floating_point():
            raise FreqprintError(
                f"{source}: key tensor 'kernels' must be floating [D, C, {k}, {k}], got {list(w.shape)} {w.dtype}"
            )
        d, c = int(w.shape[0]), int(w.shape[1])
        fr, mu = sd["frequencies"], sd["multiplicity"]
        n_f = int(fr.shape[0]) if fr.ndim == 2 else -1
        shapes_ok = (
            fr.ndim == 2
            and fr.shape[1] == 2
            and not fr.is_floating_point()
            and tuple(mu.shape) == (n_f,)
            and not mu.is_floating_point()
            and all(tuple(sd[x].shape) == (d, c, n_f) and sd[x].is_floating_point() for x in ("spectra_real", "spectra_imag"))
        )
        if not shapes_ok:
            raise FreqprintError(
                f"{source}: key tensors 'frequencies' [F, 2], 'multiplicity' [F] and spectra [D, C, F] do not agree"
            )
        if f.get("filters", int) != d or f.get("channels", int) != c:
            raise FreqprintError(f"{source}: key fields 'filters'/'channels' disagree with the kernels' shape {list(w.shape)}")
        if n_f and (
            bool((fr < 0).any()) or bool((fr[:, 0] >= grid[0]).any()) or bool((fr[:, 1] >= grid[1]).any()) or bool((mu < 1).any())
        ):
            raise FreqprintError(f"{source}: key frequencies lie outside the {grid[0]}x{grid[1]} grid or have multiplicity < 1")
        anchor = None
        if "anchor" in meta:
            if meta["anchor"] != "init" or "anchor" not in sd:
                raise FreqprintError(f"{source}: key field 'anchor' must be 'init' and come with an 'anchor' tensor")
            anchor = sd["anchor"]
            if tuple(anchor.shape) != tuple(w.shape) or not anchor.is_floating_point():
                raise FreqprintError(
                    f"{source}: key tensor 'anchor' must be floating {list(w.shape)}, got {list(anchor.shape)} {anchor.dtype}"
                )
            check_finite({"anchor": anchor}, source)
            anchor = anchor.float().clone()
        check_finite({x: sd[x] for x in need}, source)
        key = cls(
            layer=layer,
            grid=(int(grid[0]), int(grid[1])),
            kernel_size=k,
            radius=r,
            frequency_set=fset,
            frequencies=[tuple(x) for x in fr.tolist()],
            multiplicity=mu.tolist(),
            spectra=torch.complex(sd["spectra_real"].float(), sd["spectra_imag"].float()),
            weights=w.float().clone(),  # not a view of the file's buffer: the key must not pin it
            anchor=anchor,
            tau=float(tau),
            merge=merge,
            created=created,
            commitment=commitment,
            extra=extra,
        )
        if key.compute_commitment() != key.commitment:
            raise FreqprintError(f"{source}: the key's content does not match its SHA-256 commitment (tampered or corrupt)")
        return key


WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # what a module's kernels are read from
MAX_KEY_FREQUENCIES = 2**18  # S′ of K = 7 on the largest grid holds 49,152; a real module's key a few hundred


def find_module_weight(
    source: TensorStore | dict[str, torch.Tensor], target: str | None, name: str | None = None
) -> tuple[str, torch.Tensor, list[int]]:
    """``(name, weight, grid)`` of the one fingerprint module stored in a checkpoint (a
    :class:`~freqprint.io.checkpoint.TensorStore` or a state dict); ``grid`` is ``[M, N, K, r]`` plus
    ``1`` for the ReLU merge.  Only the module's two tensors are read, each after its shape was
    checked from the header, and both are validated: the grid holds integers, the weight is a
    finite float16/bfloat16/float32/float64 tensor."""
    store = source if isinstance(source, TensorStore) else TensorStore.of(source, name or "state dict")
    src = name or store.name
    names = [
        k[: -len(".weight")] for k in store.shapes if k.endswith("fingerprint.weight") and k[: -len(".weight")] + ".grid" in store
    ]
    if target is not None:
        names = [n for n in names if n == f"{target}.fingerprint" or n == target]
    if not names:
        raise NoMaterial(f"{src} carries no fingerprint module" + (f" at {target!r}" if target else ""))
    if len(names) > 1:
        raise InvalidArgument(f"{src} has several fingerprint modules ({', '.join(names)}); pass target=")
    wname, gname = f"{names[0]}.weight", f"{names[0]}.grid"
    if len(store.shapes[gname][0]) != 1 or store.shapes[gname][0][0] not in (4, 5):
        raise FreqprintError(
            f"{src}: the fingerprint module's grid buffer has shape {list(store.shapes[gname][0])}, not [4] or [5]"
        )
    if len(store.shapes[wname][0]) != 4:
        raise FreqprintError(f"{src}: the fingerprint module's weight has shape {list(store.shapes[wname][0])}, not [D, C, K, K]")
    g = store.get(gname)
    if (
        g.is_complex()
        or g.dtype == torch.bool
        or (g.is_floating_point() and not bool((g == g.round()).all() & g.isfinite().all()))
    ):
        raise FreqprintError(f"{src}: the fingerprint module's grid buffer {g.tolist()} does not hold integers")
    weight = check_module_weight(store.get(wname), wname, src)
    return wname, weight, [int(x) for x in g.tolist()]


def check_module_weight(weight: torch.Tensor, name: str, source: str) -> torch.Tensor:
    """A module weight as read: a float16/bfloat16/float32/float64 tensor of finite values."""
    if weight.dtype not in WEIGHT_DTYPES:
        raise FreqprintError(
            f"{source}: the fingerprint module's weight {name!r} is stored as "
            f"{str(weight.dtype).replace('torch.', '')}; it is read from float16, bfloat16, float32 or float64"
        )
    check_finite({name: weight}, source)
    return weight


def parse_grid(grid: list[int], weight: torch.Tensor) -> tuple[int, int, int, int, str]:
    """``(M, N, K, r, merge)`` from a module's grid buffer, checked against its weight: a hostile
    buffer (huge M·N, K larger than the grid) is refused before anything is allocated from it."""
    if len(grid) not in (4, 5) or (len(grid) == 5 and int(grid[4]) != 1):
        raise FreqprintError(f"the fingerprint module's grid buffer {grid} is not [M, N, K, r(, 1)]")
    m, n, k, r = (int(g) for g in grid[:4])
    if not (1 <= m <= MAX_GRID and 1 <= n <= MAX_GRID and 1 <= k <= min(m, n) and 0 <= r and 2 * r + 1 <= min(m, n)):
        raise FreqprintError(
            f"the fingerprint module's grid buffer {grid} is out of range (M, N <= {MAX_GRID}, K and 2r+1 <= M, N)"
        )
    if weight.ndim != 4 or tuple(weight.shape[2:]) != (k, k) or weight.dtype not in WEIGHT_DTYPES:
        raise FreqprintError(
            f"the fingerprint module's weight {list(weight.shape)} {str(weight.dtype).replace('torch.', '')} "
            f"is not float [D, C, {k}, {k}]"
        )
    return m, n, k, r, "relu" if len(grid) == 5 else "linear"


def check_key_size(filters: int, channels: int, frequencies: int, source: str) -> None:
    """Refuse a key that could not be stored (its spectra alone over ``MAX_KEY_BYTES``, or more than
    ``MAX_KEY_FREQUENCIES`` frequencies) before anything is computed for it: the grid buffer is
    the module's own word, so this is where a hostile grid is stopped, whatever ``MAX_GRID`` allows.
    :func:`extract` calls it first with a lower bound from the set's size (before the set is
    listed), then with the exact count of conjugate-pair representatives."""
    need = 8 * filters * channels * frequencies
    if frequencies > MAX_KEY_FREQUENCIES or need > MAX_KEY_BYTES:
        raise FreqprintError(
            f"{source}: a key of {filters} filters x {channels} channels at {frequencies} frequencies would need "
            f"{need / 2**20:.0f} MiB of spectra (at most {MAX_KEY_BYTES // 2**20} MiB and {MAX_KEY_FREQUENCIES} "
            "frequencies): the module's grid buffer is too large for its weight"
        )


ANCHOR_MIN_COSINE = 0.5  # the trained kernels must still point along W₀ this much for a secret to be accepted


def _anchor(secret: str | bytes, context: str, weight: torch.Tensor) -> torch.Tensor:
    """W₀ for this module from the secret, refused when the secret did not seed it."""
    d, c, k = int(weight.shape[0]), int(weight.shape[1]), int(weight.shape[2])
    w0 = initial_weight(secret, context, d, c, k)
    w = weight.detach().double().cpu()
    cos = float((w * w0.double()).sum() / (w.norm() * w0.double().norm()).clamp_min(1e-300))
    if cos < ANCHOR_MIN_COSINE:
        raise FreqprintError(
            f"the secret does not seed the module at {context!r} (cosine of its kernels to the secret's W₀ is "
            f"{cos:.3f} < {ANCHOR_MIN_COSINE}): wrong secret, or a module seeded otherwise"
        )
    return w0.float()


def extract(
    source: nn.Module | str | Path | dict[str, torch.Tensor],
    frequencies: str = "sprime",
    tau: float = 0.99,
    target: str | None = None,
    extra: dict[str, Any] | None = None,
    secret: str | bytes | None = None,
) -> FingerprintKey:
    """The key of a fingerprinted model, checkpoint file or state dict.

    Args:
        frequencies: ``"sprime"`` (the paper's S′) or ``"low-gain"`` (see :func:`frequency_set`).
        tau: the per-component cosine threshold of the τ-score (paper: 0.99).
        target: the host layer, when the model carries several modules.
        secret: the owner's secret.  The key then also holds W₀, the module's secret-seeded initial
            kernels, and the verifier decides against them (:meth:`FingerprintKey.decision_kernels`:
            an exact null however the owner trained).  A secret that did not seed this module is
            refused.  The secret itself is not stored.
    """
    if not 0 < tau <= 1:  # NaN fails too
        raise InvalidArgument(f"tau must be in (0, 1], got {tau}")
    if frequencies not in FREQUENCY_SETS:
        raise InvalidArgument(f"unknown frequency set {frequencies!r}; choose from {', '.join(FREQUENCY_SETS)}")
    if isinstance(source, nn.Module):
        host, fp = get_fingerprint_module(source, target)
        layer, weight = f"{host}.fingerprint.weight", fp.weight.detach()
        grid = fp.grid.tolist()
        context, name = host, type(source).__name__
    else:
        store = open_tensors(source)  # a file is read lazily: only the module's weight and grid
        name = store.name
        layer, weight, grid = find_module_weight(store, target)
        context = layer[: -len(".fingerprint.weight")]
    m, n, k, r, merge = parse_grid(grid, weight)
    d, c = int(weight.shape[0]), int(weight.shape[1])
    check_key_size(d, c, (frequency_count(frequencies, (m, n), k, r) + 1) // 2, name)  # ≥ half are kept: conjugate pairs
    freqs = frequency_set(frequencies, (m, n), k, r)
    reps, mult = conjugate_weights(freqs, (m, n))
    check_key_size(d, c, len(reps), name)  # exactly what the key will hold
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
        anchor=None if secret is None else _anchor(secret, context, weight),
        tau=tau,
        merge=merge,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        extra=extra or {},
    )
    key.commitment = key.compute_commitment()
    return key
