"""PEFT-style injection: wrap a named host layer so the fingerprint module runs beside it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError
from freqprint.fingerprint.config import FingerprintConfig
from freqprint.fingerprint.layer import (
    Fingerprinted,
    FingerprintedConv,
    FingerprintedFeatures,
    FingerprintedTokens,
    FingerprintModule,
    feature_grid,
    token_grid,
)
from freqprint.stats.null import best_log10_p

__all__ = ["CAUSAL_TYPES", "attach", "detach", "find_fingerprint_modules", "get_fingerprint_module", "is_causal_lm"]


def _get_submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        what, names = "Conv2d layers", convs
        if not convs:  # a Transformer: name the blocks of its first layer list
            lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
            what, names = "Transformer layers", [f"{lists[0][0]}.{i}" for i in range(len(lists[0][1]))] if lists else []
        raise FreqprintError(
            f"no module named {name!r} in {type(model).__name__}; {what} are: {', '.join(names[:12]) or 'none'}"
            + (" ..." if len(names) > 12 else "")
        ) from None


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _call(model: nn.Module, example_input: Any) -> None:
    """Run ``model`` once on ``example_input``: a tensor, or a mapping of keyword arguments (the
    way a Hugging Face model takes ``input_ids`` and ``attention_mask``)."""
    if isinstance(example_input, Mapping):
        model(**example_input)
    else:
        model(example_input)


def _probe(model: nn.Module, host: nn.Module, example_input: Any) -> tuple[Any, Any]:
    """The host's first input and its output on one forward pass of ``example_input``."""
    seen: dict[str, Any] = {}

    def hook(_mod, args, kwargs, out):
        first = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values()), None))
        seen["in"], seen["out"] = first, out

    handle = host.register_forward_hook(hook, with_kwargs=True)
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            _call(model, example_input)
        model.train(was_training)
    finally:
        handle.remove()
    if "in" not in seen:
        raise FreqprintError("the target was not called by the model's forward pass")
    return seen["in"], seen["out"]


def _check_channels(config: FingerprintConfig, c: int, min_detectable_p: float) -> None:
    if best_log10_p(c, config.filters) > math.log10(min_detectable_p):
        raise FreqprintError(
            f"{config.target!r} has {c} input channel(s): with D = {config.filters} filters the verifier could never "
            f"reach p < {min_detectable_p:g} (the cosine of {c}-channel spectra is too noisy); attach to a layer with more input channels"
        )


def _module_for(config: FingerprintConfig, c: int, c_out: int, grid: tuple[int, int], like: torch.Tensor) -> FingerprintModule:
    return FingerprintModule(
        in_channels=c,
        out_channels=c_out,
        grid=grid,
        filters=config.filters,
        kernel_size=config.kernel_size,
        radius=config.radius,
        secret=config.secret,
        context=config.target,
        implementation=config.implementation,
        merge=config.merge,
    ).to(device=like.device, dtype=like.dtype)


# model types of causal decoders (transformers' config.model_type); a model whose class name ends in
# "ForCausalLM" or whose config says is_decoder counts as one too
CAUSAL_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi",
        "phi3",
        "gpt2",
        "gpt_neox",
        "gptj",
        "opt",
        "falcon",
        "olmo",
        "olmo2",
        "granite",
        "smollm3",
        "starcoder2",
        "stablelm",
        "cohere",
    }
)


def is_causal_lm(model: nn.Module) -> bool:
    """Whether ``model`` is a causal (decoder-only) language model: its output at position t may
    depend on tokens ≤ t only, so the fingerprint must not mix positions."""
    cfg = getattr(model, "config", None)
    return (
        type(model).__name__.endswith("ForCausalLM")
        or bool(getattr(cfg, "is_decoder", False))
        or getattr(cfg, "model_type", "") in CAUSAL_TYPES
    )


