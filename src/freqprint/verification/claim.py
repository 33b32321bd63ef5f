"""Claim bundles: a key bound to the secret it claims to come from.

A key alone proves little in a dispute.  Anyone can build a "key" from someone else's model (or
from any conv layer) and it will "find" that model, and its ``created`` field is whatever its
writer typed.  A **claim bundle** closes both gaps:

* it holds the key, the module's configuration (host name, D, C, K) and ``scrypt(secret, salt)``
  — a commitment to the secret, never the secret;
* its SHA-256 ``commitment`` covers all of that.  Publishing the commitment before the model is
  released (a dated release note, a transparency log, a notary) is the only thing that dates the
  claim; the bundle's own ``created`` field proves nothing;
* :func:`check_claim` takes the revealed secret, checks it against the commitment, regenerates
  the module's initial weight ``W₀ = initial_weight(secret, host, D, C, K)`` and tests that the
  key's kernels come from it.

**The statistic.**  In each kernel block of :func:`freqprint.verification.verifier` (visible, hidden) and for
each of the D·C kernels, ``cos(z_key, z₀)``: key kernel against the same kernel of W₀, no
alignment.  If the key does *not* derive from this secret's module, then — whatever the key is —
W₀ is an i.i.d. Gaussian draw independent of it, so the n cosines of a block are i.i.d. with the
null law of :mod:`freqprint.stats.null` and ``P[mean ≥ t] ≤ exp(kernel_logtail(t, k, n))``, exactly,
with no assumption on the key.  A secret cannot be searched for either: each try is one fresh
draw of W₀, so finding one whose p-value is below ``CLAIM_ALPHA = 1e-30`` takes ~1e30 tries.

**Genuine** means: the secret matches its commitment, the hidden block's p-value is below
``CLAIM_ALPHA`` and its mean cosine is at least ``min_hidden_cosine`` (training barely moves the
hidden block — Theorem 3.2 — so a genuine key sits near W₀ there; docs/benchmarks.md §9a measures it).
The visible block is reported but not required: training is free to move it.

**What a bundle does not do.**  A claimant who knows the secret can build a *chimera* key: the
hidden block from W₀ and the visible block blended from an innocent model.  It passes
:func:`check_claim` and its visible block "finds" the innocent model.  So in a dispute the verdict
on a suspect is :func:`check_claim` with ``suspect=``: the suspect is tested against **W₀ itself**
(the verifier's full search, with W₀ as the key), whose null is exact for any suspect that does
not derive from the secret's module.  docs/security.md states the protocol.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.fingerprint import initial_weight
from freqprint.io.artefact import header_metadata, read_json_metadata
from freqprint.stats.null import LN10, kernel_logtail
from freqprint.stats.spectral import kernel_basis, revised_dft_at
from freqprint.verification.key import FingerprintKey, extract
from freqprint.verification.verifier import VISIBLE_GAIN, verify

__all__ = ["CLAIM_ALPHA", "ClaimBundle", "ClaimReport", "anchor_key", "check_claim", "create_claim", "initial_key"]

FORMAT = "freqprint-claim/1"
CLAIM_ALPHA = 1e-30  # far below what any search over secrets can reach (see the module docstring)
MIN_HIDDEN_COSINE = 0.5  # a genuine key keeps its hidden block near W₀ (docs/benchmarks.md §9a: ≥ 0.9999 measured)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MiB, ~50 ms: slows guessing a weak secret


def _scrypt(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


@dataclass
class ClaimBundle:
    """A key, the module configuration that regenerates its initialisation, and a commitment to
    the secret.  Saved as one safetensors file that is also a valid key file (``verify`` takes it)."""

    key: FingerprintKey
    host: str  # the module's host layer: the HMAC context of its initialisation
    salt: str  # hex
    secret_commitment: str  # hex scrypt(secret, salt)
    created: str = ""
    commitment: str = ""

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "host": self.host,
            "salt": self.salt,
            "secret_commitment": self.secret_commitment,
            "created": self.created,
            "key_commitment": self.key.commitment,
        }

    def compute_commitment(self) -> str:
        """SHA-256 over the claim's fields, which include the key's own commitment."""
        return hashlib.sha256(json.dumps(self.metadata(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        claim_meta = json.dumps(dict(self.metadata(), commitment=self.commitment), sort_keys=True)
        return self.key.save(path, extra_metadata={"freqprint.claim": claim_meta})

    @classmethod
    def load(cls, path: str | Path) -> ClaimBundle:
        path = Path(path)
        meta = read_json_metadata(path, "freqprint.claim", "a freqprint claim bundle")
        return cls._from_meta(meta, FingerprintKey.load(path), str(path))  # a bundle is a key file: same checks

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, source: str, key: FingerprintKey | None = None) -> ClaimBundle:
        """A bundle from its file's bytes (``key``: the key already read from the same bytes)."""
        meta = header_metadata(data, "freqprint.claim", "a freqprint claim bundle", source)
        return cls._from_meta(meta, key if key is not None else FingerprintKey.from_bytes(data, source), source)

    @classmethod
    def _from_meta(cls, meta: dict, key: FingerprintKey, source: str) -> ClaimBundle:
        if meta.get("format") != FORMAT:
            raise FreqprintError(f"{source}: unsupported claim format {meta.get('format')!r}")
        for name in ("host", "salt", "secret_commitment", "created", "commitment", "key_commitment"):
            if not isinstance(meta.get(name), str):
                raise FreqprintError(f"{source}: claim field {name!r} is missing or not a string")
        try:
            bytes.fromhex(meta["salt"])
        except ValueError:
            raise FreqprintError(f"{source}: claim field 'salt' is not hex") from None
        bundle = cls(
            key=key,
            host=meta["host"],
            salt=meta["salt"],
            secret_commitment=meta["secret_commitment"],
            created=meta["created"],
            commitment=meta["commitment"],
        )
        if meta["key_commitment"] != key.commitment or bundle.compute_commitment() != bundle.commitment:
            raise FreqprintError(f"{source}: the claim's content does not match its SHA-256 commitment (tampered or corrupt)")
        return bundle


