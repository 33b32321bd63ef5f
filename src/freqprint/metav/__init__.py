"""MetaV (Pan, Yan, Zhang, Yang — KDD 2022): task-agnostic, black-box fingerprinting.

The owner learns N fingerprint inputs X and a meta-verifier V that reads a suspect's
concatenated outputs on X, from an ensemble of models derived from the source (positives) and
trained independently (negatives).  A suspect needs only the source's input and output shapes,
and only its outputs are read, so an API can be checked; a model rebuilt by distillation keeps
the source's behaviour, which the frequency fingerprint (weights) cannot follow.

* :mod:`~freqprint.metav.tasks` — classification (Fashion-MNIST), regression (scikit-learn's
  diabetes), generation (a VAE decoder): data, architecture families, training, normalisation;
* :mod:`~freqprint.metav.ensemble` — suspect ensembles from a JSON manifest, cached by recipe;
* :mod:`~freqprint.metav.core` — the adaptive fingerprint, the meta-verifier, joint training,
  threshold calibration, the floor under a verdict (:mod:`freqprint.stats.floor`);
* :mod:`~freqprint.stats.aruc` — ARUC, ROC-AUC, TPR@1%FPR, TPR/TNR at λ, bootstrap, per family;
* :mod:`~freqprint.metav.comparators` — IPGuard, "same mistakes", the frequency fingerprint;
* :mod:`~freqprint.metav.artefact` — the committed claim artefact and the judge's panel check;
* :mod:`~freqprint.metav.trainer` — one call from a manifest to a committed claim (``metav train``);
* :mod:`~freqprint.metav.suspects` — what a suspect can be (a model file; code only when allowed);
* :mod:`~freqprint.methods.metav` — MetaV as a tracing-benchmark ``Method``;

Its benchmark (``freqprint metav bench``) lives outside the library, in ``freqprint_bench.metav``.
"""

from freqprint.metav.artefact import PanelReport, load_claim, panel_check, save_claim
from freqprint.metav.core import (
    AdaptiveFingerprint,
    Floor,
    MetaV,
    MetaVConfig,
    MetaVerifier,
    Verdict,
    calibrate_floor,
    calibrate_threshold,
    fit_metav,
)
from freqprint.metav.ensemble import Ensemble, Entry, Manifest, build_ensemble, default_manifest
from freqprint.metav.tasks import ClassificationTask, GenerationTask, RegressionTask, Task, create_task
from freqprint.metav.trainer import ClaimTraining, metav_configs, train_claim
from freqprint.stats.aruc import aruc

__all__ = [
    "AdaptiveFingerprint",
    "ClaimTraining",
    "ClassificationTask",
    "Ensemble",
    "Entry",
    "Floor",
    "GenerationTask",
    "Manifest",
    "MetaV",
    "MetaVConfig",
    "MetaVerifier",
    "PanelReport",
    "RegressionTask",
    "Task",
    "Verdict",
    "aruc",
    "build_ensemble",
    "calibrate_floor",
    "calibrate_threshold",
    "create_task",
    "default_manifest",
    "fit_metav",
    "load_claim",
    "metav_configs",
    "panel_check",
    "save_claim",
    "train_claim",
]
