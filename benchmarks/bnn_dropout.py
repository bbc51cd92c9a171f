"""The BNN's dropout on a CPU: torch's `nn.Dropout` against `networks.dropout.FastDropout`.

Without `--run`: one training step (batch `bnn.batch_size`) and one MC-dropout
forward (100 stamps) of the default BNN on random stamps, per layer kind; the
cost depends on the shapes alone. With `--run RUN_DIR`: `train_bnn`'s own
training of one BNN (the given dropout rate) from the run's shards for
`--epochs` epochs, then its validation assessment (`bnn.calibration_images`
stamps x `bnn.mc_passes` passes), once per dropout layer, each from the same
seed: seconds, and the validation split's errors beside each other (a
different mask stream, not a different model: the errors should agree within
the training's seed-to-seed scatter).

    python benchmarks/bnn_dropout.py [--run RUN_DIR] [--config ...] [--epochs N] [--rate-index 1]
        [--mass-model sie] [--threads 1] [--json OUT.json]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch
from torch import nn

from hybridlens import config as hlconfig
from hybridlens.networks import bnn, bnn_training, dropout

LAYERS = {"torch": nn.Dropout, "fast": dropout.FastDropout}  # nn.Dropout, FastDropout


def with_dropout(layer):
    """Build the BNN with `layer` as its dropout (bnn.LensBNN reads the name at construction)."""
    bnn.FastDropout = layer


def timed(call, repeats):
    call()
    began = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - began) / repeats


def step_costs(settings, layers, repeats=20):
    """Seconds per training step and per 100-stamp MC forward, per dropout layer."""
    rows = {}
    images = torch.rand(settings["batch_size"], 1, 100, 100)
    targets = torch.rand(settings["batch_size"], 3)
    stamps = torch.rand(100, 1, 100, 100)
    for name in layers:
        with_dropout(LAYERS[name])
        torch.manual_seed(0)
        model = bnn_training.build_model(3, settings["dropout_rates"][-1], settings)
        optimiser = torch.optim.NAdam(model.parameters(), lr=1e-4)

        def step():
            mean, log_variance = model(images)
            loss = bnn.heteroscedastic_nll(mean, log_variance, targets, settings["loss_beta"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        model.train()
        train = timed(step, repeats)
        bnn.enable_mc_dropout(model)
        with torch.inference_mode():
            forward = timed(lambda: model(stamps), repeats)
        rows[name] = {"train_step_s": train, "mc_forward_100_s": forward}
    return rows


def full_training(run, cfg, mass_model, rate_index, epochs, layers):
    """train_bnn's training and validation assessment per dropout layer: seconds and validation errors."""
    settings = {**cfg["bnn"], "epochs": epochs, "progress_bar": False, "device": "cpu"}
    scaling = bnn.TargetScaling.for_ranges(mass_model, cfg["simulate_training"]["lens"])
    shards = sorted((Path(run) / "results" / "simulate" / f"training_{mass_model}").glob("shard-*.h5"))
    splits = bnn_training.split(*bnn_training.catalogue(shards, scaling.names), settings["split"], cfg["seed"])
    rate = settings["dropout_rates"][rate_index]
    rows = {}
    for name in layers:
        with_dropout(LAYERS[name])
        with tempfile.TemporaryDirectory() as scratch:
            began = time.perf_counter()
            model, history = bnn_training.train(
                splits, scaling, settings, rate, Path(scratch) / "c.pt", cfg["seed"], log=lambda *_: None
            )
            trained = time.perf_counter() - began
        rows_validation = splits["validation"][0][: settings["calibration_images"]]
        began = time.perf_counter()
        _, _, summary = bnn_training.assess(
            model, rows_validation, scaling, settings["mc_passes"], splits["train"][0], cfg["seed"]
        )
        rows[name] = {
            "training_s": trained,
            "assess_s": time.perf_counter() - began,
            "epochs": epochs,
            "train_images": len(splits["train"][0]),
            "validation_loss": float(history["validation_loss"][-1]),
            "validation": summary,
        }
        print(name, json.dumps(rows[name], default=float), flush=True)
    return rows


def report(rows, factor, unit, keys=None):
    """Each layer's seconds, and the ratio to torch's dropout when both ran."""
    for key in keys or next(iter(rows.values())):
        cells = "   ".join(f"{name} {row[key] * factor:8.1f} {unit}" for name, row in rows.items())
        ratio = ""
        if len(rows) == 2:
            base, fast = (row[key] for row in rows.values())
            ratio = f"   x{base / fast:.2f}"
        print(f"{key:18s} {cells}{ratio}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run's directory (holding results/simulate/training_*)")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    parser.add_argument("--epochs", type=int, help="default: bnn.epochs")
    parser.add_argument("--rate-index", type=int, default=1)
    parser.add_argument("--mass-model", default="sie", choices=sorted(bnn.TARGETS))
    parser.add_argument("--threads", type=int, default=1, help="the rule's default `bnn.threads`")
    parser.add_argument(
        "--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS), help="one per process to time side by side"
    )
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = hlconfig.load(*args.config)
    out = {"steps": step_costs(cfg["bnn"], args.layers)}
    report(out["steps"], 1e3, "ms")
    if args.run:
        epochs = args.epochs or cfg["bnn"]["epochs"]
        out["training"] = full_training(args.run, cfg, args.mass_model, args.rate_index, epochs, args.layers)
        report(out["training"], 1, "s", ("training_s", "assess_s"))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
