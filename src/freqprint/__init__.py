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

from importlib import metadata as _metadata

from freqprint.checkpoint import load_model, load_state_dict, save_model
from freqprint.errors import FreqprintError
from freqprint.key import FingerprintKey, extract
from freqprint.lineage import LineageReport, OwnerInit, init_seed, lineage
from freqprint.loss import FingerprintLoss, add_pseudo_class, spectral_noise
from freqprint.models import create_model, list_models
from freqprint.module import (
    FingerprintConfig,
    FingerprintModule,
    attach,
    detach,
    find_fingerprint_modules,
)
from freqprint.spectral import complex_cosine, invariant_frequencies, inverse_revised_dft, revised_dft
from freqprint.trace import TraceReport, trace, trace_files
from freqprint.training import TrainConfig, evaluate, train
from freqprint.verify import VerificationReport, verify
from freqprint.workflows import FitResult, embed, fit_plain

try:  # the installed distribution's own version: one place to bump (pyproject.toml)
    __version__ = _metadata.version("freqprint")
except _metadata.PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

__all__ = [
    "FingerprintConfig",
    "FingerprintKey",
    "FingerprintLoss",
    "FingerprintModule",
    "FitResult",
    "FreqprintError",
    "LineageReport",
    "OwnerInit",
    "TraceReport",
    "TrainConfig",
    "VerificationReport",
    "add_pseudo_class",
    "attach",
    "complex_cosine",
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
    "list_models",
    "load_model",
    "load_state_dict",
    "revised_dft",
    "save_model",
    "spectral_noise",
    "trace",
    "trace_files",
    "train",
    "verify",
]
