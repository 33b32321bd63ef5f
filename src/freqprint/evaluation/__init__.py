"""Evaluation: the model-tracing benchmark behind a small ``Method`` protocol, and its metrics."""

from freqprint.evaluation.methods import METHODS, FrequencyFingerprint, Method, create_method
from freqprint.evaluation.metrics import best_threshold_accuracy, fixed_threshold_accuracy, summarize, tpr_at_fpr
from freqprint.evaluation.tracing import PROFILES, TracingProfile, run_tracing, small_profile, tracing_markdown, tracing_plots

__all__ = [
    "FrequencyFingerprint", "METHODS", "Method", "PROFILES", "TracingProfile", "best_threshold_accuracy", "create_method",
    "fixed_threshold_accuracy", "run_tracing", "small_profile", "summarize", "tpr_at_fpr", "tracing_markdown", "tracing_plots",
]
