"""freqprint: ownership fingerprints in the frequency spectrum of a conv filter, which survive
fine-tuning (Tang et al., NeurIPS 2025), with a calibrated verifier.

    import freqprint, torch
    torch.manual_seed(freqprint.init_seed("my secret"))   # θ₀ from the secret: the lineage channel's anchor
    model = freqprint.create_model("smallcnn", num_classes=10, in_channels=1)
    freqprint.attach(model, freqprint.FingerprintConfig(target="conv2", secret="my secret"), x[:1])
    ...train with freqprint.FingerprintLoss...
    key = freqprint.extract(model); key.save("owner.key")
    report = freqprint.verify("owner.key", "suspect.safetensors")
    verdict = freqprint.trace("suspect.safetensors", key="owner.key",
                              owner_init=freqprint.OwnerInit.from_file("owner.safetensors", secret="my secret"))
"""

# The public API, imported on first use (PEP 562): `import freqprint` and `freqprint --help` do not
# import torch.  Subpackages: fingerprint (the method), stats (pure statistics), verification (the
# verdicts), io (files), scan (the key store and bulk scans), methods, attacks, models, data, metav, hf.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "load_model": "freqprint.io.checkpoint",
    "load_state_dict": "freqprint.io.checkpoint",
    "save_model": "freqprint.io.checkpoint",
    "FreqprintError": "freqprint.errors",
    "InvalidArgument": "freqprint.errors",
    "UnknownName": "freqprint.errors",
    "UnreadableFile": "freqprint.errors",
    "FingerprintKey": "freqprint.verification.key",
    "extract": "freqprint.verification.key",
    "LineageReport": "freqprint.verification.backbone",
    "OwnerInit": "freqprint.verification.backbone",
    "lineage": "freqprint.verification.backbone",
    "ParentReport": "freqprint.verification.parent",
    "parent_lineage": "freqprint.verification.parent",
    "LineageTree": "freqprint.verification.tree",
    "lineage_tree": "freqprint.verification.tree",
    "ClaimBundle": "freqprint.verification.claim",
    "create_claim": "freqprint.verification.claim",
    "check_claim": "freqprint.verification.claim",
    "FingerprintConfig": "freqprint.fingerprint",
    "FingerprintModule": "freqprint.fingerprint",
    "attach": "freqprint.fingerprint",
    "detach": "freqprint.fingerprint",
    "find_fingerprint_modules": "freqprint.fingerprint",
    "FingerprintLoss": "freqprint.fingerprint",
    "add_pseudo_class": "freqprint.fingerprint",
    "spectral_noise": "freqprint.fingerprint",
    "init_seed": "freqprint.fingerprint",
    "create_model": "freqprint.models",
    "list_models": "freqprint.models",
    "create_attack": "freqprint.attacks",
    "KeyStore": "freqprint.scan",
    "complex_cosine": "freqprint.stats.spectral",
    "invariant_frequencies": "freqprint.stats.spectral",
    "inverse_revised_dft": "freqprint.stats.spectral",
    "revised_dft": "freqprint.stats.spectral",
    "TraceReport": "freqprint.verification.provenance",
    "trace": "freqprint.verification.provenance",
    "trace_files": "freqprint.verification.provenance",
    "TrainConfig": "freqprint.training",
    "evaluate": "freqprint.training",
    "train": "freqprint.training",
    "VerificationReport": "freqprint.verification.verifier",
    "verify": "freqprint.verification.verifier",
    "FitResult": "freqprint.workflows",
    "embed": "freqprint.workflows",
    "fit_plain": "freqprint.workflows",
    "Recipe": "freqprint.io.recipe",
}

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from freqprint.attacks import create_attack
    from freqprint.errors import FreqprintError, InvalidArgument, UnknownName, UnreadableFile
    from freqprint.fingerprint import (
        FingerprintConfig,
        FingerprintLoss,
        FingerprintModule,
        add_pseudo_class,
        attach,
        detach,
        find_fingerprint_modules,
        init_seed,
        spectral_noise,
    )
    from freqprint.io.checkpoint import load_model, load_state_dict, save_model
    from freqprint.io.recipe import Recipe
    from freqprint.models import create_model, list_models
    from freqprint.scan import KeyStore
    from freqprint.stats.spectral import complex_cosine, invariant_frequencies, inverse_revised_dft, revised_dft
    from freqprint.training import TrainConfig, evaluate, train
    from freqprint.verification.backbone import LineageReport, OwnerInit, lineage
    from freqprint.verification.claim import ClaimBundle, check_claim, create_claim
    from freqprint.verification.key import FingerprintKey, extract
    from freqprint.verification.parent import ParentReport, parent_lineage
    from freqprint.verification.provenance import TraceReport, trace, trace_files
    from freqprint.verification.tree import LineageTree, lineage_tree
    from freqprint.verification.verifier import VerificationReport, verify
    from freqprint.workflows import FitResult, embed, fit_plain


__all__ = [
    "ClaimBundle",
    "FingerprintConfig",
    "FingerprintKey",
    "FingerprintLoss",
    "FingerprintModule",
    "FitResult",
    "FreqprintError",
    "InvalidArgument",
    "KeyStore",
    "LineageReport",
    "LineageTree",
    "OwnerInit",
    "ParentReport",
    "Recipe",
    "TraceReport",
    "TrainConfig",
    "UnknownName",
    "UnreadableFile",
    "VerificationReport",
    "add_pseudo_class",
    "attach",
    "check_claim",
    "complex_cosine",
    "create_attack",
    "create_claim",
    "create_model",
    "detach",
    "embed",
    "evaluate",
    "extract",
    "find_fingerprint_modules",
    "fit_plain",
    "init_seed",
    "invariant_frequencies",
    "inverse_revised_dft",
    "lineage",
    "lineage_tree",
    "list_models",
    "load_model",
    "parent_lineage",
    "load_state_dict",
    "revised_dft",
    "save_model",
    "spectral_noise",
    "trace",
    "trace_files",
    "train",
    "verify",
]


def _version() -> str:
    """The installed distribution's own version: one place to bump (pyproject.toml)."""
    from importlib import metadata

    try:
        return metadata.version("freqprint")
    except metadata.PackageNotFoundError:  # a source tree on sys.path without an install
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read on first use: importlib.metadata costs 50 ms
        value = globals()["__version__"] = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'freqprint' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cached: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
