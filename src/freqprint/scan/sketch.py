"""The registry's screen: a compact, reparametrization-invariant sketch of a key, and a score that
says which keys a suspect tensor could match, so that only those get the full calibrated test.

**The sketch.**  Write a key's decision kernels (W₀ when anchored) in the verifier's orthonormal
kernel basis (:func:`freqprint.stats.spectral.kernel_basis`) and split each kernel into the visible and
hidden blocks, as :mod:`freqprint.verification.verifier` does.  For every *input channel* c and block b, with
``u_dc`` the unit kernel of filter d::

    m2_c = mean_d  sym(u_dc u_dcᵀ)            (second moments over the D filters)
    m4_c = mean_d  sym(o_dc o_dcᵀ),  o = sym(u uᵀ)   (fourth moments)
    s_c  = unit( [m2_c, m4_c] − mean_c' [m2_c', m4_c'] )

``sym`` is the isometric upper triangle.  A channel's sketch is therefore blind to the order,
sign and scale of the filters (each kernel is normalised and enters through ``u uᵀ``), to a
positive scale of the channel itself, and to dummy filters only up to dilution (they enter the
mean).  The key's sketch is the set ``{s_c}`` of its C channels — a set, so a permutation of the
channels is free too.  Hidden blocks of more than :data:`MAX_DIM` coordinates are projected to
:data:`MAX_DIM` by a fixed Gaussian matrix (Johnson–Lindenstrauss: inner products kept to about
``1/√MAX_DIM``).  Stored (:func:`encode_sketch`) as float16 in the visible block and as int8,
``round(127·s)``, in the hidden one (every number of a unit vector lies in [−1, 1]):
``C × (2·d_visible + d_hidden)`` bytes per key.  The visible block stays float16 because the
shortlist's vector whitens it, which magnifies int8's rounding (a vector recomputed from an
all-int8 sketch moved by up to 0.17 in a coordinate); the hidden block's 64 numbers per channel
are most of the bytes.

**The score.**  A suspect tensor read as ``[D′, C′, K, K]`` is sketched the same way, once under
each of the eight symmetries of the square (a thief may run the module on a transposed or flipped
grid).  For a key, per block::

    S = max_g  mean_c  max_c'  ⟨s_c(key), s_c'(suspect under g)⟩

the best correlation each key channel finds among the suspect's channels, averaged.  Extra
suspect channels (a thief's dead channels) only add candidates to the inner max.

**The threshold** is relative, never absolute: the same score is computed for
:data:`DECOYS` *decoy keys* — fresh W₀ draws of the key's shape from public seeds, unrelated to
anything by construction — and a key passes when ``(S − mean) / sd`` over the decoys reaches
:data:`Z_PASS` in either block.  The decoys absorb everything about the suspect that raises all
scores alike (its width, its structure, how many symmetries were tried).  To keep an unrelated
suspect cheap, the decoys are scored in two steps (:func:`score`: the first :data:`FIRST_DECOYS`,
then all of them only where a key comes within half the threshold), and a suspect is sketched in
float32 (keys in float64).

**The probe (wide readings).**  Sketching a reading costs ``D′·C′`` kernels; on an unrelated
full-width ResNet-18 sketching every reading whole was most of the screen's 0.9 s (0.16.0),
more than CKA's 0.7 s (load the model, forward 100 probes: docs/benchmarks.md §12b).  So a reading of more than twice its probe's size
is first *probed*: :data:`PROBE_CHANNELS` of its channels, or more where the reading is
much wider than the key (:func:`probe_count`: at least :data:`PROBE_REAL` times the reading's share of
a key's channels), drawn at random
(:func:`probe_channels`, by a generator the caller seeds: a fresh seed per scan, so a thief
cannot know which channels will be read), are sketched, and the statistic is turned round —
each probe channel's best correlation with any key channel, averaged over the probe (or over
its :data:`PROBE_TOP` best channels), maximised over the symmetries::

    P = max_g  mean_{c′ ∈ probe}  max_c  ⟨s_c(key), s_c′(suspect under g)⟩

each statistic and block standardised by the same decoys, the largest z kept (the plain mean
sees a weak derivative best; the top-4 mean one whose module is diluted by junk channels).
Only a reading where some key reaches :data:`Z_PROBE` is sketched whole and scored as above;
the probe can only remove passes.  Its price is a miss rate that depends on the draw.  A thief who
pads the module's input with junk channels (near-zero kernels cost no accuracy) dilutes what a
fixed-size probe draws; the probe's size therefore grows with the reading's width against the
key's (:func:`probe_count`), so that padding by any factor leaves about :data:`PROBE_REAL` of the
key's channels in a draw, and costs the screen a larger probe of that reading instead.
docs/benchmarks.md §12h measures the miss rate (noise, rewrites, fine-tuning, padding to ×16);
``probe=0`` sketches every reading whole.

**The shortlist (large registries).**  Scoring every key's channels costs ``C·C′·dims`` per key
and symmetry: fine at 10,000 keys, not at a million.  So each key also has one *vector* of
:data:`VECTOR_DIMS` numbers per block, and the keys a suspect's channels are scored against are
first shortlisted by an inner product with it.  Per block, with ``x_c`` the key's channel sketch
whitened by the covariance ``Σ`` of channel sketches of public W₀ draws of the key's shape
(``x_c = unit(Σ^{-1/2} s_c)``)::

    v = Rᵀ · ( sym( Σ_c x_c x_cᵀ ) − μ )

``sym`` the isometric triangle, ``μ`` the mean of the same over those public draws, ``R`` a fixed
Gaussian projection (Johnson–Lindenstrauss).  Then ``⟨v(key), v(suspect)⟩ ≈ Σ_{c,c′} ⟨x_c,
x′_c′⟩² − (what unrelated pairs give on average)``: a key whose channels reappear among the
suspect's scores about ``C`` above the rest, whatever the order and number of the suspect's
channels (the sum over c′ is a set's).  Like the channel score it is standardised against the
decoys (per query and block) and maximised over the eight symmetries and the suspect's readings;
the top ``SHORTLIST / 2`` keys of each block (:func:`shortlist`) go on to the channel score,
which decides as above.  Below :data:`SHORTLIST` keys of a shape there is no shortlist: every key
is scored.  The vector loses information the channel score keeps (a sum of squares instead of a
max, then a projection), so the shortlist misses a derivative earlier than the channel score
does: docs/benchmarks.md §12g measures by how much.

**What the screen does not promise.**  It is a fast necessary-looking condition, not a bound: a
suspect whose kernels carry heavy independent noise (per-kernel cosine ≲ 0.7 to the key) can still
be found by the full test and be screened out.  docs/benchmarks.md §12 measures where each gives up; the
scan's ``screen=False`` runs the full test against every key.  A Transformer's residual-stream
rotation (:class:`freqprint.attacks.ResidualRotation`) mixes the channels and defeats the sketch,
so keys registered with ``always_test=True`` skip the screen (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from freqprint.fingerprint import initial_weight
from freqprint.stats.align import DIHEDRAL, unit
from freqprint.stats.spectral import kernel_basis
from freqprint.verification.verifier import VISIBLE_GAIN

__all__ = [
    "DECOYS",
    "MAX_DIM",
    "PROBE_CHANNELS",
    "SHORTLIST",
    "VECTOR_DIMS",
    "Z_PASS",
    "Z_PROBE",
    "Basis",
    "basis_of",
    "channel_sketch",
    "decoy_sketches",
    "decoy_vectors",
    "probe_channels",
    "probe_count",
    "score",
    "shortlist",
    "shortlist_scores",
    "sketch_vectors",
    "suspect_sketch",
    "vector_blocks",
]

MAX_DIM = 48  # a block's sketch is projected to this many coordinates when larger
DECOYS = 128  # decoy keys per shape group
FIRST_DECOYS = 16  # decoys scored first; all DECOYS only where a key's z against these reaches Z_PASS / 2
VECTOR_DIMS = (64, 512)  # shortlist vector coordinates per block (visible, hidden): 2.25 KB per key in float32
VECTOR_VERSION = "freqprint-sketch-vector/1"  # stored vectors of another version are recomputed from the sketches
SHORTLIST = 1024  # keys per shape group that reach the channel score when the group is larger
WHITEN_DRAWS = 256  # public W₀ draws that whiten the channel sketches of a shape group (at most)
WHITEN_ELEMENTS = 1 << 22  # ... and no more weights than this in all, unless that leaves fewer than 8 draws
PROBE_CHANNELS = 16  # a reading of more than twice this many channels is first probed on this many, drawn at random
PROBE_REAL = 4  # a probe draws enough channels that a key's channels among any number of junk ones show this many on average
PROBE_TOP = 4  # the probe's second statistic averages its best 4 channels (a thief's padding dilutes a plain mean)
Z_PROBE = 4.0  # a probe lets a reading on to the screen at this many decoy standard deviations
Z_PASS = 6.0  # a key passes the screen at this many decoy standard deviations (z ≥ 4 let 0.2 % of 10,000 unrelated keys through)


@dataclass(frozen=True)
class Basis:
    """The kernel basis of a key family: keys with equal ``(grid, K, radius, merge)`` share it."""

    grid: tuple[int, int]
    kernel_size: int
    radius: int
    include_dc: bool

    @property
    def name(self) -> str:
        return f"{self.grid[0]}x{self.grid[1]}/k{self.kernel_size}/r{self.radius}/{'dc' if self.include_dc else 'nodc'}"


def basis_of(key) -> Basis:
    return Basis(tuple(key.grid), key.kernel_size, key.radius, key.merge == "linear")


def basis_from_json(text: str) -> Basis:
    """The :class:`Basis` a registry row stores as JSON."""
    d = json.loads(text)
    return Basis(tuple(d["grid"]), int(d["kernel_size"]), int(d["radius"]), bool(d["include_dc"]))


@lru_cache(maxsize=64)
def _basis(b: Basis) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor | None, ...]]:
    """``(V, block indices, block projections)`` of a basis; projections from a public seed."""
    v, gain = kernel_basis(b.grid, b.kernel_size, b.radius, include_dc=b.include_dc)
    blocks = ((gain >= VISIBLE_GAIN).nonzero().squeeze(1), (gain < VISIBLE_GAIN).nonzero().squeeze(1))
    projs: list[torch.Tensor | None] = []
    for name, idx in zip(("visible", "hidden"), blocks):
        raw = _moment_dim(len(idx))
        if raw <= MAX_DIM:
            projs.append(None)
            continue
        seed = int.from_bytes(hashlib.sha256(f"freqprint-sketch/{b.name}/{name}/{raw}".encode()).digest()[:8], "little")
        g = torch.Generator().manual_seed(seed)
        projs.append(torch.randn(raw, MAX_DIM, generator=g, dtype=torch.float64) / math.sqrt(MAX_DIM))
    return v.double(), blocks, tuple(projs)


def _sym_dim(k: int) -> int:
    return k * (k + 1) // 2


def _moment_dim(k: int) -> int:
    return _sym_dim(k) + _sym_dim(_sym_dim(k))


def encode_sketch(s: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    """Sketches ``[..., C, d_v + d_h]`` as stored (module docstring): ``[..., C·(2·d_v + d_h)]``
    bytes (uint8), every channel's visible block in float16, then every channel's hidden block as
    int8 ``round(127·s)``."""
    dv = dims[0]
    vis = s[..., :dv].to(torch.float16).contiguous().view(torch.uint8).flatten(-2)
    hid = torch.round(s[..., dv:].to(torch.float32) * 127).clamp(-127, 127).to(torch.int8).contiguous()
    return torch.cat([vis, hid.view(torch.uint8).flatten(-2)], -1)


def decode_sketch(raw: torch.Tensor, channels: int, dims: tuple[int, int]) -> torch.Tensor:
    """:func:`encode_sketch`'s inverse up to its rounding: ``[..., C·(2·d_v + d_h)]`` uint8 →
    ``[..., C, d_v + d_h]`` float32."""
    dv, dh = dims
    lead, n = raw.shape[:-1], channels * 2 * dv
    vis = raw[..., :n].contiguous().view(torch.float16).reshape(*lead, channels, dv)
    hid = raw[..., n:].contiguous().view(torch.int8).reshape(*lead, channels, dh)
    return torch.cat([vis.to(torch.float32), hid.to(torch.float32) / 127], -1)


def sketch_bytes(b: Basis, channels: int) -> int:
    """Bytes of one key's stored sketch (:func:`encode_sketch`)."""
    dv, dh = block_dims(b)
    return channels * (2 * dv + dh)