def _host_of(key: FingerprintKey) -> str:
    suffix = ".fingerprint.weight"
    if not key.layer.endswith(suffix):
        raise FreqprintError(f"the key's layer {key.layer!r} is not a fingerprint module weight (<host>{suffix})")
    return key.layer[: -len(suffix)]


def create_claim(
    source: nn.Module | str | Path | dict[str, torch.Tensor],
    secret: str,
    target: str | None = None,
    key: FingerprintKey | None = None,
) -> ClaimBundle:
    """Extract the key of a fingerprinted model (or take ``key``) and bind it to ``secret``.

    Refuses a secret that did not seed this module: a bundle that could never be checked is a
    mistake better caught now than in a dispute.
    """
    if not secret:
        raise FreqprintError("a claim needs the owner's secret")
    key = key if key is not None else extract(source, target=target)
    salt = os.urandom(16)
    bundle = ClaimBundle(
        key=key,
        host=_host_of(key),
        salt=salt.hex(),
        secret_commitment=_scrypt(secret, salt),
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    )
    bundle.commitment = bundle.compute_commitment()
    rep = check_claim(bundle, secret)
    if not rep.genuine:
        raise FreqprintError(
            f"this secret did not seed the module at {bundle.host!r} ({rep.reason}); check the secret and the module's host layer"
        )
    return bundle


def initial_key(key: FingerprintKey, secret: str, host: str | None = None) -> FingerprintKey:
    """A key whose kernels are the secret's W₀ (same layer, grid and frequencies as ``key``): the
    reference of the secret-anchored verdict."""
    host = host or _host_of(key)
    w0 = initial_weight(secret, host, key.filters, key.channels, key.kernel_size)
    k0 = FingerprintKey(
        layer=key.layer,
        grid=key.grid,
        kernel_size=key.kernel_size,
        radius=key.radius,
        frequency_set=key.frequency_set,
        frequencies=key.frequencies,
        multiplicity=key.multiplicity,
        spectra=revised_dft_at(w0.double(), key.grid, key.frequencies).to(torch.complex64),
        weights=w0,
        tau=key.tau,
        merge=key.merge,
        created=key.created,
        extra={"initialisation_of": key.commitment},
    )
    k0.commitment = k0.compute_commitment()
    return k0


@dataclass
class BlockCheck:
    dims: int
    kernels: int
    mean_cosine: float
    log10_p: float


@dataclass
class ClaimReport:
    genuine: bool
    secret_matches: bool
    blocks: dict[str, BlockCheck]
    reason: str
    alpha: float
    min_hidden_cosine: float
    claim_commitment: str
    key_commitment: str
    suspect: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def block_agreement(
    kernels: torch.Tensor, w0: torch.Tensor, key: FingerprintKey, visible_gain: float = VISIBLE_GAIN
) -> dict[str, BlockCheck]:
    """Per block: mean cosine of the key's kernels with W₀'s (index to index) and its exact p-value
    (one-sided Chernoff bound; kernels the key holds at zero in a block are left out)."""
    v, gain = kernel_basis(key.grid, key.kernel_size, key.radius, include_dc=key.merge == "linear")
    kk = key.kernel_size**2
    zk = kernels.double().reshape(-1, kk) @ v
    z0 = w0.double().reshape(-1, kk) @ v
    out = {}
    for name, mask in (("visible", gain >= visible_gain), ("hidden", gain < visible_gain)):
        a, b = zk[:, mask], z0[:, mask]
        na, nb = torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1)
        ok = (na > 0) & (nb > 0)
        n = int(ok.sum())
        cos = (a[ok] * b[ok]).sum(1) / (na[ok] * nb[ok])
        mean = float(cos.mean()) if n else 0.0
        logp = kernel_logtail(round(min(mean, 1 - 1e-9), 12), int(mask.sum()), n) if n else 0.0  # finite for JSON
        out[name] = BlockCheck(dims=int(mask.sum()), kernels=n, mean_cosine=mean, log10_p=logp / LN10)
    return out


