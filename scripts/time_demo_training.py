"""One epoch of the demo's fingerprinted SmallCNN on 6,000 Fashion-MNIST images: is a slower demo
the code or the machine?  docs/benchmarks.md §1 (0.26.0) quotes it, run interleaved against an
older checkout on the same machine:

    git archive a9678c5 src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python scripts/time_demo_training.py old; python scripts/time_demo_training.py new
    PYTHONPATH=/tmp/old/src python scripts/time_demo_training.py old; python scripts/time_demo_training.py new
"""

import sys
import time

import torch

from freqprint.data import load_dataset
from freqprint.fingerprint.loss import FingerprintLoss
from freqprint.training import TrainConfig, train
from freqprint_bench.demo import DemoSettings, _fingerprinted

if __name__ == "__main__":
    torch.set_num_threads(2)
    s = DemoSettings()
    d = load_dataset("fashion-mnist", "train", limit=6000)
    m = _fingerprinted(s, "x", d.images[:2])
    t = time.perf_counter()
    train(m, d, TrainConfig(epochs=1, lr=0.05), criterion=FingerprintLoss(10, weight=s.attack_weight), progress=False)
    print(sys.argv[1] if len(sys.argv) > 1 else "this checkout", f"{time.perf_counter() - t:.1f} s")
