"""What a MetaV suspect can be: a model file, or (only when the caller opts in) a Python callable.

A model file is read as weights (safetensors, or a weights-only torch file) and rebuilt from its
freqprint recipe: nothing in it runs.  A spec ``py:MODULE:FUNCTION`` instead **imports MODULE and
runs its code** — an import runs whatever the module's top level does, with the caller's
rights.  An arbiter handed a spec by a party would run that party's code, so such specs are
refused unless ``allow_code=True`` (``freqprint metav verify --allow-code``).

A callable that fails — raises, has the wrong signature, calls ``sys.exit`` — is a suspect that
could not be scored: :class:`~freqprint.errors.InvalidArgument`, never a verdict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument

__all__ = ["CODE_PREFIX", "guarded", "load_suspect"]

CODE_PREFIX = "py:"


def guarded(fn: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    """``fn`` with every failure inside it turned into one :class:`InvalidArgument` naming it."""

    def call(x: Any) -> Any:
        try:
            return fn(x)
        except FreqprintError:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise InvalidArgument(f"the suspect callable {name} failed: {type(e).__name__}: {text}") from None

    return call


def load_suspect(spec: str, allow_code: bool = False, device: str = "cpu") -> nn.Module | Callable[[Any], Any]:
    """A suspect from a command-line spec: a model file with a freqprint recipe, or
    ``py:MODULE:FUNCTION`` (a callable from a batch of inputs to outputs) when ``allow_code``."""
    if spec.startswith(CODE_PREFIX):
        target = spec[len(CODE_PREFIX) :]
        if not allow_code:
            raise InvalidArgument(
                f"the suspect {spec!r} is Python code: importing it runs the module's code with your rights; "
                "allow that explicitly (allow_code=True) only for code you trust"
            )
        mod, sep, attr = target.partition(":")
        if not sep or not mod or not attr:
            raise InvalidArgument(f"a code suspect is py:MODULE:FUNCTION, got {spec!r}")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise InvalidArgument(f"cannot import the suspect callable {target!r}: {type(e).__name__}: {text}") from None
        if not callable(fn) or isinstance(fn, type):
            raise InvalidArgument(f"{target} is not a function")
        return guarded(fn, target)
    from freqprint.io.checkpoint import load_model

    model, _ = load_model(spec, device=device)
    return model.eval()
