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
  threshold calibration;
* :mod:`~freqprint.metav.metrics` — ARUC, ROC-AUC, TPR@1%FPR, TPR/TNR at λ, bootstrap, per family;
* :mod:`~freqprint.metav.baselines` — IPGuard, "same mistakes", the frequency fingerprint;
* :mod:`~freqprint.metav.claim` — the committed claim artefact and the judge's panel check;
* :mod:`~freqprint.metav.method` — MetaV as a tracing-benchmark ``Method``;
* :mod:`~freqprint.metav.bench` — ``freqprint metav bench``.
"""

from freqprint.metav.claim import PanelReport, load_claim, panel_check, save_claim
from freqprint.metav.core import AdaptiveFingerprint, MetaV, MetaVConfig, MetaVerifier, calibrate_threshold, fit_metav
from freqprint.metav.ensemble import Ensemble, Entry, Manifest, build_ensemble, default_manifest
from freqprint.metav.metrics import aruc
from freqprint.metav.tasks import ClassificationTask, GenerationTask, RegressionTask, Task, create_task

__all__ = [
    "AdaptiveFingerprint",
    "ClassificationTask",
    "Ensemble",
    "Entry",
    "GenerationTask",
    "Manifest",
    "MetaV",
    "MetaVConfig",
    "MetaVerifier",
    "PanelReport",
    "RegressionTask",
    "Task",
    "aruc",
    "build_ensemble",
    "calibrate_threshold",
    "create_task",
    "default_manifest",
    "fit_metav",
    "load_claim",
    "panel_check",
    "save_claim",
]
