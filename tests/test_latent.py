"""A generator's latent frame (freqprint.stats.latent): the rotation a thief applies to the latent
code is recovered from black-box queries, and the source's own frame aligns to the identity."""

from __future__ import annotations

import pytest
import torch

from freqprint.stats.latent import aligned, latent_codes, latent_frame, procrustes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_rotation_of_the_latent_code_is_recovered(seed):
    torch.manual_seed(seed)
    dec = torch.nn.Sequential(torch.nn.Linear(6, 48), torch.nn.Tanh(), torch.nn.Linear(48, 30))
    codes = latent_codes(512, 6, 11)
    frame = latent_frame(dec, codes)
    assert frame.shape == (30, 6) and frame.dtype == torch.float64
    # the source's own frame: the identity, exactly (the same codes give the same frame)
    assert torch.allclose(procrustes(frame, frame), torch.eye(6, dtype=torch.float64), atol=1e-10)
    a = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(seed + 100)))[0]
    a[:, 0] *= -1  # a reflection too: the prior is invariant under every orthogonal matrix

    def thief(z: torch.Tensor) -> torch.Tensor:
        return dec(z @ a.T)

    r = procrustes(frame, latent_frame(thief, codes))
    assert torch.allclose(r @ r.T, torch.eye(6, dtype=torch.float64), atol=1e-10)
    assert float((r - a.double()).norm()) < 0.1
    z = latent_codes(64, 6, 12)
    with torch.no_grad():
        back, plain = aligned(thief, r)(z), thief(z)
        truth = dec(z)
    assert float((back - truth).abs().max()) < 0.05 * float(truth.abs().max())
    assert float((plain - truth).abs().max()) > 10 * float((back - truth).abs().max())
