"""Choose the BNN's architecture, input size and schedule on the *validation* split.

Trains one candidate (config `bnn` block overridden by KEY=VALUE pairs) on the
training split of the shards, as `train_bnn` would, and prints its training
images/s, wall time and the validation split's Table-1-form errors (the test
split is never read here).

    python benchmarks/bnn_candidates.py results/simulate/training_sie/shard-*.h5 \\
        --mass-model sie --set binning=2 width=0.25 epochs=20 [--dropout 0.05] [--threads 1]
"""

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
import yaml

from hybridlens import config as hlconfig
from hybridlens.networks import bnn, bnn_training

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", nargs="+")
    parser.add_argument("--mass-model", default="sie")
    parser.add_argument("--set", nargs="*", default=[], help="bnn settings KEY=VALUE (YAML values)")
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = hlconfig.load(hlconfig.CONFIG_DIR / "config.yaml")
    settings = {**cfg["bnn"], "progress_bar": False}
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = yaml.safe_load(value)
    scaling = bnn.TargetScaling.for_ranges(args.mass_model, cfg["simulate_training"]["lens"])
    splits = bnn_training.split(*bnn_training.catalogue(args.shards, scaling.names), settings["split"], cfg["seed"])
    # a stable name per candidate (str hashes are salted per process), so a rerun resumes its checkpoint
    name = hashlib.sha256(json.dumps([settings, args.dropout, args.mass_model], sort_keys=True).encode()).hexdigest()
    checkpoint = args.checkpoint or f"/tmp/bnn-candidate-{name[:16]}.pt"
    start = time.perf_counter()
    model, history = bnn_training.train(splits, scaling, settings, args.dropout, checkpoint, cfg["seed"], log=print)
    seconds = time.perf_counter() - start
    rows = splits["validation"][0][: settings["calibration_images"]]
    predictions, truth, summary = bnn_training.assess(
        model, rows, scaling, settings["mc_passes"], splits["train"][0], cfg["seed"]
    )
    factors = bnn.sigma_scale(predictions, truth)  # as select_bnn would scale this candidate
    print(
        json.dumps(
            {
                "settings": {k: settings[k] for k in ("width", "binning", "batch_size", "epochs", "learning_rate")},
                "dropout": args.dropout,
                "train_images": len(splits["train"][0]),
                "training_images_per_second": len(splits["train"][0])
                * len(history["training_seconds"])
                / sum(history["training_seconds"]),
                "wall_seconds": seconds,
                "threads": torch.get_num_threads(),
                "validation": summary,
                "sigma_scale": factors,
            }
        )
    )


if __name__ == "__main__":
    main()
