"""The GPU rules on a GPU: train_classifier's and train_bnn's own training code, GPU against one CPU thread.

Trains M21's classifier (on `results/trainingset/slacs`) and one P21 BNN (on
`results/simulate/training_<mass model>`, the first dropout rate) from a run's
shards with the rules' settings, for `--epochs` epochs, on each device asked for.
Each device trains `--repeats` times from scratch: the weights' SHA-256 must agree
between repeats (torch's deterministic algorithms, seeded generators), and the
first repeat's validation loss is printed beside the CPU's. Ratios are against
the first device (the CPU baseline: the rules' default of one thread).

    python benchmarks/gpu_training.py --run RUN_DIR [--config ...] [--devices cpu cuda] [--epochs 3]
        [--repeats 2] [--loader-workers 0 4] [--cpu-threads 1] [--mass-model sie] [--json OUT.json]
"""

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import torch

from hybridlens import config as hlconfig
from hybridlens.networks import bnn, bnn_training, training


def weights_digest(model):
    """SHA-256 over every tensor's name, dtype, shape and bytes: equal digests mean identical networks."""
    h = hashlib.sha256()
    for name, values in training.state_arrays(model).items():
        h.update(f"{name}:{values.dtype}:{values.shape}".encode())
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def classifier_job(results, cfg):
    """(images per epoch, train(settings, checkpoint) -> (model, history)) of M21's classifier."""
    shards = sorted((results / "trainingset" / "slacs").glob("shard-*.h5"))
    splits = training.split_by_lens(training.catalogue(shards), cfg["classifier"]["split"], cfg["seed"])
    return len(splits["train"]), lambda settings, checkpoint: training.train(
        splits, settings, checkpoint, cfg["seed"], log=lambda *_: None
    )


def bnn_job(results, cfg, mass_model):
    """(images per epoch, train(settings, checkpoint) -> (model, history)) of one BNN (the first dropout rate)."""
    scaling = bnn.TargetScaling.for_ranges(mass_model, cfg["simulate_training"]["lens"])
    shards = sorted((results / "simulate" / f"training_{mass_model}").glob("shard-*.h5"))
    splits = bnn_training.split(*bnn_training.catalogue(shards, scaling.names), cfg["bnn"]["split"], cfg["seed"])
    dropout = cfg["bnn"]["dropout_rates"][0]
    return len(splits["train"][0]), lambda settings, checkpoint: bnn_training.train(
        splits, scaling, settings, dropout, checkpoint, cfg["seed"], log=lambda *_: None
    )


def measure(name, job, base_settings, variants, epochs, repeats, cpu_threads):
    """One row per (device, settings overrides): seconds per epoch (validation pass included), images/s,
    validation loss, and whether the weights' digests agree over the repeats (one on the CPU, whose
    determinism the tests check)."""
    n_images, train = job
    rows = []
    for device, overrides in variants:
        torch.set_num_threads(cpu_threads)
        settings = {**base_settings, **overrides, "device": device, "epochs": epochs, "progress_bar": False}
        digests, seconds, losses = [], [], []
        for _ in range(repeats if device != "cpu" else 1):
            with tempfile.TemporaryDirectory() as scratch:
                began = time.perf_counter()
                model, history = train(settings, Path(scratch) / "checkpoint.pt")
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - began)
            digests.append(weights_digest(model))
            losses.append(float(history["validation_loss"][-1]))
            epoch_seconds = float(np.median(history["epoch_seconds"]))
        rows.append(
            {
                "network": name,
                "device": device if device != "cuda" else torch.cuda.get_device_name(),
                "overrides": overrides,
                "cpu_threads": cpu_threads if device == "cpu" else None,
                "train_images": n_images,
                "epochs": epochs,
                "seconds_per_epoch": epoch_seconds,
                "images_per_second": n_images / epoch_seconds,
                "wall_seconds": seconds,
                "validation_loss": losses[0],
                "repeats": len(digests),
                "repeats_identical": len(set(digests)) == 1 if len(digests) > 1 else None,
                "weights_sha256": digests[0],
            }
        )
        print(
            f"{name:10s} {label(rows[-1]):>36s}: {epoch_seconds:7.2f} s/epoch ({rows[-1]['images_per_second']:6.0f} "
            f"training images/s), validation loss {losses[0]:.4f}, {len(digests)} repeats identical: "
            f"{rows[-1]['repeats_identical']}",
            flush=True,
        )
    for row in rows[1:]:
        row["speedup_vs_first"] = rows[0]["seconds_per_epoch"] / row["seconds_per_epoch"]
        print(f"{name:10s} {label(row)} is {row['speedup_vs_first']:.1f}x {label(rows[0])} per epoch")
    return rows


def label(row):
    threads = f", {row['cpu_threads']} thread(s)" if row["cpu_threads"] else ""
    extra = "".join(f", {key} {value}" for key, value in row["overrides"].items())
    return f"{row['device']}{threads}{extra}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT), help="a run's directory (holding results/)")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="trainings per GPU variant (one on the CPU)")
    parser.add_argument(
        "--loader-workers", nargs="+", type=int, default=[0], help="the classifier's DataLoader workers tried on GPU"
    )
    parser.add_argument("--cpu-threads", type=int, default=1, help="the rules' default `threads`")
    parser.add_argument("--mass-model", default="sie", choices=sorted(bnn.TARGETS))
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    cfg = hlconfig.load(*args.config)
    results = Path(args.run) / "results"
    if torch.cuda.is_available():
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")
    rows = measure(
        "classifier",
        classifier_job(results, cfg),
        cfg["classifier"],
        [
            (device, {} if device == "cpu" else {"loader_workers": n})
            for device in args.devices
            for n in ([0] if device == "cpu" else args.loader_workers)
        ],
        args.epochs,
        args.repeats,
        args.cpu_threads,
    )
    rows += measure(
        f"bnn_{args.mass_model}",
        bnn_job(results, cfg, args.mass_model),
        cfg["bnn"],
        [(device, {}) for device in args.devices],
        args.epochs,
        args.repeats,
        args.cpu_threads,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
