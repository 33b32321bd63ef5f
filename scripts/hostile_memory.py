"""Peak memory and time of the hostile inputs of SECURITY.md "Hostile files", each in a fresh process.

    .venv/bin/python scripts/hostile_memory.py [--key-mb 245]

Each row runs ``freqprint ...`` in its own interpreter and reports its exit code, its first stderr
line, its own peak resident size (``VmHWM``, which starts afresh at ``execve``, unlike
``ru_maxrss``) and its wall time; ``reference`` is ``extract`` of
a small ordinary model, the floor every row pays (Python, torch, the CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

CHILD = """
import os, sys
from freqprint.cli import main
sys.argv = ["freqprint", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
sys.stdout.flush(); sys.stderr.flush()
open(os.environ["RSS_OUT"], "w").write(str([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]))
os._exit(code)
"""


def measure(args: list, tmp: Path, timeout: float = 600) -> dict:
    out = tmp / "rss.txt"
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "RSS_OUT": str(out)},
        stdin=subprocess.DEVNULL,
    )
    return {
        "rc": r.returncode,
        "seconds": round(time.perf_counter() - t, 2),
        "peak_mb": round(int(out.read_text()) / 1024),
        "stderr": (r.stderr.strip().splitlines() or [""])[-1][:110],
    }


def sparse(path: Path, tensors: dict, hole_bytes: int) -> None:
    header = {"aaa.zeros": {"dtype": "F32", "shape": [hole_bytes // 4], "data_offsets": [0, hole_bytes]}}
    at, blobs = hole_bytes, []
    for k, v in tensors.items():
        raw = v.contiguous().numpy().tobytes()
        header[k] = {
            "dtype": {torch.float32: "F32", torch.int64: "I64"}[v.dtype],
            "shape": list(v.shape),
            "data_offsets": [at, at + len(raw)],
        }
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.seek(8 + len(text) + hole_bytes)
        for raw in blobs:
            f.write(raw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--key-mb", type=float, default=245, help="size of the large key given to registry add")
    a = ap.parse_args()
    from freqprint import extract

    torch.manual_seed(0)
    module = {
        "conv2.fingerprint.weight": torch.randn(16, 8, 3, 3) * 0.1,
        "conv2.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1]),
    }
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        save_file(module, str(tmp / "plain.safetensors"))
        rows["reference: extract, 16x8 module on 28x28"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key"], tmp
        )
        sparse(tmp / "sparse.safetensors", module, 1 << 30)
        rows["extract beside a 1 GiB all-zero tensor"] = measure(
            ["extract", tmp / "sparse.safetensors", "--out", tmp / "k.key"], tmp
        )
        save_file({**module, "conv2.fingerprint.grid": torch.tensor([4096, 4096, 3, 1, 1])}, str(tmp / "grid.safetensors"))
        rows["extract, grid buffer 4096x4096"] = measure(["extract", tmp / "grid.safetensors", "--out", tmp / "k.key"], tmp)
        rows["study, grid buffer 4096x4096"] = measure(["study", tmp / "grid.safetensors", tmp / "grid.safetensors"], tmp)
        save_file({**module, "conv2.fingerprint.grid": torch.tensor([1024, 1024, 3, 1, 1])}, str(tmp / "g1024.safetensors"))
        rows["study, grid buffer 1024x1024 (the largest allowed)"] = measure(
            ["study", tmp / "g1024.safetensors", tmp / "g1024.safetensors"], tmp
        )
        # a key of about --key-mb: D = 256 filters, C = 512 channels, S′ of a grid chosen to fit
        grid = max(8, int(a.key_mb * 2**20 / (8 * 256 * 512) / 2))
        big = extract(
            {"h.fingerprint.weight": torch.randn(256, 512, 3, 3) * 0.1, "h.fingerprint.grid": torch.tensor([grid, grid, 3, 1, 1])}
        )
        big.save(tmp / "big.key")
        mb = (tmp / "big.key").stat().st_size / 2**20
        rows[f"registry add, a {mb:.0f} MB key"] = measure(["registry", "add", tmp / "big.key", "-r", tmp / "r.db"], tmp)
        rows["secret file /dev/zero"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key", "--secret-file", "/dev/zero"], tmp
        )
        os.mkfifo(tmp / "fifo")
        rows["secret file: a FIFO nobody writes"] = measure(
            ["extract", tmp / "plain.safetensors", "--out", tmp / "k.key", "--secret-file", tmp / "fifo"], tmp, timeout=60
        )
    print("| input | exit | peak RSS (MB) | seconds | last stderr line |\n|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['rc']} | {r['peak_mb']} | {r['seconds']} | {r['stderr']} |")


if __name__ == "__main__":
    main()
