"""The candidate loop both white-box channels share: fit candidates in order, keep the one with
the smallest log p, skip the ones that cannot be read (NaN or Inf), and stop as soon as the best
already decides.

Stopping early never makes a verdict less conservative: each channel pays for *every* candidate
listed (``log n`` in its p-value, a union bound), whether it was fitted or not, so fitting fewer
only leaves a p-value larger than the full search would have reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Search", "best_first"]

T = TypeVar("T")
C = TypeVar("C")


@dataclass
class Search(Generic[T]):
    """What :func:`best_first` found: the best fit (None if nothing could be fitted), how many
    candidates were fitted, and every fit in the order made."""

    best: T | None = None
    fitted: int = 0
    tried: list[T] = field(default_factory=list)

    def offer(self, fit: T | None, logp: Callable[[T], float]) -> bool:
        """Record one fit (None: unreadable, skipped); True if it is the new best."""
        if fit is None:
            return False
        self.fitted += 1
        self.tried.append(fit)
        if self.best is None or logp(fit) < logp(self.best):
            self.best = fit
            return True
        return False


def best_first(
    candidates: Iterable[C],
    fit: Callable[[C], T | None],
    logp: Callable[[T], float],
    decisive: Callable[[float], bool] = lambda _: False,
    search: Search[T] | None = None,
) -> Search[T]:
    """Fit ``candidates`` in order into ``search`` (a new one by default), stopping once
    ``decisive(logp(best))``."""
    search = Search() if search is None else search
    for cand in candidates:
        search.offer(fit(cand), logp)
        if search.best is not None and decisive(logp(search.best)):
            break
    return search