def block_dims(b: Basis) -> tuple[int, int]:
    _, blocks, projs = _basis(b)
    return tuple(MAX_DIM if p is not None else _moment_dim(len(i)) for i, p in zip(blocks, projs))  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _sym_index(k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    iu = torch.triu_indices(k, k)
    w = torch.where(iu[0] == iu[1], 1.0, math.sqrt(2.0)).double()
    return iu[0], iu[1], w


@lru_cache(maxsize=64)
def _sym_weights(k: int, dtype: torch.dtype) -> torch.Tensor:
    return _sym_index(k)[2].to(dtype)


def _sym(u: torch.Tensor) -> torch.Tensor:
    """Isometric upper triangle of ``u uᵀ`` for the last axis: ``⟨sym(a aᵀ), sym(b bᵀ)⟩ = ⟨a, b⟩²``."""
    k = u.shape[-1]  # row by row of the triangle (triu_indices' order): slices, not a gather (2–3× faster)
    return torch.cat([u[..., a : a + 1] * u[..., a:] for a in range(k)], -1) * _sym_weights(k, u.dtype)


@lru_cache(maxsize=64)
def _basis_as(b: Basis, dtype: torch.dtype) -> tuple[torch.Tensor, tuple[torch.Tensor | None, ...]]:
    """:func:`_basis`'s ``V`` and projections in ``dtype`` (converted once, not per call)."""
    v, _, projs = _basis(b)
    return v.to(dtype), tuple(None if p is None else p.to(dtype) for p in projs)


def _moments(w: torch.Tensor, b: Basis, dtype: torch.dtype = torch.float64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, the raw moments of kernels ``w`` ``[..., D, C, K, K]`` over the filters: with
    ``o = _sym(unit kernel coordinates)``, ``m₁ = mean_d o`` ``[..., C, s]`` and ``M₂ = mean_d o·oᵀ``
    ``[..., C, s, s]`` (one batched product, never a ``[D, C, s(s+1)/2]`` tensor).  Leading axes are
    a batch of keys.  Keys are sketched in float64; a suspect in float32 (``dtype``): a screen's
    score needs no more, at half the cost."""
    _, blocks, _ = _basis(b)
    v, _ = _basis_as(b, dtype)
    d, c = w.shape[-4:-2]
    lead = w.shape[:-4]
    if dtype != torch.float64 and w.dtype == torch.float64:  # each filter to a unit scale first: no overflow
        w = w / w.abs().amax((-3, -2, -1), keepdim=True).clamp_min(1e-300)
    z = w.detach().to("cpu", dtype).reshape(*lead, d, c, -1).transpose(-2, -3) @ v  # [..., C, D, K²]: channel-major
    out = []
    for idx in blocks:
        o = _sym(unit(z[..., idx]))
        out.append((o.mean(-2), o.transpose(-1, -2) @ o / d))  # a batched product per channel
    return out


def _linear(m1: torch.Tensor, m2: torch.Tensor, b: Basis, block: int, lift: torch.Tensor | None = None) -> torch.Tensor:
    """One block's sketch before centring: ``[m₁ | isometric triangle of M₂]`` (``[..., C, s]``
    and ``[..., C, s, s]``), projected when large; with a symmetries' ``lift`` ``[G, s, s]`` the
    moments are first moved to each of them (``m₁ → L·m₁``, ``M₂ → L·M₂·Lᵀ``): ``[G, ..., C, d]``.
    Linear in the moments."""
    proj = _basis_as(b, m1.dtype)[1][block]
    if lift is not None:  # [G, s, s], as [G, 1, …, 1, s, s] against m₁'s leading axes and C
        lift = lift.reshape(lift.shape[0], *(1,) * (m1.dim() - 1), *lift.shape[-2:])
        m1 = (lift @ m1.unsqueeze(-1)).squeeze(-1)
        m2 = lift @ m2 @ lift.transpose(-1, -2)
    i, j, _ = _sym_index(m1.shape[-1])
    f = torch.cat([m1, m2[..., i, j] * _sym_weights(m1.shape[-1], m1.dtype)], -1)  # [..., C, s + s(s+1)/2]
    return f if proj is None else f @ proj


def _features(moments: list[tuple[torch.Tensor, torch.Tensor]], b: Basis) -> torch.Tensor:
    """The sketch ``[..., C, dims]`` from raw moments (:func:`_linear` per block, centred over
    channels, unit length)."""
    parts = [_linear(m1, m2, b, bi) for bi, (m1, m2) in enumerate(moments)]
    return torch.cat([unit(f - f.mean(-2, keepdim=True)) for f in parts], -1)


def channel_sketch(w: torch.Tensor, b: Basis) -> torch.Tensor:
    """The sketch ``[C, d_visible + d_hidden]`` of kernels ``w`` ``[D, C, K, K]`` (module docstring);
    ``[..., C, dims]`` for a batch of keys ``[..., D, C, K, K]``."""
    return _features(_moments(w, b), b)


def _sym_lift(q: torch.Tensor) -> torch.Tensor:
    """``L`` with ``_sym(Q·u) = L·_sym(u)`` for every u (``Q`` k×k): how an orthogonal change of a
    block's coordinates acts on its isometric second moments.  Column a is the image of the a-th
    basis matrix of the symmetric k×k matrices."""
    k = q.shape[0]
    i, j, w = _sym_index(k)
    cols = []
    for a in range(len(i)):
        e = torch.zeros(k, k, dtype=q.dtype)
        e[i[a], j[a]] = e[j[a], i[a]] = 1.0 / float(w[a])  # the symmetric matrix whose _sym-vector is e_a
        t = q @ e @ q.T
        cols.append(t[i, j] * w)
    return torch.stack(cols, 1)


@lru_cache(maxsize=64)
def _dihedral_lifts(b: Basis) -> tuple[torch.Tensor, ...] | None:
    """Per block, the lifts ``L`` (:func:`_sym_lift`) ``[8, s, s]`` that move the raw moments of
    ``W`` to those of ``g(W)``, one per symmetry g of the square.  A
    symmetry permutes the K² kernel entries; in the basis V it is ``R = Vᵀ·P·V``.  When the gain
    is invariant under the symmetry (a square grid: the band is symmetric, a flip only shifts the
    phase), ``R`` keeps each block, ``R = diag(Q_visible, Q_hidden)``, and ``u → Q·u`` maps the
    moments linearly.  Returns None when some ``R`` mixes the blocks (the sketch is then
    recomputed per symmetry)."""
    v, blocks, _ = _basis(b)
    k = b.kernel_size
    eye = torch.eye(k * k, dtype=torch.float64).reshape(k * k, k, k)
    out: list[list[torch.Tensor]] = [[] for _ in blocks]
    for op in DIHEDRAL.values():
        perm = op(eye).reshape(k * k, k * k)  # row r: g applied to the kernel with a 1 at entry r
        r = v.T @ perm @ v  # flattened kernels as rows: g(w) = w·perm, so z(g(W)) = z(W)·R
        for bi, idx in enumerate(blocks):
            other = blocks[1 - bi]
            if len(other) and float(r[other][:, idx].abs().max()) > 1e-9:
                return None  # g mixes the blocks: no lift
            out[bi].append(_sym_lift(r[idx][:, idx].T))  # as columns: u_g = Q·u with Q = R_bbᵀ
    return tuple(torch.stack(x) for x in out)


@lru_cache(maxsize=64)
def _lifted_maps(b: Basis, dtype: torch.dtype) -> tuple[torch.Tensor, ...] | None:
    """Per block, the matrix ``F`` ``[s + s(s+1)/2, 8·d]`` that takes a channel's raw moments
    ``[m₁ | isometric triangle of M₂]`` to its uncentred sketch under each of the eight
    symmetries (:func:`_linear` with the lifts, which is linear): the eight sketches of a suspect
    in one product.  Built in float64 from the raw coordinates' unit vectors, then cast."""
    lifts = _dihedral_lifts(b)
    if lifts is None:
        return None
    out = []
    for bi, lift in enumerate(lifts):
        s = lift.shape[-1]
        i, j, w = _sym_index(s)
        n = s + len(i)
        e = torch.eye(n, dtype=torch.float64)
        m2 = torch.zeros(n, s, s, dtype=torch.float64)
        m2[:, i, j] = e[:, s:] / w
        m2[:, j, i] = e[:, s:] / w
        f = _linear(e[:, :s], m2, b, bi, lift)  # [8, n, d]
        out.append(f.transpose(0, 1).reshape(n, -1).to(dtype).contiguous())
    return tuple(out)


def suspect_sketch(w: torch.Tensor, b: Basis, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The sketch of a suspect tensor ``[D′, C′, K, K]`` under each symmetry of the square:
    ``[8, C′, dims]`` (``[..., 8, C′, dims]`` for a batch ``[..., D′, C′, K, K]``), in
    ``dtype`` (float32: a screen's score needs no more).  On a square grid the moments are
    computed once and moved to the other symmetries by exact linear maps
    (:func:`_dihedral_lifts`, folded into one product per block by :func:`_lifted_maps`: 8× less
    work on a large tensor); otherwise each is recomputed."""
    maps = _lifted_maps(b, dtype)
    if maps is None:
        return torch.stack([_features(_moments(op(w), b, dtype), b) for op in DIHEDRAL.values()], -3)
    parts = []
    for (m1, m2), f_map in zip(_moments(w, b, dtype), maps):
        i, j, _ = _sym_index(m1.shape[-1])
        raw = torch.cat([m1, m2[..., i, j] * _sym_weights(m1.shape[-1], m1.dtype)], -1)  # [..., C′, n]
        f = (raw @ f_map).unflatten(-1, (len(DIHEDRAL), -1)).movedim(-2, -3)  # [..., 8, C′, d]
        parts.append(unit(f - f.mean(-2, keepdim=True)))
    return torch.cat(parts, -1)


@lru_cache(maxsize=32)
def decoy_sketches(b: Basis, filters: int, channels: int) -> torch.Tensor:
    """``[DECOYS, C, dims]``: sketches of W₀ draws from public seeds, unrelated to any owner."""
    return torch.stack(
        [
            channel_sketch(initial_weight(f"freqprint-registry-decoy-{i}", "decoy", filters, channels, b.kernel_size), b)
            for i in range(DECOYS)
        ]
    ).float()


def block_scores(
    keys: torch.Tensor, sus: torch.Tensor, dims: tuple[int, int], probe: bool = False, budget: int = 1 << 24
) -> torch.Tensor:
    """``S`` per key and block: ``keys`` ``[N, C, dims]``, ``sus`` ``[8, C′, dims]`` → ``[N, 2]``;
    a batch of readings ``[R, 8, C′, dims]`` → ``[N, R, 2]``.  With ``probe`` the roles of the
    channels swap (the probe's statistics, module docstring): each suspect channel's best key
    channel, averaged, and the mean of the :data:`PROBE_TOP` best of those: ``[N, 4]``
    (``[N, R, 4]``), the two statistics per block.  Computed in chunks of at most 256 keys, and of fewer where needed to
    keep ``chunk·R·8·C·C′`` under ``budget`` floats."""
    batch = sus.dim() == 4
    s = (sus if batch else sus[None]).float()
    n, c, _ = keys.shape
    r, g, cs, _ = s.shape
    out = torch.empty(n, r, 4 if probe else 2)
    dv = dims[0]
    chunk = max(1, min(256, budget // max(1, r * g * c * cs)))
    for lo in range(0, n, chunk):
        k = keys[lo : lo + chunk].float()
        m = k.shape[0]
        for j, sl in enumerate((slice(0, dv), slice(dv, None))):
            # one matrix product [m·C, x] × [x, R·8·C′], read as [m, C, R, 8, C′] (no permuted copy)
            corr = (k[..., sl].reshape(m * c, -1) @ s[..., sl].reshape(r * g * cs, -1).T).view(m, c, r, g, cs)
            if probe:  # the best key channel per probe channel: their mean, and the mean of the PROBE_TOP best
                best = corr.amax(1)
                out[lo : lo + m, :, j] = best.mean(-1).amax(-1)
                out[lo : lo + m, :, 2 + j] = best.topk(min(PROBE_TOP, cs), -1).values.mean(-1).amax(-1)
            else:
                out[lo : lo + m, :, j] = corr.amax(-1).mean(1).amax(-1)
    return out if batch else out[:, 0]


def score(
    keys: torch.Tensor, decoys: torch.Tensor, sus: torch.Tensor, dims: tuple[int, int], probe: bool = False
) -> torch.Tensor:
    """Each key's screen z-score against a suspect: the larger block's ``(S − mean)/sd`` over the
    decoys (module docstring).  ``[N]``, or ``[N, R]`` for a batch of readings ``sus``
    ``[R, 8, C′, dims]`` (each standardised by the decoys' scores on it).  With ``probe``, the
    probe's statistic on a few of the suspect's channels (:func:`block_scores`), whose threshold
    is :data:`Z_PROBE`.  The decoys are scored in two steps: the first :data:`FIRST_DECOYS` for
    every key, and all of them only when some key's z against those reaches half the threshold
    (the keys below it keep that z: they fail either way, and an unrelated suspect, the common
    case, costs an eighth of the decoy products)."""

    def z_against(d: torch.Tensor) -> torch.Tensor:
        mu, sd = d.mean(0), d.std(0).clamp_min(1e-3)
        return ((s - mu) / sd).amax(-1)

    s = block_scores(keys, sus, dims, probe=probe)
    first = block_scores(decoys[:FIRST_DECOYS], sus, dims, probe=probe)
    z = z_against(first)
    need = z >= (Z_PROBE if probe else Z_PASS) / 2
    if bool(need.any()) and len(decoys) > FIRST_DECOYS:
        if sus.dim() == 4:  # only the readings where some key needs them
            r = need.any(0).nonzero().squeeze(1)
            rest = block_scores(decoys[FIRST_DECOYS:], sus[r], dims, probe=probe)
            s, first = s[:, r], first[:, r]
            z[:, r] = torch.where(need[:, r], z_against(torch.cat([first, rest])), z[:, r])
        else:
            rest = block_scores(decoys[FIRST_DECOYS:], sus, dims, probe=probe)
            z = torch.where(need, z_against(torch.cat([first, rest])), z)
    return z


def probe_count(channels: int, key_channels: int, probe: int = PROBE_CHANNELS) -> int:
    """How many of a reading's ``channels`` (C′) a probe draws against keys of ``key_channels``
    (C): ``max(probe, ⌈PROBE_REAL·C′/C⌉)``.  A reading made of a key's C channels and any number
    of junk ones (a thief's padding) then shows ``count·C/C′ ≥ PROBE_REAL`` of the key's channels
    in a draw on average, whatever the padding: padding the module costs the thief storage and
    the screen a probe that grows with it, not a probe that sees less (module docstring)."""
    return max(probe, math.ceil(PROBE_REAL * channels / max(1, key_channels)))


def probe_channels(channels: int, generator: torch.Generator, count: int = PROBE_CHANNELS) -> torch.Tensor:
    """``count`` of a reading's ``channels`` input channels, drawn without replacement by
    ``generator`` (sorted): the channels a probe reads (module docstring)."""
    return torch.randperm(channels, generator=generator)[:count].sort().values


# ---------------------------------------------------------------------------------------------
# the shortlist's vectors (module docstring)


def _second_moment(x: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
    """``sym(Σ_c y_c y_cᵀ)`` with ``y_c = unit(x_c·W)``: channel sketches ``[..., C, n]`` →
    ``[..., n(n+1)/2]``."""
    y = unit(x @ wh)
    m = y.transpose(-1, -2) @ y
    i, j, w = _sym_index(m.shape[-1])
    return m[..., i, j] * w


@lru_cache(maxsize=32)
def _vector_maps(b: Basis, filters: int, channels: int) -> tuple[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor], ...]:
    """Per block ``(offset, n, W, μ, R)``: the whitening ``W = Σ^{-1/2}`` of the channel sketches of
    public W₀ draws of shape ``[filters, channels, K, K]`` (eigenvalues floored at 1e-3 of the
    largest), the mean ``μ`` of their second moments, and the projection ``R``, all from public
    seeds.  :data:`WHITEN_DRAWS` draws, fewer for a large shape (about :data:`WHITEN_ELEMENTS`
    weights in all, at least 8: a 256 × 512 module's C = 512 channels per draw are samples
    enough), sketched a few at a time."""
    size = filters * channels * b.kernel_size**2
    n = int(min(WHITEN_DRAWS, max(8, math.ceil(WHITEN_ELEMENTS / size))))
    step = max(1, (1 << 18) // size)  # draws sketched at once: float64 moments of about 2^18 weights (40 MB)
    sk = torch.cat(
        [
            channel_sketch(
                torch.stack(
                    [
                        initial_weight(f"freqprint-registry-white-{i}", "white", filters, channels, b.kernel_size)
                        for i in range(lo, min(n, lo + step))
                    ]
                ),
                b,
            )
            for lo in range(0, n, step)
        ]
    )
    out = []
    lo = 0
    for name, n, p in zip(("visible", "hidden"), block_dims(b), VECTOR_DIMS):
        x = sk[..., lo : lo + n]
        e, v = torch.linalg.eigh(x.reshape(-1, n).T @ x.reshape(-1, n) / (x.shape[0] * x.shape[1]))
        wh = v @ torch.diag(e.clamp_min(float(e.max()) * 1e-3).rsqrt()) @ v.T
        mu = _second_moment(x, wh).mean(0)
        seed = int.from_bytes(
            hashlib.sha256(f"freqprint-vector/{b.name}/{name}/{filters}x{channels}".encode()).digest()[:8], "little"
        )
        r = torch.randn(mu.numel(), p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / math.sqrt(p)
        out.append((lo, n, wh, mu, r))
        lo += n
    return tuple(out)


def sketch_vectors(sketches: torch.Tensor, b: Basis, filters: int, channels: int, chunk: int = 4096) -> torch.Tensor:
    """The shortlist vectors ``[..., sum(VECTOR_DIMS)]`` (float32) of channel sketches
    ``[..., C, dims]`` — keys' (stored float16 or not) or a suspect's under each symmetry — for the
    shape group ``(b, filters, channels)`` whose whitening they use.  In chunks of ``chunk``."""
    lead = sketches.shape[:-2]
    flat = sketches.reshape(-1, *sketches.shape[-2:])
    maps = _vector_maps(b, filters, channels)
    out = torch.empty(flat.shape[0], sum(VECTOR_DIMS))
    for a in range(0, flat.shape[0], chunk):
        x = flat[a : a + chunk].double()
        out[a : a + chunk] = torch.cat(
            [(_second_moment(x[..., lo : lo + n], wh) - mu) @ r for lo, n, wh, mu, r in maps], -1
        ).float()
    return out.reshape(*lead, -1)


@lru_cache(maxsize=32)
def decoy_vectors(b: Basis, filters: int, channels: int) -> torch.Tensor:
    """``[DECOYS, sum(VECTOR_DIMS)]``: the decoys' shortlist vectors (:func:`decoy_sketches`)."""
    return sketch_vectors(decoy_sketches(b, filters, channels), b, filters, channels)


def vector_blocks(vectors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Vectors ``[N, P]`` split into their blocks' coordinates, each contiguous float32 (a product
    with a contiguous block is about 10 % faster than with a strided slice)."""
    out, lo = [], 0
    for p in VECTOR_DIMS:
        out.append(vectors[:, lo : lo + p].float().contiguous())
        lo += p
    return tuple(out)


def shortlist_scores(
    vectors: torch.Tensor | tuple[torch.Tensor, ...], decoys: torch.Tensor, queries: torch.Tensor, chunk: int = 1 << 16
) -> torch.Tensor:
    """Each key's shortlist z-scores ``[N, 2]``, one per block: the inner products of the keys'
    vectors (``[N, P]``, or :func:`vector_blocks` of them) with each query ``[Q, P]`` (the suspect's
    readings under the eight symmetries), standardised by the decoys' ``[DECOYS, P]``, maximised
    over queries.  A float32 product over the keys in chunks of ``chunk`` rows: memory
    ``chunk·Q`` floats beside the keys."""
    blocks = vector_blocks(vectors) if isinstance(vectors, torch.Tensor) else vectors
    qs, ds = vector_blocks(queries), vector_blocks(decoys)
    stats = []
    for q, dec in zip(qs, ds):
        d = dec @ q.T
        stats.append((q.T.contiguous(), d.mean(0), d.std(0).clamp_min(1e-12)))
    n = blocks[0].shape[0]
    out = torch.empty(n, len(stats))
    for a in range(0, n, chunk):
        for j, (v, (qt, mu, sd)) in enumerate(zip(blocks, stats)):
            out[a : a + chunk, j] = ((v[a : a + chunk] @ qt - mu) / sd).amax(1)
    return out


def shortlist(z: torch.Tensor, size: int) -> list[int]:
    """The rows :func:`shortlist_scores` ``z`` ``[N, 2]`` puts first: the top ``size // 2`` of
    each block, united (at most ``size``; all rows when ``N ≤ size``), in row order.  Per block,
    because each catches what the other misses: noise on the hidden block (free for a thief) sinks
    the hidden vector's rank and leaves the visible one first, and the visible block's sketch
    (fewer coordinates, more alike across unrelated channels) ranks a noisy derivative lower than
    the hidden one does (docs/benchmarks.md §12g)."""
    if z.shape[0] <= size:
        return list(range(z.shape[0]))
    k = size // z.shape[1]
    return sorted({int(i) for j in range(z.shape[1]) for i in z[:, j].topk(k).indices})
