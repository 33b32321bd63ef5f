"""The fingerprint method, PEFT-style: a config, the layer, its injection into a host, the loss
that trains it in, and the derivations from the owner's secret.

    from freqprint.fingerprint import FingerprintConfig, attach, FingerprintLoss
    attach(model, FingerprintConfig(target="conv2", secret="my secret"), x[:1])

* :mod:`.config` — :class:`FingerprintConfig` (validated when built);
* :mod:`.layer` — :class:`FingerprintModule` (the low-band conv, Theorem 3.1) and the host wrappers;
* :mod:`.inject` — :func:`attach`, :func:`detach`, :func:`find_fingerprint_modules`;
* :mod:`.loss` — ``L = L_CE + λ·L_attack`` (Eq. 15) and the pseudo class;
* :mod:`.seeding` — every value derived from the secret.
"""

from freqprint.fingerprint.config import LAYOUTS, MERGES, FingerprintConfig
from freqprint.fingerprint.inject import attach, detach, find_fingerprint_modules, get_fingerprint_module, is_causal_lm
from freqprint.fingerprint.layer import (
    Fingerprinted,
    FingerprintedConv,
    FingerprintedFeatures,
    FingerprintedTokens,
    FingerprintModule,
    feature_grid,
    token_grid,
)
from freqprint.fingerprint.loss import CausalLMFingerprintLoss, FingerprintLoss, add_pseudo_class, spectral_noise
from freqprint.fingerprint.seeding import init_seed, initial_weight, secret_seed

__all__ = [
    "LAYOUTS",
    "CausalLMFingerprintLoss",
    "MERGES",
    "FingerprintConfig",
    "FingerprintLoss",
    "FingerprintModule",
    "Fingerprinted",
    "FingerprintedConv",
    "FingerprintedFeatures",
    "FingerprintedTokens",
    "add_pseudo_class",
    "attach",
    "detach",
    "feature_grid",
    "find_fingerprint_modules",
    "get_fingerprint_module",
    "init_seed",
    "initial_weight",
    "is_causal_lm",
    "secret_seed",
    "spectral_noise",
    "token_grid",
]
