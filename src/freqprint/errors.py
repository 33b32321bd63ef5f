"""The exceptions every user-facing failure raises, so the CLI can print one line and exit 2.

Like scikit-learn's, each also inherits the built-in a Python caller would expect, so
``except ValueError`` or ``except OSError`` keeps working around freqprint calls:

* :class:`FreqprintError` — the base: a problem with the caller's input (file, model, key, data);
* :class:`InvalidArgument` (also a :class:`ValueError`) — a parameter out of range or of the wrong
  kind; the message names the parameter as the Python API spells it; :class:`UnknownName` (also a
  :class:`KeyError`) for a name no registry knows;
* :class:`UnreadableFile` (also an :class:`OSError`) — a path that is missing, not a regular file,
  too large for what it claims to be, corrupt or truncated;
* :class:`NotApplicable` — an attack that does not exist for this model;
* :class:`NoMaterial` — a readable suspect with nothing for one test to look at.

Anything else that escapes a command is a bug: the CLI exits with :data:`EXIT_BUG` instead.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BUG",
    "EXIT_FOUND",
    "EXIT_NOT_FOUND",
    "EXIT_REFUSED",
    "FreqprintError",
    "InvalidArgument",
    "NoMaterial",
    "NotApplicable",
    "UnknownName",
    "UnreadableFile",
]

EXIT_FOUND = 0  # found / derived / genuine (or a command that only does something: done)
EXIT_NOT_FOUND = 1  # not found / not derived / rejected
EXIT_REFUSED = 2  # the input was refused: one ``error:`` line on stderr
EXIT_BUG = 3  # something unexpected escaped: one ``bug:`` line (FREQPRINT_DEBUG=1 for the traceback)


class FreqprintError(Exception):
    """A problem with the user's input (file, model, key, data): the message says what and where."""


class InvalidArgument(FreqprintError, ValueError):
    """A parameter out of range or of the wrong kind (e.g. ``alpha=nan``, ``tau=5``)."""


class UnknownName(InvalidArgument, KeyError):
    """A name no registry knows (a model, attack, method, data set or executor); the message lists
    the known ones.  Also a ``KeyError``, as a lookup in a mapping would raise."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class UnreadableFile(FreqprintError, OSError):
    """A path that cannot serve as the file asked for: missing, not a regular file, larger than
    such a file can be, corrupt or truncated."""


class NotApplicable(FreqprintError):
    """An attack that does not exist for this model (e.g. ``collapse`` of a ReLU-merge module):
    benchmarks report the row as "not applicable" instead of as a failed thief."""


class NoMaterial(FreqprintError):
    """The suspect is readable but holds nothing a test can look at (e.g. no tensor shaped like
    the fingerprint module: it was removed).  ``trace`` counts that channel as run with p = 1."""
