"""The fingerprint module and its PEFT-style injection into a host network.

The module runs **in parallel** to a named host ``Conv2d`` on the host's input X (paper §3.3).
The paper leaves the merge open (paper-notes §10.5).  Two merges are offered:

* ``merge="relu"`` (default)::

      Φ(X) = U( P · ReLU( S( W ⊛ Λ₀(X) ) ) ) + p₀

  ``Λ₀`` keeps the low band **without its DC term** (8 frequencies for r = 1), so the conv output
  ``Y = W ⊛ Λ₀(X)`` is band-limited and has zero spatial mean.  ``S`` samples Y on the
  (2r+1)×(2r+1) "thumbnail" grid ``(iM/(2r+1), jN/(2r+1))`` — exact, because Y holds only
  (2r+1)² frequencies — ``ReLU`` acts per sample, ``P`` (1×1, D → C_out) projects, and ``U`` is the
  band-limited interpolation back to M×N.  The conv has no bias.  Why: a thief who knows the
  method has the whole symmetry group of the module.  For the linear merge below that group
  contains every invertible D×D mixing ``W → A·W, P → P·A⁻¹``, a collapse to ``P·W``, and a
  (D − C_out)-dimensional null space of P in which W can be redrawn — all at zero cost
  (BENCHMARKS §8).  With a ReLU in between none of these is a symmetry, and since each unit's
  thumbnail sums to zero it changes sign inside *every* input: no unit is ever linear or dead on
  the data, so none can be mixed or redrawn for free.  What is left — filter permutation,
  positive per-filter scaling, dummy filters with a zero projection, a unit split into copies —
  the verifier is invariant to.  Theorem 3.2 only needs the conv's input to be low-pass, which
  ``Λ₀`` keeps (``tests/test_theory.py`` checks S′ stability for both merges).
* ``merge="linear"`` (the merge of freqprint ≤ 0.1, kept so earlier results reproduce)::

      Φ(X) = P · (W ⊛ Λ(X) + b)          added to the host conv's output

* ``Λ`` keeps only the low-pass band ``S^low_r`` of each channel (r = 1: 9 frequencies), so by
  Theorem 3.2 gradient descent barely moves ``T(W)`` on ``S′``;
* ``W ⊛`` is a K×K conv with D filters, stride 1, **one-sided circular padding** (the padding of
  Theorem 3.1; symmetric circular padding would only add a per-frequency phase common to all
  filters, which the cosine ignores; zero padding would break the theorem);
* ``P`` is a 1×1 projection D → C_out, and the result is average-pooled to the host's output
  size when the host strides.  The paper leaves the merge open (paper-notes §10.5); a projection
  added to the host output keeps any host width and any D.

Because the conv input is band-limited, ``W ⊛ Λ(X)`` is computed exactly in the frequency domain
(Theorem 3.1): ``F_Y(u,v) = T_uv(W)·F_X(u,v) + MN·b·δ_uv`` on the 9 kept frequencies and zero
elsewhere.  That costs ``D·C·(2r+1)²`` complex products instead of ``D·C·K²·M·N``, with the same
function and gradients as the spatial conv (``implementation="spatial"`` keeps the latter; a test
checks they agree).

The initial ``W`` and ``b`` come from the owner's **secret** through HMAC-SHA256 → a 64-bit seed →
i.i.d. Gaussian ``N(0, 1/(C·K²))``.  Two owners therefore never share a fingerprint by accident,
the same secret reproduces it, and the verifier's null model (spectra of i.i.d. Gaussian filters)
holds by construction.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from freqprint.errors import FreqprintError
from freqprint.null import best_log10_p
from freqprint.spectral import lowpass, lowpass_indices, revised_dft_at

MERGES = ("relu", "linear")

__all__ = [
    "MERGES",
    "FingerprintConfig",
    "FingerprintModule",
    "FingerprintedConv",
    "attach",
    "detach",
    "find_fingerprint_modules",
    "get_fingerprint_module",
    "initial_weight",
    "secret_seed",
]


@dataclass
class FingerprintConfig:
    """Where and how to attach a fingerprint module (defaults from the paper).

    Attributes:
        target: dotted name of the host ``nn.Conv2d`` (e.g. ``"layer1.1.conv2"``).
        secret: the owner's secret; derives the module's initial weights. Never stored in files.
        filters: D, the number of fingerprint filters (paper: 256).
        kernel_size: K (paper: 3).
        radius: r of the low-pass band (paper: 1; r = 2 protects far less, paper-notes §2.4).
        implementation: ``"fft"`` (exact and fast) or ``"spatial"`` (explicit circular conv).
        merge: ``"relu"`` (default: few symmetries, see the module docstring) or ``"linear"``.
    """

    target: str
    secret: str | None = None
    filters: int = 256
    kernel_size: int = 3
    radius: int = 1
    implementation: str = "fft"
    merge: str = "relu"

    def to_dict(self, include_secret: bool = False) -> dict:
        d = asdict(self)
        if not include_secret:
            d.pop("secret")
        return d


def secret_seed(secret: str | bytes, context: str) -> int:
    """A 63-bit seed from ``HMAC-SHA256(secret, context)``: keyed, so the seed reveals nothing."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    digest = hmac.new(key, ("freqprint/v1/" + context).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def initial_weight(secret: str | bytes, context: str, filters: int, in_channels: int, kernel_size: int) -> torch.Tensor:
    """``W₀``: the module weight ``[D, C, K, K]`` that ``secret`` seeds for the host ``context``
    (i.i.d. ``N(0, 1/(C·K²))``) — what :meth:`FingerprintModule.reset_fingerprint` draws first, and
    what a claim check (:mod:`freqprint.claim`) regenerates from a revealed secret."""
    gen = torch.Generator().manual_seed(secret_seed(secret, context))
    return _draw_weight(gen, filters, in_channels, kernel_size)


