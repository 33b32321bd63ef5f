"""The verifier's null model, checked against independently initialised modules.

Under H0 the key's spectra are secret-seeded Gaussian draws, independent of the suspect.  At a
frequency of S' (grid divisible by K) the channel vector is circular complex Gaussian, so the
complex cosine with any fixed vector is the cosine of a random direction in R^{2C}; the verifier
uses the heavier R^C tail, exact for a real spectrum (the DC term) and conservative on S'.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from freqprint.fingerprint import FingerprintModule
from freqprint.stats.null import null_tail
from freqprint.stats.spectral import complex_cosine, invariant_frequencies, revised_dft_at
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify

C, GRID = 8, (24, 24)


def _random_spectra(n_keys: int, freqs, seed: int = 0) -> torch.Tensor:
    mods = [FingerprintModule(C, 4, GRID, filters=16, secret=f"owner-{seed}-{i}") for i in range(n_keys)]
    w = torch.cat([m.weight.detach() for m in mods]).double()
    return revised_dft_at(w, GRID, freqs)  # [n_keys*16, C, F]


def test_cosines_on_sprime_follow_the_random_direction_law():
    s = invariant_frequencies(GRID, 3)[::7]
    keys = _random_spectra(40, s)  # 640 independent source filters
    suspect = _random_spectra(1, s, seed=99)[0]  # one fixed suspect filter
    cos = complex_cosine(keys, suspect[None], dim=1).reshape(-1).numpy()
    # circular complex Gaussian in C^C  ->  (1+cos)/2 ~ Beta(C - 1/2, C - 1/2)
    ks = stats.kstest((1 + cos) / 2, stats.beta(C - 0.5, C - 0.5).cdf)
    assert ks.pvalue > 1e-3, ks
    # the verifier's R^C tail is conservative at every threshold
    for t in (0.2, 0.4, 0.6):
        assert (cos >= t).mean() <= null_tail(t, C) + 3 * np.sqrt(null_tail(t, C) / cos.size)


def test_r_c_tail_is_exact_at_the_real_dc_frequency():
    keys = _random_spectra(60, [(0, 0)])
    suspect = _random_spectra(1, [(0, 0)], seed=7)[0]
    cos = complex_cosine(keys, suspect[None], dim=1).reshape(-1).numpy()
    for t in (0.2, 0.4):
        q = null_tail(t, C)
        assert abs((cos >= t).mean() - q) < 4 * np.sqrt(q * (1 - q) / cos.size)


def test_filter_hit_probability_respects_the_markov_and_union_bounds():
    """The two inequalities behind the p-value, measured where they can fail (``bench calibration``):
    a key filter hits a fixed suspect filter with probability <= q(t)/h, any of 16 with <= 16·q(t)/h."""
    from freqprint_bench.core import run_calibration_bench

    res = run_calibration_bench(channels=(C,), n_keys=60, verifier_pairs=0)["results"][0]
    assert res["ks_pvalue_circular_law"] > 1e-3
    n = res["key_filters"]
    for r in res["rules"]:
        assert r["hit_one"] <= r["bound_one"] + 3 * np.sqrt(max(r["bound_one"], 1e-3) / n), r
        assert r["hit_any16"] <= r["bound_any16"] + 3 * np.sqrt(max(r["bound_any16"], 1e-3) / n), r
    # not vacuous: chance hits do occur at the loosest rule, and one union bound is below 1
    assert res["rules"][0]["hit_one"] > 0 and any(r["bound_any16"] < 1 for r in res["rules"])


def test_default_rule_never_fires_on_unrelated_modules():
    hits = 0
    for i in range(20):
        owner = FingerprintModule(C, 4, GRID, filters=16, secret=f"key-{i}")
        suspect = FingerprintModule(C, 4, GRID, filters=16, secret=f"unrelated-{i}")
        key = extract({"m.fingerprint.weight": owner.weight.detach(), "m.fingerprint.grid": owner.grid})
        rep = verify(key, {"m.fingerprint.weight": suspect.weight.detach()})
        assert not rep.found and rep.log10_p == 0.0 and rep.score == 0.0
        hits += rep.hits
    assert hits <= 3 * 20 * 16 * 0.01  # the threshold keeps a chance hit below p1 <= 0.01 per filter


@pytest.mark.parametrize("channels", [1, 2, 16, 64])
def test_null_tail_is_a_probability_and_shrinks_with_channels(channels):
    q = [null_tail(t, channels) for t in (0.0, 0.5, 0.8, 0.99)]
    assert all(0 <= a <= 1 for a in q) and q == sorted(q, reverse=True)
    if channels > 1:
        assert abs(q[0] - 0.5) < 1e-12
        assert null_tail(0.8, channels) > null_tail(0.8, channels * 2)


def test_kernel_statistic_follows_its_null_law_and_bound():
    """The decision statistic: single per-kernel cosines follow the exact law in each block, and
    the mean over a filter's C channels stays below the Chernoff bound of freqprint.stats.null."""
    from freqprint_bench.core import run_calibration_bench

    res = run_calibration_bench(channels=(C,), n_keys=60, verifier_pairs=0)["results"][0]["kernel_test"]
    n = 60 * 16
    for block in ("visible", "hidden"):
        assert res[block]["ks_pvalue"] > 1e-3, res[block]
        for r in res[block]["rates"]:
            assert r["rate"] <= r["bound"] + 3 * np.sqrt(max(r["bound"], 1e-3) / n), (block, r)
    assert res["visible"]["rates"][0]["rate"] > 0  # not vacuous: chance means above 0.1 do occur


def test_whole_verifier_is_conservative_on_independent_modules():
    """Every reading (8 symmetries of the square) and both tests (permuted and rotated channels):
    independent modules still get large p-values."""
    from freqprint_bench.core import verifier_null_check

    (res,) = verifier_null_check((16,), pairs=25, filters=32)
    assert res["verify_rate_p_le_0.1"] <= 0.12 and res["verify_min_log10_p"] > -2
    assert res["rotation_rate_p_le_0.1"] <= 0.16 and res["rotation_min_log10_p"] > -2


def test_far_negatives_are_not_found():
    """Populations nobody designed to look like the owner: untrained networks (with and without a
    module from another secret), constant and zero weights, another architecture."""
    from conftest import small_owner
    from freqprint import FingerprintConfig, attach, create_model, extract, verify

    own, _ = small_owner("alice")
    key = extract(own, secret="alice")
    sd = own.state_dict()
    w = sd["conv2.fingerprint.weight"]
    other = create_model("smallcnn", num_classes=10, in_channels=1, width=8)
    attach(other, FingerprintConfig(target="conv2", secret="bob", filters=16), torch.zeros(1, 1, 28, 28))
    for name, suspect in {
        "untrained": create_model("smallcnn", num_classes=10, in_channels=1, width=8).state_dict(),
        "another secret's module": other.state_dict(),
        "zero module": {**sd, "conv2.fingerprint.weight": torch.zeros_like(w)},
        "constant module": {**sd, "conv2.fingerprint.weight": torch.ones_like(w)},
        "every tensor constant": {k: torch.full_like(v, 0.1) if v.is_floating_point() else v for k, v in sd.items()},
        "untrained resnet18": create_model("resnet18", num_classes=10, in_channels=1, width=0.25).state_dict(),
    }.items():
        rep = verify(key, suspect)
        assert not rep.found and rep.log10_p > -1, (name, rep.log10_p)
