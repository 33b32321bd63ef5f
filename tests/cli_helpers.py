"""Running the command line in-process, as a user would from a shell (shared by the CLI tests)."""

from __future__ import annotations

import json
import struct
import sys

import pytest
import torch

from freqprint.cli import main


def run_captured(args) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``freqprint ARGS`` without pytest's function fixtures
    (for module-scoped fixtures that drive the command line)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setattr(sys, "argv", ["freqprint", *map(str, args)])
        try:
            main()
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def run(args, monkeypatch, capsys) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``freqprint ARGS``."""
    monkeypatch.setattr(sys, "argv", ["freqprint", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


_MEASURED = """
import os, sys
from freqprint.cli import main
sys.argv = ["freqprint", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
sys.stdout.flush(); sys.stderr.flush()
with open(os.environ["FREQPRINT_TEST_RSS"], "w") as f:
    f.write(str([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]))
os._exit(code)
"""


def run_measured(args, tmp_path, env=None, timeout=300) -> tuple[int, str, str, float]:
    """``(exit code, stdout, stderr, peak resident MiB)`` of ``freqprint ARGS`` in a fresh process:
    the peak is the process's own high-water mark (``VmHWM``: unlike ``ru_maxrss``, which Linux
    carries over ``execve`` from the parent, it starts afresh in the new program), so a test can
    bound memory by what the command has to read.  ``timeout`` only guards the test run against a hang."""
    import os
    import subprocess
    import sys

    rss = tmp_path / f"rss-{os.getpid()}-{len(os.listdir(tmp_path))}.txt"
    r = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "FREQPRINT_TEST_RSS": str(rss)},
        stdin=subprocess.DEVNULL,
    )
    peak = int(rss.read_text()) / 1024 if rss.exists() else float("nan")
    return r.returncode, r.stdout, r.stderr, peak


def sparse_safetensors(path, tensors: dict[str, torch.Tensor], hole_name: str, hole_bytes: int) -> None:
    """A legal safetensors file whose first tensor is ``hole_bytes`` of float32 zeros stored as a
    hole (sparse on disk): reading it would cost ``hole_bytes`` of memory, skipping it nothing."""
    header = {hole_name: {"dtype": "F32", "shape": [hole_bytes // 4], "data_offsets": [0, hole_bytes]}}
    at, blobs = hole_bytes, []
    for k, v in tensors.items():
        raw = v.contiguous().numpy().tobytes()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
        header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.seek(8 + len(text) + hole_bytes)
        for raw in blobs:
            f.write(raw)
