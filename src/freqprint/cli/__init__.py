"""``freqprint`` command line: thin commands over the library, one module per group.

Each command parses its options, calls one library function and prints; torch is imported only
when a command runs, so every ``--help`` answers at once.

Exit codes (``freqprint.errors``): 0 found / derived / done, 1 not found / not derived, 2 the
input was refused (one ``error:`` line on stderr), 3 an unexpected failure: a bug (one ``bug:``
line; ``FREQPRINT_DEBUG=1`` prints the traceback), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import typer

# isort: off
# each module registers its commands; this order is the order of `freqprint --help`
from freqprint.cli import fit, verdicts, claim, registry, metav, report, bench, bench_search  # noqa: F401

# isort: on
from freqprint.cli._shared import app
from freqprint.errors import EXIT_BUG, EXIT_REFUSED, FreqprintError

__all__ = ["app", "main"]


def _usage_errors() -> tuple[type[BaseException], ...]:
    # typer >= 0.24 vendors click (typer.TyperException); older typer uses click itself
    found: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def _fail(message: str, code: int = EXIT_REFUSED, prefix: str = "error") -> None:
    """One line on stderr, never wrapped (with ``FREQPRINT_DEBUG=1`` the traceback first), then exit."""
    if os.environ.get("FREQPRINT_DEBUG") and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    print(f"{prefix}: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else ""


def main() -> None:
    """Entry point.  Exit codes mean one thing each (``freqprint.errors``): 0 found / derived /
    done, 1 not found / not derived, 2 the input was refused (one ``error:`` line), 3 a bug (one
    ``bug:`` line; ``FREQPRINT_DEBUG=1`` prints the traceback), 130 interrupted."""
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except FreqprintError as e:
        _fail(str(e))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", code=130)
    except _USAGE_ERRORS as e:
        _fail(e.format_message() if hasattr(e, "format_message") else str(e))
    except OSError as e:
        if e.filename is not None:  # the operating system refused a path the user named (unwritable --out, ...)
            _fail(f"{e.filename}: {e.strerror or _first_line(e)}")
        _fail(f"{type(e).__name__}: {_first_line(e)} (unexpected; FREQPRINT_DEBUG=1 shows the traceback)", EXIT_BUG, "bug")
    except Exception as e:
        _fail(f"{type(e).__name__}: {_first_line(e)} (unexpected; FREQPRINT_DEBUG=1 shows the traceback)", EXIT_BUG, "bug")
