"""Validation accuracy of the classifier against training-set size.

Trains from scratch on nested fractions of the training lenses of a finished run
(same validation lenses throughout) and prints validation accuracy per size: the
number to choose settings by. The test split is never read here; it is scored
once, by the evaluate_classifier rule, after the settings are fixed.

    python benchmarks/classifier_learning_curve.py [--fractions 0.25 0.5 1] [--epochs N]
"""

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np

from hybridlens import config as hlconfig
from hybridlens.networks import training


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shards", nargs="*", default=sorted(str(p) for p in (ROOT / "results/trainingset/slacs").glob("*.h5"))
    )
    parser.add_argument("--fractions", nargs="*", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    args = parser.parse_args()
    cfg = hlconfig.load(ROOT / "config" / "config.yaml")
    settings = {**cfg["classifier"], "progress_bar": False}
    if args.epochs:
        settings["epochs"] = args.epochs
    if args.learning_rate:
        settings["learning_rate"] = args.learning_rate
    splits = training.split_by_lens(training.catalogue(args.shards), settings["split"], cfg["seed"])
    lenses = np.unique([entry.lens_index for entry in splits["train"]])
    order = np.random.default_rng(cfg["seed"]).permutation(lenses)
    for fraction in args.fractions:
        keep = set(order[: max(1, int(round(fraction * len(order))))])
        subset = {
            "train": [e for e in splits["train"] if e.lens_index in keep],
            "validation": splits["validation"],
            "test": [],
        }
        with tempfile.TemporaryDirectory() as scratch:
            _, history = training.train(subset, settings, Path(scratch) / "c.pt", cfg["seed"], log=lambda _: None)
        accuracy = history["validation_accuracy"]
        best = int(np.argmax(accuracy))
        print(
            f"{len(subset['train']):6d} training pairs: validation accuracy {accuracy[-1]:.3f} after "
            f"{len(accuracy)} epochs (best {accuracy[best]:.3f} at epoch {best + 1}; "
            f"{len(splits['validation'])} pairs), final train loss {history['train_loss'][-1]:.3f}"
        )


if __name__ == "__main__":
    main()