def attach(model: nn.Module, config: FingerprintConfig, example_input: Any, min_detectable_p: float = 1e-6) -> FingerprintModule:
    """Attach a fingerprint module beside ``config.target``, in place; returns the module.

    ``example_input`` (one batch, any batch size: a tensor, or a mapping of keyword arguments
    such as a tokenizer's output) is run once to learn the host's input and output shapes.

    * an ``nn.Conv2d`` host is wrapped in :class:`FingerprintedConv`: the module reads the conv's
      input grid ``M×N`` and its output is added to the conv's;
    * any other host whose input is a token sequence ``[B, L, H]`` and whose output (or the first
      element of its output tuple) has the same shape — a Transformer layer — is wrapped in
      :class:`FingerprintedTokens`, which lays the tokens out on a grid (see there) — unless the
      model is a causal decoder (:func:`is_causal_lm`, or ``config.layout="features"``): then
      :class:`FingerprintedFeatures` reads each token's features alone, so no output depends on a
      later token.

    The host's weights move from ``<target>.*`` to ``<target>.base.*`` (as PEFT does).  A host with
    too few input channels for the verifier ever to reach ``min_detectable_p`` is refused.
    """
    host = _get_submodule(model, config.target)
    if isinstance(host, Fingerprinted):
        raise FreqprintError(f"{config.target!r} already carries a fingerprint module")
    if isinstance(host, nn.Conv2d):
        if config.prefix_tokens or config.token_grid:
            raise FreqprintError(f"{config.target!r} is a Conv2d: prefix_tokens and token_grid apply to Transformer layers only")
        x, y = _probe(model, host, example_input)
        _, c, m, n = x.shape
        _check_channels(config, c, min_detectable_p)
        fp = _module_for(config, c, y.shape[1], (m, n), host.weight)
        _set_submodule(model, config.target, FingerprintedConv(host, fp))
        return fp
    try:
        like = next(host.parameters())
    except StopIteration:
        raise FreqprintError(
            f"target {config.target!r} ({type(host).__name__}) has no parameters; name a Conv2d or a Transformer layer"
        ) from None
    x, y = _probe(model, host, example_input)
    y0 = y[0] if isinstance(y, tuple) else y
    if not (isinstance(x, torch.Tensor) and x.ndim == 3 and isinstance(y0, torch.Tensor) and y0.shape == x.shape):
        raise FreqprintError(
            f"target {config.target!r} is a {type(host).__name__}: not an nn.Conv2d, nor a layer mapping tokens [B, L, H] to "
            f"[B, L, H] (its input was {list(getattr(x, 'shape', []))}, its output {list(getattr(y0, 'shape', []))})"
        )
    _, length, hidden = x.shape
    if config.layout == "features" or (config.layout == "auto" and is_causal_lm(model)):
        if config.prefix_tokens or config.token_grid:
            raise FreqprintError(
                f"{type(model).__name__} is a causal decoder: prefix_tokens and token_grid apply to the tokens layout"
            )
        c, m, n = feature_grid(hidden, config.feature_grid, config.kernel_size)
        _check_channels(config, c, min_detectable_p)
        fp = _module_for(config, c, c, (m, n), like)
        _set_submodule(model, config.target, FingerprintedFeatures(host, fp))
        return fp
    if config.feature_grid is not None:
        raise FreqprintError(
            f"{type(model).__name__} is laid out by tokens: feature_grid applies to causal decoders (layout='features')"
        )
    grid = token_grid(length, config.prefix_tokens, config.token_grid)
    _check_channels(config, hidden, min_detectable_p)
    fp = _module_for(config, hidden, hidden, grid, like)
    wrapper = FingerprintedTokens(host, fp, config.prefix_tokens)
    _set_submodule(model, config.target, wrapper)
    wrapper.watch_attention_mask(model)
    return fp


def detach(model: nn.Module, target: str | None = None) -> nn.Module:
    """Remove fingerprint modules (all, or the one at ``target``), restoring the host convs."""
    names = [target] if target else [n for n, _ in find_fingerprint_modules(model)]
    for name in names:
        mod = _get_submodule(model, name)
        if not isinstance(mod, Fingerprinted):
            raise FreqprintError(f"{name!r} carries no fingerprint module")
        mod.detached()
        _set_submodule(model, name, mod.base)
    return model


def find_fingerprint_modules(model: nn.Module) -> list[tuple[str, FingerprintModule]]:
    """``(host name, module)`` for every fingerprint module attached anywhere in ``model``."""
    return [(n, m.fingerprint) for n, m in model.named_modules() if isinstance(m, Fingerprinted)]


def get_fingerprint_module(model: nn.Module, target: str | None = None) -> tuple[str, FingerprintModule]:
    """The one fingerprint module of ``model`` (or the one at ``target``), with a clear error."""
    found = find_fingerprint_modules(model)
    if target is not None:
        found = [(n, m) for n, m in found if n == target]
    if not found:
        raise FreqprintError("the model carries no fingerprint module" + (f" at {target!r}" if target else ""))
    if len(found) > 1:
        raise FreqprintError(f"several fingerprint modules ({', '.join(n for n, _ in found)}); name one")
    return found[0]
