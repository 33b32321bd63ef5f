"""``freqprint metav bench``: MetaV and the baselines on held-out suspects, per task kind.

For each task kind: build the default ensemble (:func:`freqprint.metav.ensemble.default_manifest`,
cached), train MetaV on its train split and calibrate λ on its validation split, score the test
split, write the claim artefact, reload it (commitment checked) and re-check it on the panel.
The baselines (IPGuard for classifiers, "same mistakes" for every kind, the frequency fingerprint
where the source carries a module) score the same test suspects, each with its threshold
calibrated on the same validation suspects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from freqprint.metav.artefact import load_claim, panel_check, save_claim
from freqprint.metav.comparators import FrequencyFingerprintScore, IPGuard, SameMistakes
from freqprint.metav.core import MetaVConfig, calibrate_threshold, fit_metav
from freqprint.metav.ensemble import PROFILES, Ensemble, build_ensemble, default_manifest, fingerprint_secret
from freqprint.metav.trainer import metav_configs
from freqprint.stats.aruc import per_family, summarise

__all__ = ["METAV_CLAIM", "metav_markdown", "run_metav_bench", "run_metav_task"]

# the published claim (Pan et al., KDD 2022, abstract): 70 suspect ResNet-18s (skin-cancer diagnosis)
METAV_CLAIM = {"suspects": 70, "tpr": 1.0, "tnr": 1.0}
KINDS = ("classification", "regression", "generation")


def _scores_of(members: list, score: Callable[[Any], float]) -> tuple[list[float], list[int], list[str], list[str]]:
    s = [float(score(m)) for m in members]
    return s, [m.label for m in members], [m.entry.family for m in members], [m.name for m in members]


def _evaluate(
    val: list, test: list, score: Callable[[Any], float], threshold: float | None = None, rounds: int = 1000
) -> dict[str, Any]:
    """Calibrate (unless given) on ``val``, report on ``test``."""
    if threshold is None:
        sv, yv, _, _ = _scores_of(val, score)
        threshold = calibrate_threshold([s for s, y in zip(sv, yv) if y], [s for s, y in zip(sv, yv) if not y])
    st, yt, ft, nt = _scores_of(test, score)
    pos = [s for s, y in zip(st, yt) if y]
    neg = [s for s, y in zip(st, yt) if not y]
    return {**summarise(pos, neg, threshold, rounds), "families": per_family(st, yt, ft, threshold), "scores": dict(zip(nt, st))}


def _thief_rewrites(mv, task, test: list) -> dict[str, Any]:
    """What a README-reading thief does to a classifier at no cost, on the test models (their
    weights, not their API views):

    * function-preserving weight rewrites — permute and rescale every conv pair
      (``permute-blocks``, ``scale-blocks``); MetaV reads outputs, so its score must not move;
    * a temperature on the served probabilities, ``softmax(z / T)``: every label is kept, the
      probabilities MetaV reads are not."""
    import torch

    from freqprint.attacks import BlockPermutation, BlockScaling, Compose
    from freqprint.attacks.equivariance import conv_pairs

    models = [m for m in test if m.entry.op != "output"]
    rewrite = Compose([BlockPermutation(seed=1), BlockScaling(seed=2)])
    deltas, flips, rewritten = [], 0, 0
    for m in models:
        if not conv_pairs(m.model):
            continue
        before, after = mv.score(m.model), mv.score(rewrite(m.model))
        rewritten += 1
        deltas.append(abs(after - before))
        flips += (before >= mv.threshold) != (after >= mv.threshold)
    temps = {}
    for t in (0.5, 2.0, 4.0):
        scores = [(mv.score(lambda x, mm=m.model, tt=t: torch.softmax(task.outputs(mm, x) / tt, 1)), m.label) for m in models]
        pos = [sc for sc, y in scores if y]
        neg = [sc for sc, y in scores if not y]
        temps[str(t)] = {
            "tpr": sum(sc >= mv.threshold for sc in pos) / len(pos),
            "tnr": sum(sc < mv.threshold for sc in neg) / len(neg),
            "n_pos": len(pos),
            "n_neg": len(neg),
        }
    plain = [(mv.score(m.model), m.label) for m in models]
    temps["1.0"] = {
        "tpr": sum(sc >= mv.threshold for sc, y in plain if y) / sum(y for _, y in plain),
        "tnr": sum(sc < mv.threshold for sc, y in plain if not y) / sum(1 - y for _, y in plain),
        "n_pos": sum(y for _, y in plain),
        "n_neg": sum(1 - y for _, y in plain),
    }
    return {
        "rewritten": rewritten,
        "max_score_change": max(deltas) if deltas else 0.0,
        "verdicts_flipped": flips,
        "temperature": temps,
    }


def run_metav_task(
    kind: str,
    profile: str = "quick",
    cache_dir: str | Path = ".cache/freqprint/metav",
    out_dir: str | Path = "bench-results/metav",
    root: str | None = None,
    log: Callable[[str], None] = print,
    config: MetaVConfig | None = None,
    device: str = "cpu",
    executor: Any = None,
) -> dict[str, Any]:
    t0 = time.time()
    manifest = default_manifest(kind, profile)
    log(f"[{kind}] building the ensemble ({len(manifest.entries)} entries, profile {profile})")
    ens: Ensemble = build_ensemble(manifest, cache_dir, root=root, log=log, device=device, executor=executor)
    t_build = time.time() - t0
    task, data = ens.task, ens.data
    train, val, test, panel = (ens.split(s) for s in ("train", "val", "test", "panel"))
    cfg = config or metav_configs(profile)[kind]
    log(f"[{kind}] training MetaV: {len(train)} train / {len(val)} val models, N = {cfg.n_inputs}, {cfg.steps} steps")
    lo, hi = task.domain(data.owner)
    t1 = time.time()
    mv = fit_metav(
        task,
        [(m.query, m.label) for m in train],
        [(m.query, m.label) for m in val],
        task.init_inputs(data.owner, cfg.n_inputs, cfg.seed),
        (lo, hi),
        cfg,
        log=log,
    )
    t_fit = time.time() - t1
    results: dict[str, Any] = {"metav": _evaluate(val, test, lambda m: mv.score(m.query), mv.threshold)}
    results["metav"]["best_step"] = mv.history[-1]["best_step"]

    # the claim: write, reload (commitment checked), the reloaded verifier must give the same scores
    out = Path(out_dir)
    claim_path = out / f"metav-{kind}.safetensors"
    commitment = save_claim(mv, claim_path, manifest.to_dict(), ens.hashes, {"profile": profile})
    mv2, _ = load_claim(claim_path)
    same = max(abs(mv2.score(m.query) - results["metav"]["scores"][m.name]) for m in test)
    pr = panel_check(mv2, [m.query for m in panel], [m.name for m in panel])

    t2 = time.time()
    source = ens.source
    base: dict[str, Any] = {}
    sm = SameMistakes().fit(task, source.query, data.test)
    base["same-mistakes"] = _evaluate(val, test, lambda m: sm.score(m.query))
    if kind == "classification":
        ip = IPGuard(seed=1).fit(task, source.query, data.owner)
        base["ipguard"] = _evaluate(val, test, lambda m: ip.score(m.query))
        if source.entry.params.get("fingerprint"):
            ours = FrequencyFingerprintScore(fingerprint_secret(source.entry.seed)).fit(source.model)
            base["ours (white-box)"] = _evaluate(val, test, lambda m: ours.score_model(m.model)["score"], threshold=1 - 1e-6)
    t_base = time.time() - t2
    rewrites = _thief_rewrites(mv, task, test) if kind == "classification" else None
    counts = ens.counts()
    quality = {m.name: m.quality for m in ens.members}
    return {
        "kind": kind,
        "profile": profile,
        "models": len(ens.members),
        "trained": ens.trained,
        "cached": ens.cached,
        "counts": counts,
        "config": cfg.to_dict(),
        "threshold": mv.threshold,
        "history": mv.history[:-1],
        "results": results,
        "baselines": base,
        "rewrites": rewrites,
        "claim": {"path": str(claim_path), "commitment": commitment, "reload_max_score_diff": same, "panel": pr.to_dict()},
        "source_quality": source.quality,
        "quality": quality,
        "seconds": {"ensemble": t_build, "metav_fit": t_fit, "baselines": t_base, "total": time.time() - t0},
    }


def run_metav_bench(
    profile: str = "quick",
    kinds: tuple[str, ...] = KINDS,
    cache_dir: str | Path = ".cache/freqprint/metav",
    out_dir: str | Path = "bench-results/metav",
    root: str | None = None,
    log: Callable[[str], None] = print,
    device: str = "cpu",
    executor: Any = None,
) -> dict[str, Any]:
    if profile not in PROFILES:
        from freqprint.errors import FreqprintError

        raise FreqprintError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    t0 = time.time()
    tasks = {k: run_metav_task(k, profile, cache_dir, out_dir, root, log, device=device, executor=executor) for k in kinds}
    res = {"profile": profile, "tasks": tasks, "seconds": time.time() - t0, "metav_claim": METAV_CLAIM}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metav.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "metav.md").write_text(metav_markdown(res))
    return res


def _ci(r: dict[str, Any], k: str) -> str:
    lo, hi = r["ci95"][k]
    return f"{r[k]:.3f} [{lo:.2f}, {hi:.2f}]"


def metav_markdown(res: dict[str, Any]) -> str:
    lines = [f"# MetaV benchmark (profile `{res['profile']}`, {res['seconds'] / 60:.1f} min)", ""]
    for kind, t in res["tasks"].items():
        lines += [
            f"## {kind}",
            "",
            f"{t['models']} models ({t['trained']} trained now, {t['cached']} from the cache); "
            f"ensemble {t['seconds']['ensemble']:.0f} s, MetaV training {t['seconds']['metav_fit']:.0f} s "
            f"(best step {t['results']['metav']['best_step']}), baselines {t['seconds']['baselines']:.0f} s.",
            "",
        ]
        lines += [
            "| method | test +/− | ARUC [95 % CI] | ROC-AUC | TPR@1%FPR | λ (val) | TPR at λ | TNR at λ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        rows = [("MetaV", t["results"]["metav"])] + list(t["baselines"].items())
        for name, r in rows:
            lines.append(
                f"| {name} | {r['n_pos']}/{r['n_neg']} | {_ci(r, 'aruc')} | {_ci(r, 'roc_auc')} | {r['tpr_at_1pct_fpr']:.3f} | "
                f"{r['threshold']:.3g} | {_ci(r, 'tpr')} | {_ci(r, 'tnr')} |"
            )
        c = METAV_CLAIM
        lines += [
            f"| MetaV, published (abstract) | {c['suspects']} in all | – | – | – | – | {c['tpr']:.3f} | {c['tnr']:.3f} |",
            "",
        ]
        lines += [
            "Per family at λ (MetaV; + = derived, its rate is TPR; − = independent, its rate is TNR):",
            "",
            "| family | n | right | rate | score range |",
            "|---|---|---|---|---|",
        ]
        for f in t["results"]["metav"]["families"]:
            lines.append(
                f"| {'+' if f['label'] else '−'} {f['family']} | {f['n']} | {f['correct']} | {f['rate']:.2f} | "
                f"{f['min']:.3f}–{f['max']:.3f} |"
            )
        fails = {
            name: [
                f"{'+' if f['label'] else '−'} {f['family']} ({f['correct']}/{f['n']})" for f in r["families"] if f["rate"] < 1
            ]
            for name, r in rows
        }
        lines += [
            "",
            "Families not fully right at λ: " + "; ".join(f"**{k}**: {', '.join(v) or 'none'}" for k, v in fails.items()),
            "",
        ]
        lines += ["Models per split and family:", "", "| split | families (count) |", "|---|---|"]
        for split, fams in t["counts"].items():
            lines.append(f"| {split} | " + ", ".join(f"{k} ({v})" for k, v in sorted(fams.items())) + " |")
        p = t["claim"]["panel"]
        lines += [
            "",
            f"Claim artefact `{Path(t['claim']['path']).name}` (commitment `{t['claim']['commitment'][:16]}…`), reloaded: "
            f"max score change {t['claim']['reload_max_score_diff']:.2g}.  Fresh panel of {p['n']} independent models: "
            f"{p['false_positives']} false positive{'' if p['false_positives'] == 1 else 's'}, FPR ≤ {p['fpr_upper95']:.2f} "
            "(95 %, Clopper–Pearson).",
            "",
        ]
        rw = t.get("rewrites")
        if rw:
            temps = ", ".join(
                f"T = {k}: {v['tpr']:.3f} / {v['tnr']:.3f}"
                for k, v in sorted(rw["temperature"].items(), key=lambda kv: float(kv[0]))
            )
            lines += [
                f"The thief's free rewrites, on the {rw['temperature']['1.0']['n_pos']} + {rw['temperature']['1.0']['n_neg']} test "
                f"models (not their API views): permute + rescale every conv pair ({rw['rewritten']} models) changes MetaV's "
                f"score by at most {rw['max_score_change']:.2g} and flips {rw['verdicts_flipped']} verdicts; a temperature on the "
                f"served probabilities gives TPR / TNR {temps}.",
                "",
            ]
        if t.get("source_quality") is not None:
            q = [v for v in t["quality"].values() if v is not None]
            lines += [
                f"Source test {'accuracy' if kind == 'classification' else 'R²'}: {t['source_quality']:.3f}; "
                f"over all models: median {np.median(q):.3f}, min {min(q):.3f}.",
                "",
            ]
    return "\n".join(lines) + "\n"
