"""Trace at scale: a key store of owner keys and claim bundles (one SQLite file, :mod:`.store`)
with a cheap screen (:mod:`.sketch`), and bulk scans of checkpoint folders, locally or on Ray
(:mod:`.bulk`).  The CLI calls the key store "the registry" (``freqprint registry add``)."""

from freqprint.scan.bulk import find_checkpoints, scan
from freqprint.scan.store import Entry, KeyStore, Match, MatchResult

__all__ = ["Entry", "KeyStore", "Match", "MatchResult", "find_checkpoints", "scan"]
