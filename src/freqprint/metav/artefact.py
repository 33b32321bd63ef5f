"""The MetaV claim artefact: one safetensors file, and the judge's re-check on a fresh panel.

**What it holds.**  Tensors: the fingerprint inputs ``inputs``, the verifier's weights
``verifier.*``, the task's output statistics ``stats.mean`` / ``stats.std`` (regression,
generation), and the floor (:class:`~freqprint.metav.core.Floor`): the source's answers on X
``floor.answers``, the probe inputs ``floor.probes`` and the source's closeness features on them
``floor.probe_answers``, V's scores of the reference panel ``floor.scores``, their closeness
``floor.closeness`` and their agreement p-values ``floor.agreement_p``.  JSON metadata
(``freqprint.metav``): the format, the task (kind, data sizes, input and output shapes), the
verifier's architecture, the threshold λ, the floor's α, permutations, seed and reference
population, the training configuration and seeds, the environment it was trained in (torch
version, thread count), the ensemble manifest itself, its SHA-256 and the recipe hash of every
model in it, and a ``commitment``.  Format 4 adds the probe floor (``floor.probe_floor``,
its quantile, how many positives it came from and the task's statistic); a format-3 claim still
loads and gives its verdicts without one.  Format 5 adds the latent frame (``frame``); format 6
the replicate route (:mod:`freqprint.stats.floor`): ``floor.candidates``, the closeness features
on the probes of the source and its K replicates (float16, ``[K + 1, M, k]``), each read in
``floor.replicate_frame``, the latent frame of one more replicate (float32, a generator's claim),
and ``floor.margins``, the reference answers' replicate margins — a claim without them gives its
verdict by V's route alone.  Formats 1 (before the floor) and 2 (before the probes) are refused:
retrain.

**The commitment** is SHA-256 over the canonical JSON of the metadata (without the commitment)
followed by every tensor (name, dtype, shape, bytes, in name order).  Publishing it *before* a
suspect model exists is what dates a claim (a dated release note, a transparency log); the
artefact's ``created`` field proves nothing.  :func:`load_claim` recomputes it, so any change to
X, V, λ, the preprocessing or the manifest after publication is detected.

**Why a panel check.**  MetaV's verdict is a learned classifier chosen by the accuser, who
alone picked both training ensembles: a dishonest accuser can train V to flag a whole family of
innocent models (False Claims, USENIX Sec'24).  The commitment does not stop
that.  :func:`panel_check` is the judge's answer: score the claim on a fresh panel of
*independent* models the accuser never saw (different seeds, architectures, data) and report the
false-positive rate with an exact one-sided Clopper–Pearson upper bound.  With 0 false positives
among n, the 95 % bound is 1 − 0.05^(1/n) (≈ 3/n): a panel of 8 only bounds the FPR by 31 %.
This is a rate, not a p-value for one suspect; docs/security.md says what it does and does not prove.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from freqprint.errors import FreqprintError
from freqprint.io.artefact import Fields, read_json_metadata
from freqprint.metav.core import Floor, MetaV, MetaVConfig, MetaVerifier
from freqprint.metav.tasks import create_task

__all__ = ["FORMAT", "PanelReport", "load_claim", "panel_check", "save_claim"]

FORMAT = "freqprint-metav/6"
# 5: no replicates; 4: no latent frame either; 3: no probe floor either
READABLE = (FORMAT, "freqprint-metav/5", "freqprint-metav/4", "freqprint-metav/3")
MAX_REPLICATES = 10_000
MAX_PROBES = 100_000
MAX_PERMUTATIONS = 1_000_000  # bounds a verdict's time (about 1 s per 10⁵ permutations of 32 inputs)
META_KEY = "freqprint.metav"
MAX_CLAIM_BYTES = 512 * 2**20


def _commitment(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\n{name}|{t.dtype}|{list(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _tensors(mv: MetaV) -> dict[str, torch.Tensor]:
    out = {"inputs": mv.inputs.float()}
    out.update({f"verifier.{k}": v.float() for k, v in mv.verifier.state_dict().items()})
    if mv.floor is not None:
        out["floor.answers"], out["floor.scores"] = mv.floor.answers.float(), mv.floor.scores.double()
        out["floor.agreement_p"] = mv.floor.agreement_p.double()
        out["floor.probes"], out["floor.probe_answers"] = mv.floor.probes.float(), mv.floor.probe_answers.float()
        out["floor.closeness"] = mv.floor.closeness.double()
        if mv.floor.candidates is not None and mv.floor.margins is not None:
            out["floor.candidates"], out["floor.margins"] = mv.floor.candidates.half(), mv.floor.margins.double()
            if mv.floor.replicate_frame is not None:
                out["floor.replicate_frame"] = mv.floor.replicate_frame.float()
    if mv.task._stats is not None:
        out["stats.mean"], out["stats.std"] = mv.task._stats
    if mv.frame is not None:
        out["frame"] = mv.frame.double()
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def save_claim(
    mv: MetaV,
    path: str | Path,
    manifest: dict[str, Any] | None = None,
    model_hashes: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write the artefact; returns its commitment.  ``mv`` needs its floor (:func:`calibrate_floor`)."""
    if mv.floor is None:
        raise FreqprintError("a claim needs its floor (calibrate_floor on a reference panel) before it is saved")
    tensors = _tensors(mv)
    f = mv.floor
    meta = {
        "format": FORMAT,
        "task": mv.task.spec(),
        "verifier": {"in_features": mv.verifier.in_features, "hidden": mv.verifier.hidden, "dropout": mv.verifier.dropout},
        "threshold": mv.threshold,
        "floor": {
            "alpha": f.alpha,
            "permutations": f.permutations,
            "seed": f.seed,
            "population": f.population,
            "probe_floor": f.probe_floor,
            "floor_quantile": f.floor_quantile,
            "probe_positives": f.probe_positives,
            "probe_statistic": mv.task.probe_statistic_name if f.probe_floor is not None else None,
            "replicates": f.replicates,
        },
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads()},
        # what the claim does: a MetaV fitted without fit_claim has no frame, whatever its config asked
        "config": {**mv.config.to_dict(), "canonical": mv.frame is not None},
        "manifest": manifest,
        "manifest_sha256": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest() if manifest else None,
        "model_hashes": model_hashes or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": extra or {},
    }
    commitment = _commitment(meta, tensors)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        safetensors_save(tensors, metadata={META_KEY: json.dumps({**meta, "commitment": commitment}, sort_keys=True)})
    )
    return commitment


