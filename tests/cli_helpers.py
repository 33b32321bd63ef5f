"""Running the command line in-process, as a user would from a shell (shared by the CLI tests)."""

from __future__ import annotations

import sys

import pytest

from freqprint.cli import main


def run(args, monkeypatch, capsys) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``freqprint ARGS``."""
    monkeypatch.setattr(sys, "argv", ["freqprint", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err
