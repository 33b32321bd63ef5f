"""Alignment of two stacks of conv kernels, shared by the verifier and the lineage test.

A thief may permute a layer's filters and its input channels and rescale either; both tests
therefore compare kernels after a Hungarian assignment (``scipy.optimize.linear_sum_assignment``)
of filters and of input channels, alternating, with each kernel normalised.  The statistic built
on the alignment lives with each test; here is only the search, and reading a tensor in every
layout a thief can store it in (:func:`readings`).

Why the search is allowed to look at the data: both tests pay for it with a union bound (over the
``C!/(C−n)!`` channel maps and the ``D′`` suspect filters each key filter may match), so the
alignment can be as greedy as it likes without breaking the p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from scipy.optimize import linear_sum_assignment

__all__ = [
    "DIHEDRAL",
    "Fit",
    "channel_map",
    "descriptor",
    "fit",
    "gram_descriptor",
    "greedy_filters",
    "hungarian",
    "operator_scaling",
    "read_as",
    "reading_shapes",
    "readings",
    "rotation_fit",
    "score_filters",
    "segment_fit",
    "unit",
]


# The eight symmetries of the square, as maps of a [..., K, K] kernel stack.  A thief who rewrites
# the code around a tensor can run a conv on a transposed or flipped grid (transpose the feature map
# in, the result back out; a flip also shifts by K−1, undone by a roll) with the kernels transformed
# the same way: the function is unchanged, the stored kernels are not.  So every layout is read
# under all eight; the p-value pays for them as for any other candidate.
DIHEDRAL: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "": lambda w: w,
    "T": lambda w: w.transpose(-1, -2),
    "flipH": lambda w: w.flip(-2),
    "flipW": lambda w: w.flip(-1),
    "rot180": lambda w: w.flip(-2, -1),
    "rot90": lambda w: w.transpose(-1, -2).flip(-1),
    "rot270": lambda w: w.transpose(-1, -2).flip(-2),
    "antiT": lambda w: w.transpose(-1, -2).flip(-2, -1),
}


def _reshape_oihw(t: torch.Tensor, m: Callable[[torch.Tensor], torch.Tensor], r: int, n: int, k: int) -> torch.Tensor:
    return m(t).reshape(r, n, k, k)


def _reshape_ohwi(t: torch.Tensor, m: Callable[[torch.Tensor], torch.Tensor], r: int, n: int, k: int) -> torch.Tensor:
    return m(t).reshape(r, k, k, n).permute(0, 3, 1, 2)


def readings(t: torch.Tensor, c: int, k: int, dihedral: bool = True) -> list[tuple[str, torch.Tensor]]:
    """Every way to read ``t`` as ``[D′, C′, K, K]`` with K×K kernels (C′ free for 4-D/3-D): each
    storage layout, and with ``dihedral`` each of them under the eight symmetries of the square
    (labelled ``"OIHW"``, ``"OIHW·T"``, ``"OIHW·rot90"``, …; the untransformed reading first)."""
    base = _layouts(t, c, k)
    if not dihedral or k == 1:
        return base
    return [(label + (f"·{g}" if g else ""), op(w)) for label, w in base for g, op in DIHEDRAL.items()]


def _layout_specs(
    shape: tuple[int, ...], c: int, k: int
) -> list[tuple[str, tuple[int, int, int, int], Callable[[torch.Tensor], torch.Tensor]]]:
    """Every storage layout a tensor of this shape can be read in as ``[D′, C′, K, K]``:
    ``(label, reading's shape, how to read it)``.  The one table behind :func:`readings` (tensors)
    and :func:`reading_shapes` (shapes only), so the two cannot disagree."""
    s = tuple(int(x) for x in shape)
    kk = k * k
    out: list[tuple[str, tuple[int, int, int, int], Callable[[torch.Tensor], torch.Tensor]]] = []
    if len(s) == 4:
        if s[2:] == (k, k):
            out.append(("OIHW", (s[0], s[1], k, k), lambda t: t))
        if s[:2] == (k, k):
            out.append(("HWIO", (s[3], s[2], k, k), lambda t: t.permute(3, 2, 0, 1)))
        if s[1:3] == (k, k) and s[2:] != (k, k):
            out.append(("OHWI", (s[0], s[3], k, k), lambda t: t.permute(0, 3, 1, 2)))
    elif len(s) == 3 and s[2] == kk:
        out.append(("O,I,HW", (s[0], s[1], k, k), lambda t: t.reshape(s[0], s[1], k, k)))
    elif len(s) == 2:
        for label, transposed in (("O,IHW", False), ("IHW,O", True)):
            rows, cols = (s[1], s[0]) if transposed else s
            if cols % kk == 0:  # C′ = columns / K²: dead channels may have been added
                cs = cols // kk
                mat: Callable[[torch.Tensor], torch.Tensor] = (lambda t: t.T) if transposed else (lambda t: t)
                out.append((label, (rows, cs, k, k), partial(_reshape_oihw, m=mat, r=rows, n=cs, k=k)))
                out.append(
                    (
                        label.replace("IHW", "HWI"),
                        (rows, cs, k, k),
                        partial(_reshape_ohwi, m=mat, r=rows, n=cs, k=k),
                    )
                )
    elif len(s) == 1 and s[0] % (c * kk) == 0 and s[0] >= c * kk:
        out.append(("flat", (s[0] // (c * kk), c, k, k), lambda t: t.reshape(-1, c, k, k)))
    return out


def reading_shapes(shape: tuple[int, ...], c: int, k: int, dihedral: bool = True) -> list[tuple[str, tuple[int, int, int, int]]]:
    """``[(label, (D′, C′, K, K))]`` of :func:`readings` from the shape alone, in the same order, with
    no tensor made: listing a large file's candidates costs only integer arithmetic (the symmetries
    of the square keep a K×K kernel's shape)."""
    base = [(label, sh) for label, sh, _ in _layout_specs(shape, c, k)]
    if not dihedral or k == 1:
        return base
    return [(label + (f"·{g}" if g else ""), sh) for label, sh in base for g in DIHEDRAL]


def read_as(t: torch.Tensor, label: str, c: int, k: int) -> torch.Tensor:
    """The one reading of ``t`` that :func:`readings` labels ``label`` (e.g. ``"HWIO·rot90"``),
    without making the others."""
    base, _, g = label.partition("·")
    read = {lab: fn for lab, _, fn in _layout_specs(tuple(t.shape), c, k)}[base]
    return DIHEDRAL[g](read(t))


def _layouts(t: torch.Tensor, c: int, k: int) -> list[tuple[str, torch.Tensor]]:
    return [(label, fn(t)) for label, _, fn in _layout_specs(tuple(t.shape), c, k)]


def unit(z: torch.Tensor) -> torch.Tensor:
    """``z`` with its last axis scaled to unit length; a zero row stays zero.  The floor is 1e-300
    or the dtype's smallest normal number, whichever is larger: 1e-300 is 0 in float32, and 0/0
    would turn a zero row (a pruned filter) into NaN, which a later max spreads to every score."""
    floor = max(1e-300, torch.finfo(z.dtype).tiny)
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(floor)


def hungarian(score: torch.Tensor) -> torch.Tensor:
    """``match[i]`` = column assigned to row i (-1 if none), maximising the total score."""
    rows, cols = linear_sum_assignment(score.numpy(), maximize=True)
    match = torch.full((score.shape[0],), -1, dtype=torch.long)
    match[torch.as_tensor(rows, dtype=torch.long)] = torch.as_tensor(cols, dtype=torch.long)
    return match


def descriptor(u: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Per filter, the 2nd and 4th moments of its unit kernels over channels: blind to the order,
    sign and scale of channels and to the filter's own sign; centred and normalised.  Built
    ``chunk`` filters at a time, so the ``[chunk, k(k+1)/2, C]`` products stay in cache (one
    ``[D, C, k(k+1)/2]`` tensor for a 512-wide layer is 94 MB: five times slower)."""
    k = u.shape[-1]
    iu = torch.triu_indices(k, k)
    d, c, pairs = u.shape[0], u.shape[1], iu.shape[1]
    m2 = u.new_empty(d, pairs)
    m4 = u.new_empty(d, pairs * pairs)
    for s in range(0, d, chunk):
        ut = u[s : s + chunk].transpose(1, 2)
        outer = ut[:, iu[0]] * ut[:, iu[1]]  # [chunk, k(k+1)/2, C]
        m2[s : s + chunk] = outer.mean(2)
        m4[s : s + chunk] = torch.bmm(outer, outer.transpose(1, 2)).flatten(1) / c
    out = torch.cat([m2, m4], 1)
    out = out - out.mean(0, keepdim=True)
    return unit(out)


@dataclass
class Fit:
    match: torch.Tensor  # [D] suspect filter per key filter (-1: none)
    perm: torch.Tensor  # [n] suspect channel for each of the key channels in ``key_channels``
    key_channels: torch.Tensor  # [n]
    strength: torch.Tensor  # [D] s_d (0 where unmatched)
    sign: torch.Tensor  # [D] ±1


def channel_map(
    a: torch.Tensor, b: torch.Tensor, match: torch.Tensor, sign: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    ok = match >= 0
    if sign is not None:  # Σ_d sign_d·cos(a_dc, b_m(d)e) as one [C, D·k] × [D·k, C′] product, no [D, C, C′] tensor
        cost = (a[ok] * sign[ok, None, None]).transpose(0, 1).flatten(1) @ b[match[ok]].transpose(0, 1).flatten(1).T
    else:  # Σ_d cos², in chunks of filters so the [chunk, C, C′] cosines stay in cache
        ao, bo = a[ok], b[match[ok]]
        cost = torch.zeros(a.shape[1], b.shape[1], dtype=a.dtype)
        for i in range(0, ao.shape[0], 32):
            c = torch.bmm(ao[i : i + 32], bo[i : i + 32].transpose(1, 2))
            cost += c.mul_(c).sum(0)
    if a.shape[1] <= b.shape[1]:
        m = hungarian(cost)
        return torch.arange(a.shape[1]), m
    m = hungarian(cost.T)  # fewer suspect channels: each suspect channel gets a key channel
    order = torch.argsort(m)
    return m[order], torch.arange(b.shape[1])[order]


def score_filters(
    a: torch.Tensor, b: torch.Tensor, kc: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = (a[:, kc].flatten(1) @ b[:, perm].flatten(1).T) / len(kc)  # signed mean cosine [D, D′], one matrix product
    match = hungarian(s.abs())
    ok = match >= 0
    signed = torch.zeros(a.shape[0], dtype=s.dtype)
    signed[ok] = s[ok.nonzero().squeeze(1), match[ok]]
    return match, signed.abs(), torch.where(signed < 0, -1.0, 1.0).to(s.dtype)


def greedy_filters(
    a: torch.Tensor, b: torch.Tensor, kc: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Like :func:`score_filters`, but each key filter takes its best suspect filter on its own
    (``argmax_e |s_de|``, not one-to-one): one matrix product, no assignment problem.  Its hit count
    is the largest any filter match can reach under this channel map, and it is what the union
    bound over the D′ suspect filters in the verifier's null already pays for."""
    s = (a[:, kc].flatten(1) @ b[:, perm].flatten(1).T) / len(kc)  # signed mean cosine [D, D′]
    strength, match = s.abs().max(1)
    signed = s.gather(1, match[:, None]).squeeze(1)
    return match, strength, torch.where(signed < 0, -1.0, 1.0).to(s.dtype)


def fit(a: torch.Tensor, b: torch.Tensor, init: list[torch.Tensor], t: float) -> Fit:
    """Best alignment of key block ``a`` [D,C,k] to suspect block ``b`` [D′,C′,k] (unit kernels)."""
    best: Fit | None = None
    starts: list[tuple[torch.Tensor | None, torch.Tensor | None]] = [(m, None) for m in init]
    if a.shape[1] == b.shape[1]:
        starts.append((None, torch.arange(a.shape[1])))  # identity channel order
    for match, perm in starts:
        kc = torch.arange(a.shape[1])
        if perm is None:
            assert match is not None  # a start without a channel order has a filter match
            kc, perm = channel_map(a, b, match, None)
        for _ in range(3):
            match, strength, sign = score_filters(a, b, kc, perm)
            kc, perm = channel_map(a, b, match, sign)
        match, strength, sign = score_filters(a, b, kc, perm)
        fit = Fit(match, perm, kc, strength, sign)
        key_of = (int((strength >= t).sum()), float(strength.sum()))
        if best is None or key_of > (int((best.strength >= t).sum()), float(best.strength.sum())):
            best = fit
    assert best is not None
    return best


def _filter_unit(z: torch.Tensor) -> torch.Tensor:
    """Each filter ``[C, k]`` scaled to unit Frobenius norm (a positive filter scale cancels)."""
    return z / torch.linalg.vector_norm(z.flatten(1), dim=1).clamp_min(1e-300)[:, None, None]


def gram_descriptor(z: torch.Tensor) -> torch.Tensor:
    """Per filter, its ``k×k`` Gram over channels ``Zᵀ·Z`` (``Z = [C, k]``, unit Frobenius norm),
    isotropic part removed, upper triangle, unit length.  Unchanged by any orthogonal mixing of
    the channels (``Z → Q·Z``), by a permutation of them, and by the filter's sign and scale."""
    zf = _filter_unit(z)
    g = torch.einsum("dck,dcl->dkl", zf, zf)
    k = g.shape[-1]
    g = g - torch.diagonal(g, dim1=-2, dim2=-1).mean(-1)[:, None, None] * torch.eye(k, dtype=g.dtype)
    iu = torch.triu_indices(k, k)
    return unit(g[:, iu[0], iu[1]])


def rotation_fit(a: torch.Tensor, b: torch.Tensor, iters: int = 4) -> torch.Tensor:
    """The orthogonal channel map ``Q`` (``[C′, C]``, orthonormal columns or rows) that best takes
    the key filters ``a`` ``[D, C, k]`` to suspect filters ``b`` ``[D′, C′, k]``: ``b_e ≈ s·Q·a_d``
    for some filter match d → e, sign and positive scale.  A thief who rotates a Transformer's
    residual stream mixes the module's input channels by such a Q (``freqprint.attacks.ResidualRotation``).

    Filters are first matched on :func:`gram_descriptor` (blind to Q), then orthogonal Procrustes
    (SVD of ``Σ_d b_e·a_dᵀ``) and a re-match on the rotated kernels alternate."""
    ua, ub = _filter_unit(a), _filter_unit(b)
    match = hungarian(gram_descriptor(a) @ gram_descriptor(b).T)
    sign = torch.ones(a.shape[0], dtype=a.dtype)
    q = None
    for _ in range(iters):
        ok = match >= 0
        m = torch.einsum("nek,nck->ec", ub[match[ok]] * sign[ok, None, None], ua[ok])
        u, _, vh = torch.linalg.svd(m, full_matrices=False)
        q = u @ vh
        s = torch.einsum("ec,dck,fek->df", q, ua, ub)
        match = hungarian(s.abs())
        got = s.gather(1, match.clamp_min(0)[:, None]).squeeze(1)
        sign = torch.where(got < 0, -1.0, 1.0).to(a.dtype)
    assert q is not None
    return q


def _inverse_sqrt(m: torch.Tensor) -> torch.Tensor:
    e, v = torch.linalg.eigh(m)
    return (v * e.clamp_min(float(e.max()) * 1e-10).rsqrt()) @ v.T


def operator_scaling(y: torch.Tensor, steps: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``L`` ``[D, D]`` and ``R`` ``[C, C]`` that bring ``Z_a = L·Y_a·R`` (``y`` ``[D, C, m]``)
    towards ``Σ_a Z_a Z_aᵀ ∝ I`` and ``Σ_a Z_aᵀ Z_a ∝ I`` (Gurvits' operator scaling, alternating
    whitening of rows and columns).  Two stacks that differ by invertible maps on either side,
    ``Q·Y_a·P``, scale to forms that differ only by orthogonal ones: what is left to fit is
    well conditioned however badly conditioned Q and P were."""
    yy = y.permute(2, 0, 1)
    d, c = yy.shape[1:]
    left = torch.eye(d, dtype=y.dtype)
    right = torch.eye(c, dtype=y.dtype)
    for _ in range(steps):
        z = left @ yy @ right
        left = _inverse_sqrt(torch.einsum("adc,aec->de", z, z) / c) @ left
        z = left @ yy @ right
        right = right @ _inverse_sqrt(torch.einsum("adc,ade->ce", z, z) / d)
    return left, right


def segment_fit(
    y: torch.Tensor, x: torch.Tensor, fit_positions: torch.Tensor, iters: int = 60, ridge: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear maps ``A`` ``[D, D′]`` and ``B`` ``[C′, C]`` with ``A·Y_a·B ≈ X_a`` at the kernel
    positions ``a`` in ``fit_positions`` (``y`` ``[D′, C′, m]`` the suspect's stored kernels at
    every position, ``x`` ``[D, C, |fit|]`` θ₀ at the fitted ones only): a conv whose linear
    segment a thief stored as ``Q·W·P`` between any number of 1×1 maps (``Q``, ``P`` invertible,
    factorised any way) is ``W`` again under ``A = Q⁻¹``, ``B = P⁻¹``, whatever the file holds
    around it.

    ``y`` is first brought to its :func:`operator_scaling` form (its own statistics only), then
    ``iters`` steps of alternating ridge least squares from ``B = I``, in float32 (any fit will
    do for the p-value: the lineage test evaluates it on kernel positions it never saw)::

        A = (Σ_a X_a·(Y_a B)ᵀ)·(Σ_a (Y_a B)(Y_a B)ᵀ + λ·I)⁻¹
        B = (Σ_a (A Y_a)ᵀ(A Y_a) + λ·I)⁻¹·(Σ_a (A Y_a)ᵀ·X_a)

    with ``λ = ridge`` times the mean eigenvalue of the normal matrix it regularises."""
    left, right = operator_scaling(y)
    yy = (left @ y.permute(2, 0, 1)[fit_positions] @ right).to(torch.float32)  # [m, D′, C′]
    xx = x.permute(2, 0, 1).to(torch.float32)  # [m, D, C]
    dp, cp = yy.shape[1:]
    b = torch.eye(cp, xx.shape[2], dtype=torch.float32)
    a = torch.zeros(xx.shape[1], dp, dtype=torch.float32)
    xf = xx.permute(1, 0, 2).flatten(1)  # [D, m·C]
    xs = xx.flatten(end_dim=1)  # [m·D, C]

    def ridged(m: torch.Tensor) -> torch.Tensor:
        return m + ridge * (m.trace() / m.shape[0]).clamp_min(1e-30) * torch.eye(m.shape[0], dtype=m.dtype)

    for _ in range(iters):
        yb = (yy @ b).permute(1, 0, 2).flatten(1)  # [D′, m·C]
        a = torch.linalg.solve(ridged(yb @ yb.T), yb @ xf.T).T
        ay = (a @ yy).flatten(end_dim=1)  # [m·D, C′]
        b = torch.linalg.solve(ridged(ay.T @ ay), ay.T @ xs)
    return a.to(y.dtype) @ left, right @ b.to(y.dtype)