def _need(meta: dict[str, Any], name: str, kind: type | tuple[type, ...], source: str) -> Any:
    return Fields(meta, source, "claim").get(name, kind)


def load_claim(path: str | Path) -> tuple[MetaV, dict[str, Any]]:
    """Read an artefact, check every field and the commitment; ``(MetaV, metadata)``."""
    from freqprint.io.checkpoint import load_state_dict

    path = Path(path)
    source = str(path)
    meta = read_json_metadata(path, META_KEY, "a MetaV claim")
    if meta.get("format") in ("freqprint-metav/1", "freqprint-metav/2"):
        lacks = "no floor (source answers, reference panel)" if meta["format"].endswith("/1") else "no probe inputs"
        raise FreqprintError(
            f"{source}: a {meta['format']} claim has {lacks} and cannot give this version's verdict; retrain it with this version's 'freqprint metav train'"
        )
    if meta.get("format") not in READABLE:
        raise FreqprintError(f"{source}: unsupported MetaV claim format {meta.get('format')!r}")
    sd = load_state_dict(path, max_bytes=MAX_CLAIM_BYTES)
    commitment = _need(meta, "commitment", str, source)
    body = {k: v for k, v in meta.items() if k != "commitment"}
    if _commitment(body, sd) != commitment:
        raise FreqprintError(f"{source}: the commitment does not match the contents: the claim was altered after it was made")
    task_meta = _need(meta, "task", dict, source)
    kind = _need(task_meta, "kind", str, source)
    kwargs: dict[str, Any] = {k: task_meta[k] for k in ("owner_size", "thief_size", "test_size") if type(task_meta.get(k)) is int}
    if kind == "classification":  # any image shape and class count (the tracing benchmark's MetaV)
        shape, classes = task_meta.get("input_shape"), task_meta.get("output_dim")
        if not (
            isinstance(shape, list)
            and len(shape) == 3
            and all(type(v) is int and 1 <= v <= 4096 for v in shape)
            and type(classes) is int
            and 2 <= classes <= 100_000
        ):
            raise FreqprintError(f"{source}: claim field 'task' has a malformed input shape or class count")
        kwargs.update(image_shape=tuple(shape), num_classes=classes)
    task = create_task(kind, **kwargs)
    if list(task.input_shape) != task_meta.get("input_shape") or task.output_dim != task_meta.get("output_dim"):
        raise FreqprintError(f"{source}: the task's shapes do not match this version's {kind!r} task")
    vmeta = _need(meta, "verifier", dict, source)
    hidden = _need(vmeta, "hidden", list, source)
    if not all(type(h) is int and 1 <= h <= 65536 for h in hidden) or len(hidden) > 8:
        raise FreqprintError(f"{source}: verifier field 'hidden' must be at most 8 widths in 1..65536")
    threshold = _need(meta, "threshold", (int, float), source)
    if not 0.0 <= threshold <= 1.0:
        raise FreqprintError(f"{source}: threshold must be in [0, 1], got {threshold!r}")
    x = sd.get("inputs")
    if x is None or x.ndim < 2 or list(x.shape[1:]) != list(task.input_shape) or not 1 <= len(x) <= 100_000:
        raise FreqprintError(f"{source}: 'inputs' must be [N, {', '.join(map(str, task.input_shape))}]")
    if not bool(torch.isfinite(x).all()):
        raise FreqprintError(f"{source}: 'inputs' contain NaN or Inf")
    # the declared architecture's shapes are checked against the stored tensors *before* anything is
    # allocated from them, so a hostile header cannot make us build a huge layer
    state = {k[len("verifier.") :]: v for k, v in sd.items() if k.startswith("verifier.")}
    sizes = [len(x) * task.feature_dim, *hidden, 1]
    want: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        want[f"net.{3 * i}.weight"], want[f"net.{3 * i}.bias"] = (b, a), (b,)
    if {k: tuple(v.shape) for k, v in state.items()} != want:
        raise FreqprintError(f"{source}: the verifier's weights do not match its declared architecture")
    if not all(bool(torch.isfinite(v).all()) for v in state.values()):
        raise FreqprintError(f"{source}: the verifier's weights contain NaN or Inf")
    dropout = _need(vmeta, "dropout", (int, float), source)
    if not 0.0 <= dropout < 1.0:
        raise FreqprintError(f"{source}: verifier field 'dropout' must be in [0, 1)")
    verifier = MetaVerifier(sizes[0], hidden, float(dropout))
    verifier.load_state_dict(state)
    verifier.eval()
    if kind != "classification":
        if (
            "stats.mean" not in sd
            or "stats.std" not in sd
            or sd["stats.mean"].shape != sd["stats.std"].shape
            or sd["stats.mean"].numel() != task.feature_dim
            or not bool(torch.isfinite(sd["stats.std"]).all())
        ):
            raise FreqprintError(f"{source}: a {kind} claim needs its output statistics")
        task.set_stats(sd["stats.mean"], sd["stats.std"])
    try:
        # format 3 recorded no probe floor, formats 3 and 4 no latent frame
        cfg = MetaVConfig(**{"floor_quantile": None, "canonical": False, **meta.get("config", {})})
    except (TypeError, ValueError, FreqprintError):
        raise FreqprintError(f"{source}: claim field 'config' is malformed") from None
    frame = sd.get("frame")
    if cfg.canonical and task.input_symmetry:
        if frame is None or list(frame.shape) != [task.output_dim, *task.input_shape] or not bool(torch.isfinite(frame).all()):
            raise FreqprintError(
                f"{source}: a {kind} claim read in the source's latent frame needs 'frame' [{task.output_dim}, {', '.join(map(str, task.input_shape))}]"
            )
    elif frame is not None:
        raise FreqprintError(f"{source}: 'frame' is stored but the claim does not read suspects in it")
    mv = MetaV(task, x, verifier, float(threshold), cfg, floor=_floor(meta, sd, len(x), task, source), frame=frame)
    return mv, meta


