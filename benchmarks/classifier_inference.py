"""Classifier inference throughput (pairs/s): the plain eager model against the fast path.

BEFORE is `model.eval()` under `torch.no_grad()` in batches of 64; AFTER is
`classifier.FastClassifier`, the path `training.predict` uses. Both see the
same lens-like pairs (elliptical Sersic-like sources with noise, residuals in
noise units); the weights are a random initialisation unless --weights names a
trained weights.pt. Prints the largest probability difference, whether every
argmax agrees, and the FLOP arithmetic against this CPU's measured matmul rate.

    python benchmarks/classifier_inference.py [--threads 2] [--pairs 512] [--batch 256] [--weights W] [--nnpack]
"""

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch
from torch import nn

from hybridlens import config as hlconfig
from hybridlens.networks import classifier, training


def lens_like_pairs(n, shape, seed=0):
    """Normalised sources and asinh noise-unit residuals that look like the training set's."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(*(torch.linspace(-1, 1, s) for s in shape), indexing="ij")
    centre = 0.2 * (torch.rand(n, 2, 1, 1, generator=g) - 0.5)
    q = 0.5 + 0.5 * torch.rand(n, 1, 1, generator=g)
    width = 0.05 + 0.3 * torch.rand(n, 1, 1, generator=g)
    radius = torch.sqrt((x - centre[:, 0]) ** 2 * q + (y - centre[:, 1]) ** 2 / q)
    source = torch.exp(-((radius / width) ** 0.5)) + 0.02 * torch.randn(n, *shape, generator=g)
    residual = torch.asinh(torch.randn(n, *shape, generator=g) * (1 + 3 * torch.rand(n, 1, 1, generator=g)))
    return classifier.normalise(source[:, None]), residual[:, None]


def gflop_per_pair(model, shape):
    """Multiply-adds x 2 of the convolutions and dense layers for one pair."""
    flops, side = 0, list(shape)
    for path in (model.source_path, model.residual_path):
        side = list(shape)
        for layer in path:
            if isinstance(layer, nn.Conv2d):
                flops += (
                    2
                    * layer.in_channels
                    * layer.out_channels
                    * layer.kernel_size[0]
                    * layer.kernel_size[1]
                    * side[0]
                    * side[1]
                )
            elif isinstance(layer, nn.MaxPool2d):
                side = [-(-s // 2) for s in side]
    flops += sum(2 * layer.in_features * layer.out_features for layer in model.head if isinstance(layer, nn.Linear))
    return flops / 1e9


def rate(fn, source, residual, batch, repeats):
    """Pairs/s of `fn` over the pairs in batches (best of `repeats`), and its logits."""
    fn(source[:batch], residual[:batch])  # warm-up
    best, logits = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        logits = torch.cat([fn(source[i : i + batch], residual[i : i + batch]) for i in range(0, len(source), batch)])
        best = min(best, time.perf_counter() - start)
    return len(source) / best, logits


def matmul_gflops(size=2048, repeats=5):
    a = torch.randn(size, size)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256, help="batch of the fast path (BEFORE always uses 64)")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="trained weights.pt (default: random initialisation)")
    parser.add_argument("--nnpack", action="store_true", help="also time the eager model on NNPACK (oneDNN off)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = hlconfig.load(ROOT / "config" / "config.yaml")["classifier"]
    torch.manual_seed(0)
    model = training.build_model(settings).eval()
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    source, residual = lens_like_pairs(args.pairs, settings["input_shape"])
    print(
        f"{classifier.count_parameters(model):,} parameters, {args.pairs} lens-like synthetic pairs, "
        f"{'weights ' + args.weights if args.weights else 'random-initialised weights'}, "
        f"{torch.get_num_threads()} CPU threads"
    )

    def eager(s, r):
        with torch.no_grad():
            return model(s, r)

    before, reference = rate(eager, source, residual, 64, args.repeats)
    print(f"BEFORE eager eval + no_grad, batch 64: {before:7.1f} pairs/s")
    if args.nnpack:
        with torch.backends.mkldnn.flags(enabled=False):
            nnpack, _ = rate(eager, source, residual, 64, args.repeats)
        print(
            f"       eager on NNPACK (oneDNN off, NNPACK available: {torch._nnpack_available()}): {nnpack:7.1f} pairs/s"
        )
    fast = classifier.FastClassifier(model, micro_batch=args.micro_batch)
    after, logits = rate(fast, source, residual, args.batch, args.repeats)
    print(
        f"AFTER  FastClassifier, batch {args.batch}, micro-batch {args.micro_batch}: {after:7.1f} pairs/s "
        f"(x{after / before:.2f}; target 500: x{after / 500:.2f})"
    )
    p_ref, p_fast = torch.softmax(reference, 1), torch.softmax(logits, 1)
    agree = torch.equal(p_ref.argmax(1), p_fast.argmax(1))
    print(f"max |probability difference| {float((p_ref - p_fast).abs().max()):.1e}; all argmaxes agree: {agree}")
    gflop, peak = gflop_per_pair(model, settings["input_shape"]), matmul_gflops()
    print(
        f"arithmetic: {gflop:.3f} GFLOP/pair; AFTER sustains {gflop * after:.0f} GFLOP/s; this CPU's 2048^2 "
        f"float32 matmul reaches {peak:.0f} GFLOP/s on {args.threads} threads, so direct arithmetic caps at "
        f"{peak / gflop:.0f} pairs/s; 500 pairs/s needs {500 * gflop:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
