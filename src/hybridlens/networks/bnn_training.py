"""Training and MC-dropout prediction of P21's BNN from simulation shards.

Images are read from the HDF5 shards a batch at a time (P21's 100,000 images
never sit in memory). Splits are by image index with their own seed stream.
Every epoch ends with an atomic checkpoint keyed by a digest of the settings,
the dropout rate, the seed and every split row with its shard's provenance: a
checkpoint of another config or data is discarded (logged), a matching one
resumes with every RNG restored, so a resumed run ends where an uninterrupted
one would.
"""

import math
import time
from dataclasses import dataclass

import h5py
import numpy as np
import torch
from torch import nn

from hybridlens.networks import bnn
from hybridlens.networks.training import (
    SPLITS,
    TrainingEntry,
    deterministic,
    device_for,
    resume,
    save_checkpoint,
    state_from_hdf5,
    training_digest,
)

UNDIGESTED = frozenset({"progress_bar", "device", "epochs", "dropout_rates", "mc_passes", "threads"})


def catalogue(paths, names):
    """Unflagged images of the shards: `TrainingEntry`s (label 0, the image index) and their physical targets."""
    entries, targets = [], []
    for path in paths:
        with h5py.File(path, "r") as h5:
            params = {name: h5["params"][name][()] for name in h5["params"]}
            flags, index = h5["flags"][()], h5["index"][()]
        good = np.flatnonzero(flags == 0)
        entries += [TrainingEntry(str(path), int(row), 0, int(index[row])) for row in good]
        targets.append(bnn.targets_from_params({k: v[good] for k, v in params.items()}, names))
    return entries, (np.concatenate(targets) if targets else np.zeros((0, len(names))))