def _floor(meta: dict[str, Any], sd: dict[str, torch.Tensor], n: int, task: Any, source: str) -> Floor:
    """The claim's floor, every field checked (a verdict's p-value rests on it)."""
    dim = task.feature_dim
    fm = _need(meta, "floor", dict, source)
    alpha = _need(fm, "alpha", (int, float), source)
    perms, seed = _need(fm, "permutations", int, source), _need(fm, "seed", int, source)
    population = _need(fm, "population", dict, source)
    answers, scores, p_agree = sd.get("floor.answers"), sd.get("floor.scores"), sd.get("floor.agreement_p")
    if answers is None or tuple(answers.shape) != (n, dim) or not bool(torch.isfinite(answers).all()):
        raise FreqprintError(f"{source}: 'floor.answers' must be [{n}, {dim}] finite values")
    if scores is None or scores.ndim != 1 or not 1 <= len(scores) <= 1_000_000:
        raise FreqprintError(f"{source}: 'floor.scores' must hold 1..1000000 reference scores")
    if not bool(((scores >= 0) & (scores <= 1)).all()):
        raise FreqprintError(f"{source}: 'floor.scores' must be scores in [0, 1]")
    if p_agree is None or p_agree.shape != scores.shape or not bool(((p_agree > 0) & (p_agree <= 1)).all()):
        raise FreqprintError(f"{source}: 'floor.agreement_p' must hold one p-value in (0, 1] per reference score")
    probes, probe_answers, close = sd.get("floor.probes"), sd.get("floor.probe_answers"), sd.get("floor.closeness")
    if (
        probes is None
        or probes.ndim < 2
        or list(probes.shape[1:]) != list(task.input_shape)
        or not 1 <= len(probes) <= MAX_PROBES
        or not bool(torch.isfinite(probes).all())
    ):
        raise FreqprintError(f"{source}: 'floor.probes' must be [M, {', '.join(map(str, task.input_shape))}] finite inputs")
    if (
        probe_answers is None
        or probe_answers.ndim != 2
        or len(probe_answers) != len(probes)
        or probe_answers.shape[1] != task.closeness_features(torch.zeros(1, task.output_dim)).shape[1]
        or not bool(torch.isfinite(probe_answers).all())
    ):
        raise FreqprintError(f"{source}: 'floor.probe_answers' must be the source's finite answers on the probes")
    if close is None or close.shape != scores.shape or not bool(((close >= -1 - 1e-9) & (close <= 1 + 1e-9)).all()):
        raise FreqprintError(f"{source}: 'floor.closeness' must hold one correlation in [-1, 1] per reference score")
    reps, margins = sd.get("floor.candidates"), sd.get("floor.margins")
    k = fm.get("replicates", 0) if meta.get("format") == FORMAT else 0
    if type(k) is not int or not 0 <= k <= MAX_REPLICATES:
        raise FreqprintError(f"{source}: the floor's replicates must count 0..{MAX_REPLICATES} models")
    if k and (
        reps is None
        or reps.dtype != torch.float16
        or tuple(reps.shape) != (k + 1, *probe_answers.shape)
        or not bool(torch.isfinite(reps).all())
        or margins is None
        or margins.shape != scores.shape
        or not bool(torch.isfinite(margins).all())
    ):
        raise FreqprintError(
            f"{source}: 'floor.candidates' must be [{k + 1}, {', '.join(map(str, probe_answers.shape))}] finite float16 answers "
            "and 'floor.margins' one finite margin per reference score"
        )
    if not k and (reps is not None or margins is not None or "floor.replicate_frame" in sd):
        raise FreqprintError(f"{source}: the claim holds replicate answers its metadata does not count")
    frames, own = sd.get("floor.replicate_frame"), sd.get("frame")
    if k and (
        (own is None) != (frames is None)
        or (
            frames is not None
            and own is not None
            and (frames.dtype != torch.float32 or frames.shape != own.shape or not bool(torch.isfinite(frames).all()))
        )
    ):
        raise FreqprintError(f"{source}: 'floor.replicate_frame' must be a finite float32 latent frame, as the claim has one")
    if not 0.0 < alpha < 1.0 or not 1 <= perms <= MAX_PERMUTATIONS:
        raise FreqprintError(f"{source}: the floor's alpha must be in (0, 1) and its permutations in 1..{MAX_PERMUTATIONS}")
    if not all(isinstance(k, str) and type(v) is int and v > 0 for k, v in population.items()) or sum(population.values()) != len(
        scores
    ):
        raise FreqprintError(f"{source}: the floor's population must count its {len(scores)} reference scores by family")
    floor_c, q_c, n_c = None, None, 0
    if meta.get("format") != "freqprint-metav/3":  # format 3 has no probe floor
        floor_c, q_c, n_c = fm.get("probe_floor"), fm.get("floor_quantile"), fm.get("probe_positives")
        number = (int, float)
        if not (
            (floor_c is None and q_c is None and n_c == 0)
            or (
                type(floor_c) in number
                and type(q_c) in number
                and type(n_c) is int
                and -1.0 <= floor_c <= 1.0
                and 0.0 <= q_c < 1.0
                and n_c >= 1
            )
        ):
            raise FreqprintError(
                f"{source}: the floor's probe_floor must be a statistic in [-1, 1] with its quantile in [0, 1) and "
                "its count of positives (or null, 0 positives)"
            )
    return Floor(
        answers.float(),
        probes.float(),
        probe_answers.float(),
        scores.double(),
        close.double(),
        p_agree.double(),
        population,
        float(alpha),
        perms,
        seed,
        None if floor_c is None else float(floor_c),
        None if q_c is None else float(q_c),
        int(n_c or 0),
        reps if k else None,
        margins.double() if k and margins is not None else None,
        frames if k else None,
    )


@dataclass
class PanelReport:
    n: int
    false_positives: int
    fpr: float
    fpr_upper95: float
    scores: list[float]
    p_values: list[float]
    names: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def clopper_pearson_upper(k: int, n: int, level: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a binomial rate (k successes in n)."""
    from scipy.stats import beta

    if n == 0:
        return 1.0
    return 1.0 if k >= n else float(beta.ppf(level, k + 1, n - k))


def panel_check(mv: MetaV, panel: Sequence[Any], names: Sequence[str] | None = None, alpha: float | None = None) -> PanelReport:
    """Score a claim on independent models (models or callables) the claimant never trained on:
    how many get a "derived" verdict (at ``alpha``, the claim's unless given)."""
    if not panel:
        raise FreqprintError("the panel is empty")
    verdicts = [mv.verdict(q, alpha) for q in panel]
    fp = sum(v.derived for v in verdicts)
    return PanelReport(
        len(verdicts),
        fp,
        fp / len(verdicts),
        clopper_pearson_upper(fp, len(verdicts)),
        [v.score for v in verdicts],
        [v.p_value for v in verdicts],
        list(names or [str(i) for i in range(len(verdicts))]),
    )
