"""Evaluation: the model-tracing benchmark behind a small ``Method`` protocol, and its metrics."""

from freqprint.evaluation.methods import (
    FrequencyFingerprint,
    Method,
    MethodContext,
    NoFingerprint,
    available_methods,
    create_method,
    create_methods,
)
from freqprint.evaluation.metrics import (
    best_balanced_accuracy,
    best_threshold_accuracy,
    fixed_threshold_accuracy,
    summarize,
    tpr_at_fpr,
)
from freqprint.evaluation.tracing import (
    PROFILES,
    TracingProfile,
    accuracy_cost_markdown,
    run_accuracy_cost,
    run_tracing,
    small_profile,
    tracing_markdown,
    tracing_plots,
)

__all__ = [
    "FrequencyFingerprint",
    "Method",
    "MethodContext",
    "NoFingerprint",
    "PROFILES",
    "TracingProfile",
    "accuracy_cost_markdown",
    "available_methods",
    "best_balanced_accuracy",
    "best_threshold_accuracy",
    "create_method",
    "create_methods",
    "fixed_threshold_accuracy",
    "run_accuracy_cost",
    "run_tracing",
    "small_profile",
    "summarize",
    "tpr_at_fpr",
    "tracing_markdown",
    "tracing_plots",
]
