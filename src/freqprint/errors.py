"""One exception type for every user-facing failure, so the CLI can print one line and exit 2."""

from __future__ import annotations


class FreqprintError(Exception):
    """A problem with the user's input (file, model, key, data): the message says what and where."""


class NotApplicable(FreqprintError):
    """An attack that does not exist for this model (e.g. ``collapse`` of a ReLU-merge module):
    benchmarks report the row as "not applicable" instead of as a failed thief."""


class NoMaterial(FreqprintError):
    """The suspect is readable but holds nothing a test can look at (e.g. no tensor shaped like
    the fingerprint module: it was removed).  ``trace`` counts that channel as run with p = 1."""