GENUINE = "the key comes from this secret's module"


def _origin_refusal(blocks: dict[str, BlockCheck], alpha: float, min_hidden_cosine: float) -> str | None:
    """Why a key's kernels do not come from a W₀ (``blocks``: :func:`block_agreement` against it),
    or None when they do: the hidden block's p-value below ``alpha`` and its mean cosine at least
    ``min_hidden_cosine`` (module docstring)."""
    hid = blocks["hidden"]
    if hid.log10_p > math.log10(alpha):
        return f"the key's hidden block is not from this secret's initialisation (p = 10^{hid.log10_p:.1f})"
    if hid.mean_cosine < min_hidden_cosine:
        return (
            f"the key's hidden block departs from the initialisation more than training does "
            f"(mean cosine {hid.mean_cosine:.3f} < {min_hidden_cosine})"
        )
    return None


def anchor_key(
    key: FingerprintKey,
    secret: str,
    host: str | None = None,
    alpha: float = CLAIM_ALPHA,
    min_hidden_cosine: float = MIN_HIDDEN_COSINE,
) -> FingerprintKey:
    """The key anchored at the W₀ its secret regenerates, after checking that the key's kernels
    come from it (:func:`check_claim`'s rule, without a bundle's secret commitment).

    This is how a party that is given the secret (a registry, an arbiter) turns a key it cannot
    trust into one it can: whatever the key file says, the returned key's decision kernels are W₀
    regenerated here, and a suspect is tested against them, so a key built from an innocent model
    (refused: its kernels are not from any secret's W₀) or a chimera whose visible block was
    blended from an innocent model (accepted, but matched against W₀ alone) cannot make an innocent
    suspect match.  A key that already holds an anchor must hold exactly this W₀.  The secret is
    not stored; the returned key's commitment is recomputed (it now covers the anchor)."""
    if not secret:
        raise InvalidArgument("anchoring a key needs the owner's secret")
    host = host or _host_of(key)
    w0 = initial_weight(secret, host, key.filters, key.channels, key.kernel_size).float()
    if key.anchor is not None and (key.anchor.shape != w0.shape or not torch.equal(key.anchor.float(), w0)):
        raise FreqprintError(f"the key's anchor is not the initialisation this secret gives the module at {host!r}")
    refused = _origin_refusal(block_agreement(key.kernels(), w0, key), alpha, min_hidden_cosine)
    if refused is not None:
        raise FreqprintError(f"{refused}: wrong secret, or a key that was not extracted from this secret's module")
    out = replace(key, anchor=w0, extra=dict(key.extra))
    out.commitment = out.compute_commitment()
    return out


def check_claim(
    bundle: ClaimBundle | str | Path,
    secret: str,
    suspect: Any = None,
    alpha: float = CLAIM_ALPHA,
    min_hidden_cosine: float = MIN_HIDDEN_COSINE,
    suspect_alpha: float = 1e-6,
) -> ClaimReport:
    """Does the bundle's key come from ``secret``'s module?  And, with ``suspect``, does the
    suspect carry that module's initialisation (the verdict that survives a forged key)?"""
    if not isinstance(bundle, ClaimBundle):
        bundle = ClaimBundle.load(bundle)
    if not (0 < alpha < 1) or not (0 < suspect_alpha < 1) or not (-1 <= min_hidden_cosine <= 1):
        raise InvalidArgument("alpha and suspect_alpha must be in (0, 1), min_hidden_cosine in [-1, 1]")
    key = bundle.key
    try:
        salt = bytes.fromhex(bundle.salt)
    except ValueError:
        raise FreqprintError("the claim's salt is not hex") from None
    matches = _scrypt(secret, salt) == bundle.secret_commitment
    w0 = initial_weight(secret, bundle.host, key.filters, key.channels, key.kernel_size)
    blocks = block_agreement(key.kernels(), w0, key)
    refused = _origin_refusal(blocks, alpha, min_hidden_cosine)
    if not matches:
        reason = "the secret does not match the bundle's commitment"
    else:
        reason = refused or GENUINE
    genuine = reason == GENUINE
    rep = ClaimReport(
        genuine=genuine,
        secret_matches=matches,
        blocks=blocks,
        reason=reason,
        alpha=alpha,
        min_hidden_cosine=min_hidden_cosine,
        claim_commitment=bundle.commitment,
        key_commitment=key.commitment,
    )
    if suspect is not None and matches:
        rep.suspect = verify(initial_key(key, secret, bundle.host), suspect, alpha=suspect_alpha).to_dict()
    return rep
