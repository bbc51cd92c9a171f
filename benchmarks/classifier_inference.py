"""Classifier inference throughput (pairs/s) on this machine's CPU (or GPU if present).

    python benchmarks/classifier_inference.py [--batch 64] [--threads 2]
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import torch  # noqa: E402

from hybridlens import config as hlconfig  # noqa: E402
from hybridlens.networks import classifier, training  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = hlconfig.load(ROOT / "config" / "config.yaml")["classifier"]
    device = training.device_for(settings["device"])
    model = training.build_model(settings).to(device).eval()
    shape = (args.batch, 1, *settings["input_shape"])
    source, residual = torch.randn(shape, device=device), torch.randn(shape, device=device)
    with torch.no_grad():
        model(source, residual)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            torch.softmax(model(classifier.normalise(source), classifier.normalise(residual)), 1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    rate = args.repeats * args.batch / seconds
    print(f"{classifier.count_parameters(model):,} parameters on {device} ({args.threads} threads): "
          f"{rate:.0f} pairs/s (target >= 500 on 2 CPU cores: x{rate / 500:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