def split(entries, targets, fractions, seed):
    """Train / validation / test by image, with a seed stream of its own: {split: (entries, targets)}."""
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(11,))).permutation(len(entries))
    n_val, n_test = (int(round(fractions[name] * len(order))) for name in ("validation", "test"))
    parts = {"validation": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {name: ([entries[i] for i in np.sort(rows)], targets[np.sort(rows)]) for name, rows in parts.items()}


def digest(splits, settings, dropout, seed):
    kept = {key: value for key, value in settings.items() if key not in UNDIGESTED}
    if settings.get("lr_schedule", "constant") != "constant":
        # a decaying learning rate depends on the length of the run: then `epochs` changes the arithmetic
        kept["schedule_epochs"] = settings["epochs"]
    return training_digest({name: rows for name, (rows, _) in splits.items()}, {**kept, "dropout": dropout}, seed)


@dataclass(frozen=True)
class SplitImages:
    """One split in memory: stored noisy images, noiseless models and noise maps (N, 1, H, W), scaled targets.

    Training draws the survey's noise afresh every epoch from `model` and
    `noise_map` (Gaussian: every Euclid pixel collects > 1,000 e- of sky and dark
    current, so Poisson counts are Gaussian to < 1 %), so the network never sees
    one realisation twice; validation and test use the stored realisation, fixed.
    """

    image: torch.Tensor
    model: torch.Tensor
    noise_map: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def read(cls, entries, targets, scaling):
        arrays = read_arrays(entries, ("image", "model_image", "noise_map"))
        image, model, noise_map = (torch.from_numpy(arrays[name][:, None]) for name in arrays)
        return cls(image, model, noise_map, torch.as_tensor(scaling.scale(targets), dtype=torch.float32))

    def __len__(self):
        return len(self.targets)

    def batches(self, batch_size, generator=None, fresh_noise=False):
        """(scaled images, targets) batches: shuffled by `generator` when given, noise redrawn when `fresh_noise`."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            if fresh_noise:
                noise = torch.randn(self.model[rows].shape, generator=generator)
                images = self.model[rows] + self.noise_map[rows] * noise
            else:
                images = self.image[rows]
            yield bnn.scale_images(images), self.targets[rows]


@dataclass(frozen=True)
class StepSettings:
    """What a training step does besides the loss: symmetry augmentation and gradient clipping."""

    scaling: bnn.TargetScaling
    generator: torch.Generator
    augment: bool
    grad_clip: float | None
    fresh_noise: bool = False
    loss_beta: float = 0.0


def run_epoch(model, images, batch_size, device, optimiser=None, scaler=None, progress=None, step=None):
    """One pass of the heteroscedastic loss over a `SplitImages`; trains when `optimiser` is given. Mean loss."""
    training = optimiser is not None
    model.train(training)  # validation without dropout: single dropout passes make rare huge NLLs
    total, seen = 0.0, 0
    batches = images.batches(batch_size, step.generator, step.fresh_noise) if training else images.batches(batch_size)
    with torch.set_grad_enabled(training):
        for inputs, targets in batches:
            if training and step.augment:
                inputs, targets = bnn.symmetry_augment(inputs, targets, step.scaling, step.generator)
            inputs, targets = inputs.to(device), targets.to(device)
            with torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
                mean, log_variance = model(inputs)
            loss = bnn.heteroscedastic_nll(mean.float(), log_variance.float(), targets, step.loss_beta)
            if training:
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if step.grad_clip:
                    # the NLL's exp(-s) makes rare huge steps that send s and the means off: clip them
                    scaler.unscale_(optimiser)
                    nn.utils.clip_grad_norm_(model.parameters(), step.grad_clip)
                scaler.step(optimiser)
                scaler.update()
            total += float(loss.detach()) * len(targets)
            seen += len(targets)
            if progress is not None:
                progress.update(len(targets))
    return total / max(seen, 1)


def build_model(n_targets, dropout, settings, input_size=100):
    """The BNN of these settings (width, binning) for `n_targets` outputs."""
    return bnn.LensBNN(n_targets, dropout, settings["width"], input_size=input_size, binning=settings["binning"])


def learning_rate(settings, epoch):
    """The epoch's learning rate: constant, or cosine-annealed from `learning_rate` to 0 over `epochs`.

    A pure function of the epoch, so a resumed run follows the same schedule.
    """
    if settings.get("lr_schedule", "constant") == "constant":
        return settings["learning_rate"]
    return settings["learning_rate"] * 0.5 * (1.0 + math.cos(math.pi * epoch / settings["epochs"]))


def train(splits, scaling, settings, dropout, checkpoint, seed, log=print):
    """Train (or resume) one BNN to `settings['epochs']`; returns the model and its history.

    Deterministic: seeded weights, shuffles, noise and augmentation, and torch's
    deterministic algorithms, so the same settings, data, seed, thread count and
    machine give the same bytes.
    """
    from tqdm import tqdm

    key = digest(splits, settings, dropout, seed)
    torch.manual_seed(seed)
    device = device_for(settings["device"])
    data = {name: SplitImages.read(*splits[name], scaling) for name in ("train", "validation")}
    model = build_model(len(scaling.names), dropout, settings, data["train"].image.shape[-1]).to(device)
    optimiser = torch.optim.NAdam(model.parameters(), lr=settings["learning_rate"])
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "validation_loss": [], "epoch_seconds": [], "training_seconds": []}
    objects = (model, optimiser, scaler, generator, device)
    history, start = resume(checkpoint, key, settings["epochs"], log, *objects, history)
    step = StepSettings(
        scaling,
        generator,
        settings["augment"],
        settings["grad_clip"],
        settings["fresh_noise"],
        settings.get("loss_beta", 0.0),
    )
    with deterministic():
        for epoch in range(start, settings["epochs"]):
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(settings, epoch)
            began = time.perf_counter()
            with tqdm(
                total=len(data["train"]),
                desc=f"epoch {epoch + 1}/{settings['epochs']}",
                disable=not settings["progress_bar"],
            ) as bar:
                train_loss = run_epoch(
                    model, data["train"], settings["batch_size"], device, optimiser, scaler, bar, step
                )
            trained = time.perf_counter() - began
            validation_loss = run_epoch(model, data["validation"], 500, device, step=step)
            values = (train_loss, validation_loss, time.perf_counter() - began, trained)
            for name, value in zip(history, values):
                history[name].append(value)
            log(
                f"epoch {epoch + 1}: loss {train_loss:.4f} | validation {validation_loss:.4f} | "
                f"{history['epoch_seconds'][-1]:.1f} s ({len(data['train']) / trained:.0f} training images/s) "
                f"on {device}"
            )
            save_checkpoint(checkpoint, key, epoch + 1, *objects, history)
    return model, history


def read_arrays(entries, names=("image",)):
    """{name: (N, H, W) float32} of the entries, in their order, one shard (and one read per array) at a time."""
    by_path = {}
    for position, entry in enumerate(entries):
        by_path.setdefault(entry.path, []).append((entry.row, position))
    out = {}
    for path, pairs in by_path.items():
        rows, positions = (np.asarray(column) for column in zip(*sorted(pairs)))
        with h5py.File(path, "r") as h5:
            for name in names:
                values = h5[name][rows] if len(rows) == len(np.unique(rows)) else h5[name][()][rows]
                out.setdefault(name, np.zeros((len(entries), *values.shape[1:]), np.float32))[positions] = values
    return {name: out.get(name, np.zeros((0, 100, 100), np.float32)) for name in names}


def read_images(entries):
    """Scaled (N, 1, H, W) images of the entries, as the network sees them."""
    return bnn.scale_images(read_arrays(entries)["image"][:, None])


def predict(model, entries, scaling, passes, batch_size=500, seed=0, factors=None):
    """MC-dropout predictions in physical units: {name: (mean, sigma)} incl. q and phi from (e1, e2).

    `factors` {name: x}: the chosen network's sigma scale from `select_bnn` (None: raw MC sigmas).
    """
    return predict_images(model, read_images(entries), scaling, passes, batch_size, seed, factors)


def predict_images(model, images, scaling, passes, batch_size=500, seed=0, factors=None):
    """`predict` for images already scaled by `bnn.scale_images` ((N, 1, H, W)), e.g. a user's cutout."""
    prediction = bnn.mc_predict(model, images, passes, batch_size, seed, scaling=scaling)
    return bnn.rescaled(physical(prediction, scaling), factors or {})


def physical(prediction, scaling):
    """An `MCPrediction` in physical units ({name: (mean, sigma)}), q and phi added."""
    mean, sigma = scaling.unscale(prediction.mean, prediction.sigma)
    out = {name: (mean[:, i], sigma[:, i]) for i, name in enumerate(scaling.names)}
    out.update(bnn.with_axis_ratio_angle(scaling.names, mean, sigma))
    return out


def truths(entries, names):
    """Physical truths of entries (theta_E, q, phi[, slope]) from their shards."""
    by_path = {}
    for position, entry in enumerate(entries):
        by_path.setdefault(entry.path, []).append((position, entry.row))
    columns = {name: np.zeros(len(entries)) for name in names}
    for path, rows in by_path.items():
        with h5py.File(path, "r") as h5:
            for name in names:
                values = h5["params"][name][()]
                for position, row in rows:
                    columns[name][position] = values[row]
    return columns


__all__ = ["SPLITS", "catalogue", "split", "train", "predict", "truths"]


def reported_names(scaling):
    """The parameters reported in physical form: theta_E, q, phi and, for the power law, the slope."""
    return ["einstein_radius", "axis_ratio", "angle", *(["slope"] if "slope" in scaling.names else [])]


def training_mean(truth):
    """The trivial predictor: each parameter's training mean (phi's on its 180-degree circle)."""
    out = {name: float(np.mean(values)) for name, values in truth.items()}
    if "angle" in truth:
        out["angle"] = float(np.rad2deg(0.5 * np.angle(np.exp(2j * np.deg2rad(truth["angle"])).mean())) % 180.0)
    return out


def assess(model, entries, scaling, passes, train_entries, seed=0, factors=None):
    """MC predictions of `entries`, their truths and the Table-1-form summary (with the trivial predictor).

    `factors`: the chosen network's sigma scale (`bnn.sigma_scale`), applied before the summary.
    """
    names = reported_names(scaling)
    predictions = predict(model, entries, scaling, passes, seed=seed, factors=factors)
    truth = truths(entries, names)
    summary = bnn.evaluation_summary(
        {name: predictions[name] for name in names}, truth, training_mean(truths(train_entries, names))
    )
    return predictions, truth, summary


def load(model_file, device="cpu"):
    """A trained BNN and its target scaling from `train_bnn`'s HDF5 alone (weights included)."""
    import json

    with h5py.File(model_file, "r") as h5:
        attrs = dict(h5.attrs)
    ranges = json.loads(attrs["scaling"])
    scaling = bnn.TargetScaling(tuple(json.loads(attrs["targets"])), tuple(ranges["low"]), tuple(ranges["high"]))
    settings = {"width": float(attrs["width"]), "binning": int(attrs.get("binning", 1))}
    model = build_model(len(scaling.names), float(attrs["dropout"]), settings, int(attrs.get("input_size", 100)))
    model.load_state_dict(state_from_hdf5(model_file))
    return model.to(device), scaling, attrs


@dataclass(frozen=True)
class ChosenBNN:
    """`select_bnn`'s network: the chosen rate's model and scaling, and its sigma scale per parameter."""

    model: torch.nn.Module
    scaling: bnn.TargetScaling
    factors: dict
    dropout: float

    def predict_images(self, images, passes, seed=0):
        return predict_images(self.model, images, self.scaling, passes, seed=seed, factors=self.factors)


def load_chosen(chosen_file, device="cpu"):
    """The network `select_bnn` chose, with the sigma scale it found on the validation split."""
    import json

    from hybridlens import io

    chosen = io.read_attrs(chosen_file)
    model, scaling, attrs = load(chosen["model"], device)
    return ChosenBNN(model, scaling, json.loads(chosen["sigma_scale"]), float(attrs["dropout"]))


def calibration(model_file):
    """A trained rate's validation predictions and truths as `train_bnn` stored them: ({name: (mean, sigma)}, truth)."""
    with h5py.File(model_file, "r") as h5:
        columns = {name: h5["validation"][name][()] for name in h5["validation"]}
    names = [key.removeprefix("true_") for key in columns if key.startswith("true_")]
    predictions = {name: (columns[f"{name}_mean"], columns[f"{name}_sigma"]) for name in names}
    return predictions, {name: columns[f"true_{name}"] for name in names}


def prediction_columns(predictions, truth=None):
    """Flat HDF5 columns: <name>_mean, <name>_sigma (and true_<name>)."""
    columns = {}
    for name, (mean, sigma) in predictions.items():
        columns[f"{name}_mean"], columns[f"{name}_sigma"] = np.asarray(mean, float), np.asarray(sigma, float)
    for name, values in (truth or {}).items():
        columns[f"true_{name}"] = np.asarray(values, float)
    return columns
