"""MC-dropout inference and training cost of P21's BNN on this machine.

Prints lenses per second with `--passes` MC passes per lens: the naive loop (one
forward call per pass, one lens at a time) against `bnn.mc_predict` (the passes of
several lenses batched into one call, spread over the stamp's 8 dihedral views as
the pipeline predicts), and the training cost per image and per
epoch of `--train-images` images. Weights are random: cost does not depend on them.

    python benchmarks/bnn_inference.py [--threads 2] [--lenses 40] [--passes 100] [--widths 1 0.25] [--binnings 1 2]

Width 1 is P21's network; smaller widths are `bnn.width` of the config.
"""

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch

from hybridlens.networks import bnn


def naive(model, images, passes):
    bnn.enable_mc_dropout(model)
    with torch.inference_mode():
        for image in images:
            for _ in range(passes):
                model(image[None])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--lenses", type=int, default=40)
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500, help="forward-call batch of mc_predict (lenses x passes)")
    parser.add_argument("--train-images", type=int, default=14000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--binnings", type=int, nargs="+", default=[1, 2], help="b x b pixel blocks averaged first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, {args.lenses} lenses x {args.passes} passes")
    for width in args.widths:
        for binning in args.binnings:
            torch.manual_seed(0)
            print(f"--- width {width}, binning {binning}: filters {bnn.filters_for(width)}")
            measure(bnn.LensBNN(3, 0.05, width, binning=binning).to(device), args, device)


def measure(model, args, device):
    images = torch.rand(args.lenses, 1, 100, 100)

    few = images[: max(2, args.lenses // 10)].to(device)
    start = time.perf_counter()
    naive(model, few, args.passes)
    if device.type == "cuda":
        torch.cuda.synchronize()
    naive_rate = len(few) / (time.perf_counter() - start)
    scaling = bnn.TargetScaling(bnn.TARGETS["sie"], (0.2, -0.5, -0.5), (3.2, 0.5, 0.5))
    bnn.mc_predict(model, images[:2], args.passes, args.batch, scaling=scaling)  # warm-up
    start = time.perf_counter()
    bnn.mc_predict(model, images, args.passes, args.batch, scaling=scaling)
    batched_rate = args.lenses / (time.perf_counter() - start)
    print(f"naive loop (one pass per call)   : {naive_rate:8.2f} lenses/s")
    print(
        f"mc_predict (passes batched, {args.batch}): {batched_rate:8.2f} lenses/s  (x{batched_rate / naive_rate:.1f})"
    )

    model.train()
    optimiser = torch.optim.NAdam(model.parameters(), lr=1e-3)
    batch = torch.rand(100, 1, 100, 100, device=device)
    targets = torch.rand(100, 3, device=device)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    for step in range(3):
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device_type=device.type, enabled=use_amp):
            mean, log_variance = model(batch)
        loss = bnn.heteroscedastic_nll(mean.float(), log_variance.float(), targets)
        optimiser.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_image = (time.perf_counter() - start) / (2 * len(batch))
    print(
        f"training: {1000 * per_image:.1f} ms per image ({1 / per_image:.0f} images/s) -> "
        f"{per_image * args.train_images:.1f} s per epoch of "
        f"{args.train_images} images; P21 scale (100,000 images x 150 epochs): "
        f"{per_image * 1e5 * 150 / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
