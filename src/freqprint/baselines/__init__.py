"""The baselines of the paper's Table 2, each a tracing ``Method`` registered by name in
:data:`freqprint.method.METHODS` (``create_methods("rs,mw,ics,cka")``).

| name  | class                          | kind                       | source |
|-------|--------------------------------|----------------------------|--------|
| ``rs``  | :class:`RandomizedSmoothingWatermark` | trigger set, parameter-noise training, certificate | Bansal et al., ICML 2022 |
| ``mw``  | :class:`MarginWatermark`        | trigger set, margin (input PGD) training | Kim et al., ICML 2023 |
| ``ics`` | :class:`InvariantTermsCosine`   | passive: invariant terms, cosine | Zeng et al. (HuRef), NeurIPS 2024 |
| ``cka`` | :class:`CKAFingerprint`         | passive: CKA of representations | Zhang et al. (REEF), ICLR 2025 |
"""

from freqprint.baselines.mw import MarginWatermark
from freqprint.baselines.representation import CKAFingerprint, InvariantTermsCosine, cka, hsic
from freqprint.baselines.rs import RandomizedSmoothingWatermark, certify
from freqprint.baselines.triggers import TriggerSet, draw_probes, make_triggers, trigger_accuracy

__all__ = [
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
