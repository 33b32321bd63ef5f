"""One provenance verdict from every channel the owner has material for.

Channels (each an exact or conservative p-value under its own H0, "the suspect does not derive
from the owner's model"):

* ``fingerprint`` — the frequency fingerprint of the module (:func:`freqprint.verification.verifier.verify`),
  from the owner's key;
* ``lineage`` — the backbone's initialisation (:func:`freqprint.verification.backbone.lineage`), from the
  owner's recipe and secret (or seed);
* ``parent`` — the owner's *released* weights as evidence (:func:`freqprint.verification.parent.parent_lineage`,
  decoders): its exact unit-order p-value is combined; its symmetry-invariant unit match, whose
  error rate is measured rather than bounded, is reported in the channel's summary and detail;
* ``metav`` — listed, never combined: MetaV (:mod:`freqprint.metav`, ``freqprint metav
  verify``) has a p-value, but half of it is a conformal rank, valid for a suspect drawn from
  its reference population rather than under this module's H0 for any suspect
  (:mod:`freqprint.stats.floor`), so it does not enter the Bonferroni bound; its verdict is
  reported on its own (docs/security.md).

**Combination.**  ``p = m · min_c p_c`` over the m channels that ran (Bonferroni).  It bounds the
false-positive probability whatever the dependence between channels — they look at the same
file, so independence would be a guess — at a price of log10(m) ≤ 0.5 digits.  A channel that
cannot find its material in the suspect (no tensor shaped like the module: it was removed)
counts as run, with p = 1; a suspect that cannot be read at all is an error, not a verdict.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.io.checkpoint import TensorStore, open_tensors
from freqprint.stats.null import format_p
from freqprint.verification.backbone import OwnerInit, lineage
from freqprint.verification.key import FingerprintKey
from freqprint.verification.parent import parent_lineage
from freqprint.verification.report import TimedReport
from freqprint.verification.verifier import verify

__all__ = ["CHANNELS", "ChannelResult", "LineageUnavailable", "TraceReport", "trace", "trace_files"]

CHANNELS = ("fingerprint", "lineage", "parent", "metav")


@dataclass
class ChannelResult:
    name: str
    ran: bool
    log10_p: float = 0.0
    found: bool = False
    summary: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TraceReport(TimedReport):
    found: bool
    log10_p: float
    alpha: float
    channels: list[ChannelResult]
    suspect: str
    combination: str = "bonferroni"
    seconds: float = 0.0

    def to_dict(self, include_timing: bool = False) -> dict[str, Any]:
        d = super().to_dict(include_timing)
        if not include_timing:
            for c in d["channels"]:
                c["detail"].pop("seconds", None)
        return d

    def channel(self, name: str) -> ChannelResult:
        return next(c for c in self.channels if c.name == name)

    def summary(self) -> str:
        ran = [c for c in self.channels if c.ran]
        parts = ", ".join(f"{c.name} {format_p(c.log10_p)}" for c in ran)
        verdict = "DERIVED" if self.found else "no evidence of derivation"
        return f"{verdict}: combined p = {format_p(self.log10_p)} (alpha {self.alpha:g}; {parts})"


def trace(
    suspect: nn.Module | str | Path | dict[str, torch.Tensor],
    key: FingerprintKey | str | Path | None = None,
    owner_init: OwnerInit | None = None,
    alpha: float = 1e-6,
    parent: nn.Module | str | Path | dict[str, torch.Tensor] | None = None,
) -> TraceReport:
    """Run every channel with material (``key`` → fingerprint, ``owner_init`` → lineage, ``parent``
    → the released weights' parent lineage) and combine them.  At least one is needed."""
    t0 = time.perf_counter()
    if not 0 < alpha < 1:
        raise InvalidArgument("alpha must be in (0, 1)")
    if key is None and owner_init is None and parent is None:
        raise FreqprintError(
            "nothing to trace with: give the owner's key, the owner's model (lineage), its released weights, or more"
        )
    store: TensorStore = open_tensors(suspect)
    results: list[ChannelResult] = []
    if key is not None:
        key = key if isinstance(key, FingerprintKey) else FingerprintKey.load(key)
        rep = verify(key, store, alpha=alpha)  # nothing module-shaped: ran, p = 1, the summary says why
        results.append(ChannelResult("fingerprint", True, rep.log10_p, rep.found, rep.summary(), rep.to_dict(True)))
    else:
        results.append(ChannelResult("fingerprint", False, summary="no key given"))
    if owner_init is not None:
        lin = lineage(owner_init, store, alpha=alpha)
        results.append(ChannelResult("lineage", True, lin.log10_p, lin.found, lin.summary(), lin.to_dict(True)))
    else:
        results.append(ChannelResult("lineage", False, summary="no owner model given"))
    if parent is not None:
        par = parent_lineage(parent, store, alpha=alpha)
        exact = par.log10_p <= math.log10(alpha)
        results.append(ChannelResult("parent", True, par.log10_p, exact, par.summary(), par.to_dict(True)))
    else:
        results.append(ChannelResult("parent", False, summary="no released weights given"))
    results.append(
        ChannelResult(
            "metav",
            False,
            summary="not combined: MetaV's p-value holds for its reference population; run `freqprint metav verify CLAIM SUSPECT`",
        )
    )
    ran = [c for c in results if c.ran]
    log10_p = min(0.0, min(c.log10_p for c in ran) + math.log10(len(ran)))
    return TraceReport(
        found=log10_p < math.log10(alpha),
        log10_p=log10_p,
        alpha=alpha,
        channels=results,
        suspect=store.name,
        seconds=time.perf_counter() - t0,
    )


class LineageUnavailable(InvalidArgument):
    """The owner's θ₀ cannot be regenerated from what was given (no secret for a secret-seeded
    backbone, a recipe without its init record): trace without the lineage channel, or give it."""


def trace_files(
    owner: str | Path,
    suspect: nn.Module | str | Path | dict[str, torch.Tensor],
    key: FingerprintKey | str | Path | None = None,
    secret: str | None = None,
    seed: int | None = None,
    fingerprint: bool = True,
    lineage: bool = True,
    alpha: float = 1e-6,
    parent: bool = False,
) -> TraceReport:
    """Does ``suspect`` derive from the model in the file ``owner``?

    The owner's file supplies every channel's material: the fingerprint channel uses ``key``, or
    the key extracted from the owner's module (anchored to W₀ when ``secret`` is given); the
    lineage channel regenerates θ₀ from the owner's recipe — from ``secret`` when the backbone
    was seeded from it, from the recorded seed otherwise, or from ``seed`` for a model whose
    recipe predates init records; ``parent=True`` adds the parent-lineage channel with the owner's
    file as the released parent (a decoder).  ``fingerprint=False`` / ``lineage=False`` skip a channel.  A file
    freqprint did not write (a Hugging Face or GGUF model trained with the module) has no recipe:
    its fingerprint channel runs, and lineage must be skipped (``lineage=False``).
    Raises :class:`LineageUnavailable` when θ₀ cannot be regenerated from what was given."""
    from freqprint.io.checkpoint import read_recipe
    from freqprint.verification.key import extract

    recipe = read_recipe(owner)
    if recipe is None and lineage:  # a model trained elsewhere (Hugging Face, GGUF): its module still carries a key
        raise LineageUnavailable(
            f"{owner} carries no freqprint recipe, so the owner's architecture that lineage rebuilds θ₀ for is unknown"
        )
    k: FingerprintKey | str | Path | None = None
    if fingerprint:
        if key is not None:
            k = key
        elif recipe is None or recipe.get("fingerprint"):
            k = extract(owner, secret=secret)  # refused, with the reason, when the file holds no module
    own = None
    if lineage and recipe is not None:
        try:
            own = OwnerInit.from_recipe(recipe, secret=secret, seed=seed)
        except FreqprintError as e:
            raise LineageUnavailable(str(e)) from None
    return trace(suspect, key=k, owner_init=own, alpha=alpha, parent=owner if parent else None)