def _draw_weight(gen: torch.Generator | None, filters: int, in_channels: int, kernel_size: int) -> torch.Tensor:
    std = 1.0 / math.sqrt(in_channels * kernel_size**2)
    return torch.randn((filters, in_channels, kernel_size, kernel_size), generator=gen) * std


def _dft_rows(length: int, radius: int, sign: int, dtype: torch.dtype) -> torch.Tensor:
    idx = torch.tensor(lowpass_indices(length, radius), dtype=torch.float64)
    pos = torch.arange(length, dtype=torch.float64)
    ang = sign * 2 * math.pi * idx[:, None] * pos[None, :] / length
    return torch.polar(torch.ones_like(ang), ang).to(dtype)  # [L_keep, length]


class FingerprintModule(nn.Module):
    """The fingerprint module (see the module docstring for both merges).  ``weight`` is the
    fingerprint; ``grid`` holds ``[M, N, K, r]`` (plus ``1`` for the ReLU merge) so that a bare
    state dict can be verified."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        grid: tuple[int, int],
        filters: int = 256,
        kernel_size: int = 3,
        radius: int = 1,
        secret: str | None = None,
        context: str = "",
        implementation: str = "fft",
        merge: str = "relu",
    ) -> None:
        super().__init__()
        if implementation not in ("fft", "spatial"):
            raise FreqprintError(f"implementation must be 'fft' or 'spatial', got {implementation!r}")
        if merge not in MERGES:
            raise FreqprintError(f"merge must be one of {', '.join(MERGES)}, got {merge!r}")
        m, n = grid
        if kernel_size > min(m, n):
            raise FreqprintError(f"kernel {kernel_size} does not fit the {m}x{n} feature grid")
        lowpass_indices(m, radius), lowpass_indices(n, radius)  # validates the radius
        self.in_channels, self.out_channels = in_channels, out_channels
        self.filters, self.kernel_size, self.radius = filters, kernel_size, radius
        self.implementation, self.merge = implementation, merge
        self.weight = nn.Parameter(torch.empty(filters, in_channels, kernel_size, kernel_size))
        if merge == "linear":
            self.bias = nn.Parameter(torch.empty(filters))
        else:
            self.register_parameter("bias", None)  # a bias would let a unit stay on (linear) or off (dead)
        self.proj = nn.Conv2d(filters, out_channels, 1)
        code = [m, n, kernel_size, radius] + ([1] if merge == "relu" else [])
        self.register_buffer("grid", torch.tensor(code, dtype=torch.int64))
        self._noise: torch.Tensor | None = None
        self.reset_fingerprint(secret, context)

    @property
    def grid_size(self) -> tuple[int, int]:
        return int(self.grid[0]), int(self.grid[1])

    @property
    def include_dc(self) -> bool:
        """Whether the module's low-pass input keeps the DC term (linear merge only)."""
        return self.merge == "linear"

    def reset_fingerprint(self, secret: str | None, context: str = "") -> None:
        """(Re)draw W, b from the secret (or from torch's global RNG when no secret is given)."""
        gen = None
        if secret is not None:
            gen = torch.Generator().manual_seed(secret_seed(secret, context))
        std = 1.0 / math.sqrt(self.in_channels * self.kernel_size**2)
        with torch.no_grad():
            w = _draw_weight(gen, self.filters, self.in_channels, self.kernel_size)  # the one draw initial_weight repeats
            b = torch.randn((self.filters,), generator=gen) * std
            self.weight.copy_(w)
            if self.bias is not None:
                self.bias.copy_(b)
            nn.init.zeros_(self.proj.bias)
            # P starts small so the module does not disturb a host that is already trained.
            nn.init.normal_(self.proj.weight, std=0.1 / math.sqrt(self.filters), generator=gen)

    @contextlib.contextmanager
    def perturbed(self, noise: torch.Tensor) -> Iterator[None]:
        """Run the module with weights ``W + noise`` (used by L_attack); restores afterwards."""
        old, self._noise = self._noise, noise
        try:
            yield
        finally:
            self._noise = old

    def effective_weight(self) -> torch.Tensor:
        return self.weight if self._noise is None else self.weight + self._noise

    def forward(self, x: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        m, n = self.grid_size
        if tuple(x.shape[-2:]) != (m, n) or x.shape[-3] != self.in_channels:
            raise FreqprintError(
                f"fingerprint module expects input [*, {self.in_channels}, {m}, {n}], got {list(x.shape)}"
            )
        w = self.effective_weight()
        yf = self._conv_fft(x, w) if self.implementation == "fft" else self._conv_spatial(x, w)
        of = self._merge(yf)
        # inverse DFT of the band: out = Re(Ēmᵀ·F·Ēn)/MN.  The small complex product first, then
        # the M×N expansion in real arithmetic (no complex [B, C_out, M, N] tensor is ever built)
        em = _dft_rows(m, self.radius, -1, of.dtype).to(x.device)
        en = _dft_rows(n, self.radius, -1, of.dtype).to(x.device)
        g = torch.einsum("um,bouv->bomv", em.conj(), of)  # [B, O, M, V]
        out = (torch.einsum("bomv,vn->bomn", g.real, en.real) + torch.einsum("bomv,vn->bomn", g.imag, en.imag)) / (m * n)
        y = out.to(x.dtype) + self.proj.bias.view(1, -1, 1, 1)
        if out_size is not None and tuple(y.shape[-2:]) != tuple(out_size):
            y = F.adaptive_avg_pool2d(y, out_size)
        return y

    def _band(self, xf: torch.Tensor) -> torch.Tensor:
        if not self.include_dc:
            xf = xf.clone()
            xf[..., 0, 0] = 0  # index 0 of the low band is frequency 0
        return xf

    def _conv_fft(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``F_Y`` on the low band, ``[B, D, 2r+1, 2r+1]``, by Theorem 3.1 (no spatial conv)."""
        m, n = self.grid_size
        r = self.radius
        cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        em = _dft_rows(m, r, -1, cdtype).to(x.device)  # forward DFT rows, [U, M]
        en = _dft_rows(n, r, -1, cdtype).to(x.device)  # [V, N]
        # F_X on the low band, Em·X·Enᵀ, with the large M×N contraction in real arithmetic
        rdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        xr = x.to(rdtype)
        t = torch.complex(torch.einsum("bcmn,vn->bcmv", xr, en.real.to(rdtype)),
                          torch.einsum("bcmn,vn->bcmv", xr, en.imag.to(rdtype)))  # [B, C, M, V]
        xf = self._band(torch.einsum("um,bcmv->bcuv", em, t))
        freqs = [(u, v) for u in lowpass_indices(m, r) for v in lowpass_indices(n, r)]
        tw = revised_dft_at(w.to(x.dtype), (m, n), freqs).reshape(self.filters, self.in_channels, em.shape[0], en.shape[0])
        yf = torch.einsum("dcuv,bcuv->bduv", tw, xf)  # Theorem 3.1
        if self.bias is not None:  # the DC term gets M·N·b
            dc = torch.zeros_like(yf[0])
            dc[:, 0, 0] = (m * n) * self.bias.to(cdtype)
            yf = yf + dc
        return yf

    def _conv_spatial(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The same ``F_Y`` from an explicit one-sided circular conv (the reference path)."""
        m, n = self.grid_size
        k, r = self.kernel_size, self.radius
        xl = lowpass(x, r) if self.include_dc else lowpass(x, r) - x.mean((-2, -1), keepdim=True)
        y = F.conv2d(F.pad(xl, (0, k - 1, 0, k - 1), mode="circular"), w, self.bias)
        rows = torch.tensor(lowpass_indices(m, r), device=x.device)
        cols = torch.tensor(lowpass_indices(n, r), device=x.device)
        return torch.fft.fft2(y)[..., rows[:, None], cols[None, :]]

    def _merge(self, yf: torch.Tensor) -> torch.Tensor:
        """Module output on the low band, ``[B, C_out, 2r+1, 2r+1]`` (projection bias excluded)."""
        p = self.proj.weight.reshape(self.out_channels, self.filters)
        if self.merge == "linear":
            return torch.einsum("od,bduv->bouv", p.to(yf.dtype), yf)  # the 1x1 projection commutes with the DFT
        m, n = self.grid_size
        s = yf.shape[-1] * yf.shape[-2]
        # thumbnail samples Y(iM/s, jN/s) = (s/MN)·ifft2(F_Y) on the s-point grid (exact: Y is band-limited)
        samples = torch.fft.ifft2(yf).real * (s / (m * n))
        z = torch.einsum("od,bduv->bouv", p.to(samples.dtype), torch.relu(samples))
        return torch.fft.fft2(z.to(yf.dtype)) * (m * n / s)


class FingerprintedConv(nn.Module):
    """A host conv with a fingerprint module beside it: ``base(x) + fingerprint(x)``."""

    def __init__(self, base: nn.Conv2d, fingerprint: FingerprintModule) -> None:
        super().__init__()
        self.base = base
        self.fingerprint = fingerprint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.fingerprint(x, out_size=tuple(y.shape[-2:]))


def _get_submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        raise FreqprintError(
            f"no module named {name!r} in {type(model).__name__}; Conv2d layers are: {', '.join(convs[:12])}"
            + (" ..." if len(convs) > 12 else "")
        ) from None


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def attach(
    model: nn.Module, config: FingerprintConfig, example_input: torch.Tensor, min_detectable_p: float = 1e-6
) -> FingerprintModule:
    """Attach a fingerprint module beside ``config.target``, in place; returns the module.

    ``example_input`` (one batch, any batch size) is run once to learn the host's input grid
    ``M×N`` and output size.  The host conv is wrapped in :class:`FingerprintedConv`, so its
    weights move from ``<target>.weight`` to ``<target>.base.weight`` (as PEFT does).  A host with
    too few input channels for the verifier ever to reach ``min_detectable_p`` is refused.
    """
    host = _get_submodule(model, config.target)
    if isinstance(host, FingerprintedConv):
        raise FreqprintError(f"{config.target!r} already carries a fingerprint module")
    if not isinstance(host, nn.Conv2d):
        raise FreqprintError(f"target {config.target!r} is a {type(host).__name__}, not an nn.Conv2d")
    shapes: dict[str, torch.Size] = {}

    def hook(_mod, inp, out):
        shapes["in"], shapes["out"] = inp[0].shape, out.shape

    handle = host.register_forward_hook(hook)
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example_input)
        model.train(was_training)
    finally:
        handle.remove()
    if "in" not in shapes:
        raise FreqprintError(f"{config.target!r} was not called by the model's forward pass")
    _, c, m, n = shapes["in"]
    if best_log10_p(c, config.filters) > math.log10(min_detectable_p):
        raise FreqprintError(
            f"{config.target!r} has {c} input channel(s): with D = {config.filters} filters the verifier could never "
            f"reach p < {min_detectable_p:g} (the cosine of {c}-channel spectra is too noisy); attach to a layer with more input channels"
        )
    fp = FingerprintModule(
        in_channels=c,
        out_channels=shapes["out"][1],
        grid=(m, n),
        filters=config.filters,
        kernel_size=config.kernel_size,
        radius=config.radius,
        secret=config.secret,
        context=config.target,
        implementation=config.implementation,
        merge=config.merge,
    ).to(device=host.weight.device, dtype=host.weight.dtype)
    _set_submodule(model, config.target, FingerprintedConv(host, fp))
    return fp


def detach(model: nn.Module, target: str | None = None) -> nn.Module:
    """Remove fingerprint modules (all, or the one at ``target``), restoring the host convs."""
    names = [target] if target else [n for n, _ in find_fingerprint_modules(model)]
    for name in names:
        mod = _get_submodule(model, name)
        if not isinstance(mod, FingerprintedConv):
            raise FreqprintError(f"{name!r} carries no fingerprint module")
        _set_submodule(model, name, mod.base)
    return model


def find_fingerprint_modules(model: nn.Module) -> list[tuple[str, FingerprintModule]]:
    """``(host name, module)`` for every fingerprint module attached anywhere in ``model``."""
    return [(n, m.fingerprint) for n, m in model.named_modules() if isinstance(m, FingerprintedConv)]


def get_fingerprint_module(model: nn.Module, target: str | None = None) -> tuple[str, FingerprintModule]:
    """The one fingerprint module of ``model`` (or the one at ``target``), with a clear error."""
    found = find_fingerprint_modules(model)
    if target is not None:
        found = [(n, m) for n, m in found if n == target]
    if not found:
        raise FreqprintError("the model carries no fingerprint module" + (f" at {target!r}" if target else ""))
    if len(found) > 1:
        raise FreqprintError(f"several fingerprint modules ({', '.join(n for n, _ in found)}); name one")
    return found[0]
