"""Where the registry's shortlist vector ranks a derived key among 50,000 unrelated ones, for two
sizes of the hidden block's projection (docs/benchmarks.md §12g, "Why two lists").

    .venv/bin/python scripts/shortlist_ranks.py        # about 3 min on 2 cores

Keys: W₀ draws of the §12g shape (32 filters × 16 channels, secrets ``reg-0`` … ``reg-49999``).
Suspects: the ``reg-0`` owner's SmallCNN permuted with 8 seeds, then Gaussian noise of σ·std on
every weight (as ``bench scale --which million``), and noise of 1× and 4× the hidden block's
spread on the module's hidden block alone.  A suspect is shortlisted at a million keys when its
rank among 50,000 is about 25 or better (the top 512 of 1,000,000 per block); printed: the best
rank over the two blocks, for hidden-block noise each block's rank, and the cosine of the
suspect's best query with the key's vector.
"""

from __future__ import annotations

import torch

from freqprint.fingerprint import initial_weight
from freqprint.scan import sketch as S
from freqprint.stats.align import readings
from freqprint_bench.million import _noisy
from freqprint_bench.scale import _derived, _owner

D, C, N = 32, 16, 50_000


def suspects(sd: dict[str, torch.Tensor], b: S.Basis) -> list[torch.Tensor]:
    out = []
    for t in sd.values():
        if t.is_floating_point() and t.dim() == 4:
            out += [
                S.suspect_sketch(ws, b)
                for _, ws in readings(t, C, 3, dihedral=False)
                if 2 * ws.shape[1] >= C and ws.shape[0] >= 2
            ]
    return out


def hidden_noise(sd: dict[str, torch.Tensor], b: S.Basis, scale: float, seed: int) -> dict[str, torch.Tensor]:
    v, (_, hidden), _ = S._basis(b)
    w = sd["conv2.fingerprint.weight"].double()
    z = w.reshape(D, C, -1) @ v
    g = torch.Generator().manual_seed(seed)
    z[..., hidden] += scale * z[..., hidden].std() * torch.randn(z[..., hidden].shape, generator=g, dtype=torch.float64)
    return {**sd, "conv2.fingerprint.weight": (z @ v.T).reshape(w.shape).float().contiguous()}


def main() -> None:
    torch.set_num_threads(2)
    b = S.Basis((28, 28), 3, 1, True)
    sk = torch.cat(
        [
            S.channel_sketch(torch.stack([initial_weight(f"reg-{i}", "conv2", D, C, 3) for i in range(lo, min(N, lo + 4096))]), b)
            for lo in range(0, N, 4096)
        ]
    ).float()  # a registry computes a key's vector from its unrounded sketch (KeyStore.add_key)
    owner = _owner("reg-0", C, D)
    noisy = {
        sigma: [
            suspects(_noisy({k: v.contiguous() for k, v in _derived(owner, seed=s).state_dict().items()}, sigma, 1000 + s), b)
            for s in range(8)
        ]
        for sigma in (0.4, 0.5, 0.6)
    }
    base = {k: v.contiguous() for k, v in owner.state_dict().items()}
    hidden = {scale: [suspects(hidden_noise(base, b, scale, s), b) for s in range(2)] for scale in (1.0, 4.0)}
    for dims in ((64, 256), (64, 512)):
        S.VECTOR_DIMS = dims
        S._vector_maps.cache_clear()
        S.decoy_vectors.cache_clear()
        keys, decoys = S.sketch_vectors(sk, b, D, C), S.decoy_vectors(b, D, C)

        def ranks(sus: list[torch.Tensor]) -> list[int]:
            z = S.shortlist_scores(keys, decoys, torch.cat([S.sketch_vectors(x, b, D, C) for x in sus]))
            return [int((z[:, j] > z[0, j]).sum()) for j in range(2)]

        print(f"VECTOR_DIMS {dims}")
        for sigma in (0.0, 0.25, 0.5):  # why no approximate (IVF, PQ) index: the suspect's vector is not near the key's
            sus = suspects(_noisy({k: v.contiguous() for k, v in _derived(owner, seed=1).state_dict().items()}, sigma, 7), b)
            q = torch.cat([S.sketch_vectors(x, b, D, C) for x in sus])
            cos = [
                float(torch.nn.functional.cosine_similarity(q[:, sl], keys[0:1, sl]).max())
                for sl in (slice(0, dims[0]), slice(dims[0], None))
            ]
            print(
                f"  noise σ {sigma}: the best cosine of a query with reg-0's vector (visible, hidden) {cos[0]:.2f}, {cos[1]:.2f}"
            )
        for sigma, draws in noisy.items():
            best = sorted(min(ranks(s)) for s in draws)
            print(f"  noise σ {sigma}: {sum(r <= 25 for r in best)}/8 within the top 25 of {N:,}; best ranks {best}")
        for scale, draws in hidden.items():
            print(f"  hidden-block noise {scale}×: ranks (visible, hidden) {[ranks(s) for s in draws]}")


if __name__ == "__main__":
    main()
