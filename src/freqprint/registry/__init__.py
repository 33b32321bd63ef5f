"""Trace at scale: a registry of owner keys with a screen (:mod:`.store`, :mod:`.sketch`) and bulk
scans of checkpoint folders, locally or on Ray (:mod:`.scan`)."""

from freqprint.registry.store import Entry, Match, MatchResult, Registry

__all__ = ["Entry", "Match", "MatchResult", "Registry"]
