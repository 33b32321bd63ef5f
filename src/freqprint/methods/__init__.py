"""Ownership methods behind one small protocol (:mod:`.base`: ``Method``, the ``METHODS`` registry,
``create_methods("ours,rs(sigma=0.02),cka")``): the frequency fingerprint (:mod:`.ours`), MetaV
(:mod:`.metav`), and the baselines of the paper's Table 2.  The tracing benchmark
(``freqprint_bench.tracing``) scores any of them on the same suspects.

| name  | class                          | kind                       | source |
|-------|--------------------------------|----------------------------|--------|
| ``rs``  | :class:`RandomizedSmoothingWatermark` | trigger set, parameter-noise training, certificate | Bansal et al., ICML 2022 |
| ``mw``  | :class:`MarginWatermark`        | trigger set, margin (input PGD) training | Kim et al., ICML 2023 |
| ``ics`` | :class:`InvariantTermsCosine`   | passive: invariant terms, cosine | Zeng et al. (HuRef), NeurIPS 2024 |
| ``cka`` | :class:`CKAFingerprint`         | passive: CKA of representations | Zhang et al. (REEF), ICLR 2025 |
"""

from freqprint.methods.base import (
    METHODS,
    Method,
    MethodContext,
    MethodDefaults,
    available_methods,
    create_method,
    create_methods,
    register_method,
)
from freqprint.methods.mw import MarginWatermark
from freqprint.methods.ours import FrequencyFingerprint, NoFingerprint, TraceVerdict
from freqprint.methods.representation import CKAFingerprint, InvariantTermsCosine, cka, hsic
from freqprint.methods.rs import RandomizedSmoothingWatermark, certify
from freqprint.methods.triggers import TriggerSet, draw_probes, make_triggers, trigger_accuracy

__all__ = [
    "METHODS",
    "FrequencyFingerprint",
    "Method",
    "MethodContext",
    "MethodDefaults",
    "NoFingerprint",
    "TraceVerdict",
    "available_methods",
    "create_method",
    "create_methods",
    "register_method",
    "CKAFingerprint",
    "InvariantTermsCosine",
    "MarginWatermark",
    "RandomizedSmoothingWatermark",
    "TriggerSet",
    "certify",
    "cka",
    "draw_probes",
    "hsic",
    "make_triggers",
    "trigger_accuracy",
]
