"""A generator's latent frame: the symmetry a thief gets for free, and how a verifier undoes it.

A generator ``G: z ↦ x`` sampled with a prior that is invariant under a group acting on z — the
standard normal ``N(0, I)`` is invariant under every orthogonal matrix — can be served as
``G_A(z) = G(A z)`` for any orthogonal A: its samples have exactly the law of G's, so the
rewrite costs the thief nothing, and a black-box verifier that queries fixed latent codes X sees
``G(A X)``, answers unrelated to G's (docs/benchmarks.md §13 measures it).  The verifier brings
every suspect back into the source's frame before it reads it.

**The frame** of a generator is its mean Jacobian over the prior, estimated by central
differences on n seeded codes ``z_j`` (the same codes for every model):

    J(G) = (1/n) Σ_j [G(z_j + δ e_i) − G(z_j − δ e_i)] / (2δ),   one column per latent axis i.

For ``G_A``, ``∂G_A/∂z (z) = ∂G/∂z (A z) · A``, and ``A z`` has the law of z, so
``E J(G_A) = E J(G) · A``: the frames of a generator and its rewrite differ by A, up to the
sampling error of n codes (at n = 128 and δ = 0.25, 2,048 answers of an 8-dimensional code, a
rotated source is read back at closeness 0.994–0.999 to the source:
``scripts/metav_latent_rotation.py``, docs/benchmarks.md §13).

**The alignment** (orthogonal Procrustes): with the source's frame J and the suspect's J′,

    Â = argmin_{O orthogonal} ‖J′ − J O‖_F = U Vᵀ,   where U Σ Vᵀ = Jᵀ J′,

and the suspect is read as ``G′(Âᵀ z)`` (row vectors: ``z Â``).  For ``G′ = G_A`` this is ``G(A Âᵀ z)
≈ G(z)``; for the source itself Â = I exactly (the same codes give the same frame); a derivative
of the source keeps the source's frame, so Â ≈ I.

The output can have a symmetry of the data too: where the images are (nearly) mirror-symmetric,
serving them mirrored left–right keeps their law.  A mirror M acts on the frame's rows
(``J(M∘G) = M J(G)``), so :meth:`freqprint.metav.tasks.GenerationTask.canonical` fits both
orientations and reads the suspect in the one whose frame the rotation fits better.

**What it costs the verifier** (measured, §13): independent generators of the same data are
close to the source once aligned — a VAE's decoder is, up to the prior's symmetry, largely fixed
by the data — so the alignment that defeats the thief's rotation also brings the innocent nearer.
That is the honest null: every independent model of the reference panel is aligned the same way,
so the conformal p-value ranks a suspect against aligned independents.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["latent_codes", "latent_frame", "procrustes", "aligned"]

Query = Callable[[torch.Tensor], torch.Tensor]


def latent_codes(n: int, dim: int, seed: int) -> torch.Tensor:
    """The n seeded prior codes ``N(0, I)`` a frame is measured on."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def latent_frame(query: Query, codes: torch.Tensor, delta: float = 0.25) -> torch.Tensor:
    """J of the module docstring: ``[outputs, latent]`` float64, from one query of the
    ``2 · latent · n`` shifted codes."""
    n, dim = codes.shape
    steps = delta * torch.eye(dim, dtype=codes.dtype)
    shifted = torch.cat([codes[None] + steps[:, None], codes[None] - steps[:, None]]).reshape(-1, dim)
    with torch.no_grad():
        out = torch.flatten(query(shifted), 1).double().reshape(2, dim, n, -1)
    return ((out[0] - out[1]).mean(1) / (2 * delta)).T


def procrustes(source: torch.Tensor, suspect: torch.Tensor) -> torch.Tensor:
    """Â of the module docstring: the orthogonal matrix with ``suspect ≈ source · Â``."""
    u, _, vt = torch.linalg.svd(source.double().T @ suspect.double())
    return u @ vt


def aligned(query: Query, rotation: torch.Tensor) -> Query:
    """The suspect read in the source's frame: ``z ↦ query(z Â)`` (differentiable in z)."""
    r = rotation.float()
    return lambda z: query(z @ r.to(z))
