"""Every value freqprint derives from the owner's secret, in one place.

| what | derivation | used by |
|---|---|---|
| the module's ``W₀`` for host ``context`` | ``seed = HMAC-SHA256(secret, "freqprint/v1/" ‖ context)[:8] >> 1``, then i.i.d. ``N(0, 1/(C·K²))`` | :class:`~freqprint.fingerprint.layer.FingerprintModule`, claim checks, the registry's anchored keys |
| the backbone's ``θ₀`` | ``seed = HMAC-SHA256(secret, "freqprint/backbone-init/" ‖ index)[:8] >> 1``, then ``torch.manual_seed(seed)`` before the model is built | the lineage channel (:mod:`freqprint.verification.backbone`) |
| the baselines' trigger sets and noise | ``secret_seed(secret, "<method>/…")`` | :mod:`freqprint.methods` |

Keyed derivations: a seed reveals nothing about the secret, two secrets never collide by
accident, and the same secret reproduces every value.  (The claim bundle's commitment is a salted
scrypt of the secret: :mod:`freqprint.verification.claim`.)
"""

from __future__ import annotations

import hashlib
import hmac
import math

import torch

from freqprint.errors import FreqprintError

__all__ = ["init_seed", "initial_weight", "secret_seed"]

_DOMAIN = b"freqprint/backbone-init/"


def secret_seed(secret: str | bytes, context: str) -> int:
    """A 63-bit seed from ``HMAC-SHA256(secret, context)``: keyed, so the seed reveals nothing."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    digest = hmac.new(key, ("freqprint/v1/" + context).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def initial_weight(secret: str | bytes, context: str, filters: int, in_channels: int, kernel_size: int) -> torch.Tensor:
    """``W₀``: the module weight ``[D, C, K, K]`` that ``secret`` seeds for the host ``context``
    (i.i.d. ``N(0, 1/(C·K²))``) — what :meth:`FingerprintModule.reset_fingerprint` draws first, and
    what a claim check (:mod:`freqprint.verification.claim`) regenerates from a revealed secret."""
    gen = torch.Generator().manual_seed(secret_seed(secret, context))
    return _draw_weight(gen, filters, in_channels, kernel_size)


def _draw_weight(gen: torch.Generator | None, filters: int, in_channels: int, kernel_size: int) -> torch.Tensor:
    std = 1.0 / math.sqrt(in_channels * kernel_size**2)
    return torch.randn((filters, in_channels, kernel_size, kernel_size), generator=gen) * std


def init_seed(secret: str, index: int = 0) -> int:
    """The backbone's initialisation seed: 63 bits of HMAC-SHA256(secret, domain ‖ index).

    Anyone who knows it can regenerate θ₀, and a thief who knows θ₀ can subtract it; derived from
    the secret, it is revealed only with the secret (the dispute protocol of docs/security.md)."""
    if not secret:
        raise FreqprintError("an empty secret cannot seed an initialisation")
    mac = hmac.new(secret.encode(), _DOMAIN + str(int(index)).encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") >> 1
