"""What an evidence report costs on top of a verdict, for a full-width ResNet-18 suspect (issue 28's
goal: <= 2 s on top of the verdict, <= 1 MB).  docs/benchmarks.md §15 quotes its output.

The owner: a ResNet-18 with the module on ``layer1.1.conv2`` (secret "resnet-owner", seed 0), its
key anchored to W0; suspects written as files: a derived copy (every weight + 1 % Gaussian noise)
and an unrelated model (secret "resnet-other", seed 1).  For each: ``verify`` on the file, then the
report (the inputs' SHA-256, building, drawing the figures, writing HTML + JSON), timed apart; the
first report pays matplotlib's import (a command line pays it once per run).

    python scripts/report_cost.py [--out DIR]
"""

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch
from time_unrelated_resnet import build  # the same owner and unrelated model as §4's timing (this folder)

from freqprint.io.checkpoint import save_model
from freqprint.report import digest_inputs, environment, from_verify, write_report
from freqprint.verification.key import extract
from freqprint.verification.verifier import verify

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="report-cost-"))
    out.mkdir(parents=True, exist_ok=True)
    owner = build("resnet-owner", 0)
    key = extract(owner, secret="resnet-owner")
    key.save(out / "owner.key")
    derived = copy.deepcopy(owner)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in derived.parameters():
            p.add_(0.01 * p.std() * torch.randn(p.shape, generator=g))
    recipe = {"model": "resnet18", "kwargs": {"num_classes": 10, "in_channels": 1, "width": 1.0}}
    files = {
        "derived": save_model(derived, out / "derived.safetensors", recipe),
        "unrelated": save_model(build("resnet-other", 1), out / "unrelated.safetensors", recipe),
    }
    print(
        f"full-width ResNet-18 (11.2 M parameters), key {key.filters} filters x {key.channels} channels; {torch.__version__}, 2 threads"
    )
    print("| suspect | file MB | verdict | verify s | report s | report / verify | HTML kB | JSON kB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path in files.items():
        t0 = time.perf_counter()
        rep = verify(out / "owner.key", path)
        t1 = time.perf_counter()
        ev = from_verify(
            rep,
            inputs=digest_inputs([("key", out / "owner.key"), ("suspect", path)]),
            reproduce=f"freqprint verify {out / 'owner.key'} {path} --report {out / name}",
            environment=environment(),
        )
        html, js = write_report(ev, out / name)
        t2 = time.perf_counter()
        print(
            f"| {name} | {path.stat().st_size / 1e6:.1f} | {ev.verdict} | {t1 - t0:.2f} | {t2 - t1:.2f} | "
            f"{(t2 - t1) / (t1 - t0):.2f} | {html.stat().st_size / 1e3:.0f} | {js.stat().st_size / 1e3:.0f} |"
        )
    print(f"reports in {out}")
