"""One exception type for every user-facing failure, so the CLI can print one line and exit 2."""

from __future__ import annotations


class FreqprintError(Exception):
    """A problem with the user's input (file, model, key, data): the message says what and where."""
