"""Tracing metrics, the Method protocol and a miniature tracing run (synthetic data, cached)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from freqprint.methods import FrequencyFingerprint, Method
from freqprint.stats.metrics import best_balanced_accuracy, best_threshold_accuracy, summarize, tpr_at_fpr
from freqprint_bench.tracing import run_tracing, small_profile, tracing_markdown, tracing_plots, train_source


def test_metrics_on_hand_made_scores():
    scores, labels = [0.1, 0.2, 0.3, 0.9, 0.8, 0.25], [0, 0, 0, 1, 1, 1]
    acc, t = best_threshold_accuracy(scores, labels)
    assert acc == pytest.approx(5 / 6) and t in (0.2, 0.3)  # both cuts misclassify one pair
    s = summarize(scores, labels, fixed_threshold=0.5)
    assert s["fixed_threshold_accuracy"] == pytest.approx(5 / 6)
    assert s["roc_auc"] == pytest.approx(8 / 9)  # 8 of the 9 (positive, negative) pairs are ordered right
    assert tpr_at_fpr(scores, labels, 0.01) == pytest.approx(2 / 3)
    perfect = summarize([0, 0, 1, 1], [0, 0, 1, 1], 0.5)
    assert perfect["best_threshold_accuracy"] == 1.0 and perfect["roc_auc"] == 1.0 and perfect["tpr_at_1pct_fpr"] == 1.0
    assert math.isnan(tpr_at_fpr([1, 2], [1, 1]))
    # 1 positive in 8: "always negative" already scores 87.5 %, balanced accuracy only 50 %
    imb_scores, imb_labels = [0.1] * 7 + [0.05], [0] * 7 + [1]
    assert best_threshold_accuracy(imb_scores, imb_labels)[0] == pytest.approx(7 / 8)
    assert best_balanced_accuracy(imb_scores, imb_labels)[0] == pytest.approx(0.5)
    assert best_balanced_accuracy(scores, labels)[0] == pytest.approx(5 / 6)


def test_frequency_method_follows_the_protocol():
    assert isinstance(FrequencyFingerprint(), Method)


def test_miniature_tracing_run_and_cache(fashion_dir, digits_dir, tmp_path):
    prof = small_profile(
        sources=2,
        independents=1,
        source_limit=600,
        source_epochs=1,
        finetune_epochs=1,
        lrs=(0.01,),
        model="smallcnn",
        model_kwargs={"width": 8},
        batch_size=64,
    )
    method = FrequencyFingerprint(target="conv2", filters=32)
    r = run_tracing(method, prof, cache_dir=tmp_path / "cache", data_root=fashion_dir, target_root=digits_dir, log=lambda m: None)
    ours = r["methods"]["ours"]
    assert r["cache"]["misses"] == 5 and len(ours["pairs"]) == 2 * 3  # 2 sources x (2 derived + 1 independent)
    m = ours["by_lr"]["0.01"]["neg_log10_p"]
    assert m["positives"] == 2 and m["best_threshold_accuracy"] == 1.0 and m["fixed_threshold_accuracy"] == 1.0
    assert m["roc_auc"] == 1.0
    for p in ours["pairs"]:
        assert (p["found"] == 1.0) == (p["label"] == 1)
    md = tracing_markdown(r)
    assert "| 0.01 | 100.0 % | 100.0 %" in md
    assert {p.name for p in tracing_plots(r, tmp_path / "plots")} == {"tracing_scores.png", "tracing_roc.png"}
    json.dumps(r)  # the report is JSON-serialisable
    again = run_tracing(
        method, prof, cache_dir=tmp_path / "cache", data_root=fashion_dir, target_root=digits_dir, log=lambda m: None
    )
    assert again["cache"] == {**r["cache"], "hits": 5, "misses": 0}
    assert [p["neg_log10_p"] for p in again["methods"]["ours"]["pairs"]] == [p["neg_log10_p"] for p in ours["pairs"]]
    # another fine-tuning lr reuses the source pool: only the new suspects are trained
    more = run_tracing(
        method,
        small_profile(**{**prof.__dict__, "lrs": (0.1,)}),
        cache_dir=tmp_path / "cache",
        data_root=fashion_dir,
        target_root=digits_dir,
        log=lambda m: None,
    )
    assert more["cache"]["hits"] == 3 and more["cache"]["misses"] == 2


def test_tracing_pool_trains_on_an_executor_like_in_process(fashion_dir, digits_dir, tmp_path):
    """The pool's models train as parallel jobs (here 2 spawned processes; Ray is the same
    interface) and the sequential pass only loads them; a job's model equals the one trained in
    this process from the same recipe."""
    from safetensors.torch import load_file

    from freqprint.executor import create_executor

    prof = small_profile(
        sources=2,
        independents=1,
        source_limit=400,
        source_epochs=1,
        finetune_epochs=1,
        lrs=(0.01,),
        model="smallcnn",
        model_kwargs={"width": 8},
        batch_size=64,
    )
    method = FrequencyFingerprint(target="conv2", filters=32)
    with create_executor("local", workers=2) as ex:
        r = run_tracing(
            method,
            prof,
            cache_dir=tmp_path / "cache",
            data_root=fashion_dir,
            target_root=digits_dir,
            log=lambda m: None,
            executor=ex,
        )
    assert r["cache"]["trained_on_executor"] == 5 and r["cache"]["misses"] == 0 and r["cache"]["hits"] == 5
    for p in r["methods"]["ours"]["pairs"]:
        assert (p["found"] == 1.0) == (p["label"] == 1)
    here, _ = train_source(prof, method, 0, fashion_dir, digits_dir)
    [path] = [
        p
        for p in (tmp_path / "cache" / "models").glob("source-*.safetensors")
        if json.loads(p.with_suffix(".json").read_text())["index"] == 0
    ]
    there = load_file(str(path))
    mine = here.state_dict()
    assert set(there) == set(mine)
    for k, v in mine.items():
        torch.testing.assert_close(there[k], v.detach(), rtol=1e-4, atol=1e-5)
    assert not list((tmp_path / "cache" / "models").glob("*.part"))  # every file was written whole
