"""The thief's free rewrite of a generator, against a MetaV generation claim.

A VAE decoder G is sampled from the prior N(0, I), which every orthogonal A leaves invariant, so
``z ↦ G(A z)`` generates exactly G's law of images: a rewrite that costs the thief nothing
(:mod:`freqprint.stats.latent`).  This script serves the claim's source, and every test-split
derivative of the claim's own manifest, through random rotations and random signed permutations
of the latent code, and counts how many the claim still calls derived; and scores fresh
independent teachers of the owner's data (``metav_foreign_students.py``'s draws, teachers only),
with their closeness to the source before and after the alignment a frame-reading claim applies.

Usage (models come from the cache)::

    python scripts/metav_latent_rotation.py bench-results/metav/metav-generation.safetensors --seed-bases 1300000 1400000 1500000
"""

from __future__ import annotations

import argparse

import torch

from freqprint.metav import load_claim
from freqprint.metav.artefact import clopper_pearson_upper
from freqprint.metav.ensemble import Manifest, build_ensemble
from freqprint.stats.floor import closeness
from freqprint.stats.latent import aligned, latent_codes, procrustes
from freqprint_bench.metav import v_rank_only


def rotations(n: int, dim: int, seed: int, signed_permutations: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        if signed_permutations:
            a = torch.eye(dim)[torch.randperm(dim, generator=g)] * (torch.randint(0, 2, (dim,), generator=g) * 2 - 1)[:, None]
        else:
            a = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
        out.append(a.float())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claim")
    ap.add_argument("--rotations", type=int, default=20, help="rewrites of the source of each kind")
    ap.add_argument("--seed-bases", type=int, nargs="*", default=[], help="foreign teacher draws to score (teachers only)")
    ap.add_argument("--teachers", type=int, nargs="*", default=[], help="teachers per architecture of each draw (default 3)")
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    args = ap.parse_args()
    mv, meta = load_claim(args.claim)
    print(f"claim: {args.claim}; reads suspects in the source's frame: {mv.frame is not None}; λ {mv.threshold:.3f}")
    ens = build_ensemble(Manifest.from_dict(meta["manifest"]), args.cache, splits=("train", "test"))
    src = ens.source.query
    dim = mv.task.input_shape[0]
    probe = latent_codes(512, dim, 99)
    with torch.no_grad():
        ref = src(probe).numpy()

    def rewritten(q, a):  # the thief serves z ↦ G(A z)
        return lambda z: q(z @ a.T.to(z))

    for kind, signed in (("rotation", False), ("signed permutation", True)):
        vs = [mv.verdict(rewritten(src, a)) for a in rotations(args.rotations, dim, 5 + signed, signed)]
        print(
            f"source through a random latent {kind}: {sum(v.derived for v in vs)} of {len(vs)} called derived "
            f"(V {min(v.score for v in vs):.3f}–{max(v.score for v in vs):.3f}, p {min(v.p_value for v in vs):.4f}–{max(v.p_value for v in vs):.3f}, "
            f"closeness on the claim's probes {min(v.closeness for v in vs):.3f}–{max(v.closeness for v in vs):.3f})"
        )

    def mirrored(q):  # and mirror images (the same law where the data are mirror-symmetric)
        return lambda z: q(z).reshape(len(z), 28, 28).flip(-1).reshape(len(z), -1)

    a = rotations(1, dim, 9, False)[0]
    for name, q in (("mirrored", mirrored(src)), ("mirrored and rotated", mirrored(rewritten(src, a)))):
        v = mv.verdict(q)
        print(
            f"source {name}: {'derived' if v.derived else 'not derived'} (V {v.score:.3f}, p {v.p_value:.4f}, closeness {v.closeness:.3f})"
        )
    pos = [m for m in ens.split("test") if m.label == 1]
    rot = rotations(len(pos), dim, 7, False)
    plain = [mv.verdict(m.query).derived for m in pos]
    turned = [mv.verdict(rewritten(m.query, a)).derived for m, a in zip(pos, rot)]
    mirror = [mv.verdict(mirrored(m.query)).derived for m in pos]
    print(
        f"test derivatives ({len(pos)}): called derived {sum(plain)} as served, {sum(turned)} through a random latent rotation "
        f"each, {sum(mirror)} mirrored"
    )
    if not args.seed_bases:
        return
    import sys

    sys.path.insert(0, "scripts")
    from metav_foreign_students import foreign_students

    frame = mv.task.frame(src, mv.config.frame_codes)
    assert frame is not None
    total = accused = v_only = 0
    counts = args.teachers or [3] * len(args.seed_bases)
    for base, k in zip(args.seed_bases, counts):
        man = foreign_students("generation", k, base)
        man.entries = [e for e in man.entries if e.split != "test"]
        teachers = build_ensemble(man, args.cache, splits=("val",)).split("val")
        for m in teachers:
            v = mv.verdict(m.query)
            with torch.no_grad():
                raw = closeness(m.query(probe).numpy(), ref)
                al = closeness(
                    aligned(m.query, procrustes(frame, mv.task.frame(m.query, mv.config.frame_codes)))(probe).numpy(), ref
                )
            total, accused = total + 1, accused + v.derived
            # read in the frame with p from V's rank alone (not the closeness's): the first design
            v_only += v.in_frame and v_rank_only(v.to_dict())
            print(
                f"teacher {base} {m.name}: {'ACCUSED' if v.derived else 'not accused'} V {v.score:.3f} p {v.p_value:.4f} "
                f"probe statistic {v.probe_statistic:.3f}; closeness to the source {raw:.3f} as served, {al:.3f} aligned"
            )
    print(
        f"fresh independent teachers accused: {accused} of {total} (95 % upper bound {clopper_pearson_upper(accused, total):.3f})"
    )
    if mv.frame is not None:
        print(f"read in the frame with p from V's rank alone (without the closeness's rank): {v_only} of {total} accused")


if __name__ == "__main__":
    main()
