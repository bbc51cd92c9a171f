"""Training and MC-dropout prediction of P21's BNN from simulation shards.

Images are read from the HDF5 shards a batch at a time (P21's 100,000 images
never sit in memory). Splits are by image index with their own seed stream.
Every epoch ends with an atomic checkpoint keyed by a digest of the settings,
the dropout rate, the seed and every split row with its shard's provenance: a
checkpoint of another config or data is discarded (logged), a matching one
resumes with every RNG restored, so a resumed run ends where an uninterrupted
one would.
"""

import time
from dataclasses import dataclass

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hybridlens.networks import bnn
from hybridlens.networks.training import (
    SPLITS,
    TrainingEntry,
    device_for,
    resume,
    save_checkpoint,
    state_from_hdf5,
    training_digest,
)

UNDIGESTED = frozenset({"progress_bar", "loader_workers", "device", "epochs", "dropout_rates", "mc_passes", "threads"})


class LensImages(Dataset):
    """(scaled image, scaled target) of selected `TrainingEntry` rows."""

    def __init__(self, entries, targets):
        self.entries, self.targets = entries, torch.as_tensor(targets, dtype=torch.float32)
        self._files = {}

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        entry = self.entries[i]
        if entry.path not in self._files:
            self._files[entry.path] = h5py.File(entry.path, "r")
        return bnn.scale_images(self._files[entry.path]["image"][entry.row][None]), self.targets[i]


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
    return training_digest({name: rows for name, (rows, _) in splits.items()}, {**kept, "dropout": dropout}, seed)


def _loader(entries, targets, scaling, settings, shuffle, generator):
    return DataLoader(
        LensImages(entries, scaling.scale(targets)),
        batch_size=settings["batch_size"],
        shuffle=shuffle,
        generator=generator,
        num_workers=settings["loader_workers"],
    )


@dataclass(frozen=True)
class StepSettings:
    """What a training step does besides the loss: symmetry augmentation and gradient clipping."""

    scaling: bnn.TargetScaling
    generator: torch.Generator
    augment: bool
    grad_clip: float | None


def run_epoch(model, loader, device, optimiser=None, scaler=None, progress=None, step=None):
    """One pass of the heteroscedastic loss; trains when `optimiser` is given. Returns the mean loss."""
    training = optimiser is not None
    model.train(training)
    total, seen = 0.0, 0
    with torch.set_grad_enabled(training):
        for images, targets in loader:
            if training and step.augment:
                images, targets = bnn.symmetry_augment(images, targets, step.scaling, step.generator)
            images, targets = images.to(device), targets.to(device)
            with torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
                mean, log_variance = model(images)
            loss = bnn.heteroscedastic_nll(mean.float(), log_variance.float(), targets)
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


def train(splits, scaling, settings, dropout, checkpoint, seed, log=print):
    """Train (or resume) one BNN to `settings['epochs']`; returns the model and its history."""
    from tqdm import tqdm

    key = digest(splits, settings, dropout, seed)
    torch.manual_seed(seed)
    device = device_for(settings["device"])
    model = bnn.LensBNN(len(scaling.names), dropout, settings["width"]).to(device)
    optimiser = torch.optim.NAdam(model.parameters(), lr=settings["learning_rate"])
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "validation_loss": [], "epoch_seconds": []}
    objects = (model, optimiser, scaler, generator, device)
    history, start = resume(checkpoint, key, settings["epochs"], log, *objects, history)
    train_loader = _loader(*splits["train"], scaling, settings, True, generator)
    validation_loader = _loader(*splits["validation"], scaling, settings, False, None)
    for epoch in range(start, settings["epochs"]):
        began = time.perf_counter()
        with tqdm(
            total=len(train_loader.dataset),
            desc=f"epoch {epoch + 1}/{settings['epochs']}",
            disable=not settings["progress_bar"],
        ) as bar:
            step = StepSettings(scaling, generator, settings["augment"], settings["grad_clip"])
            train_loss = run_epoch(model, train_loader, device, optimiser, scaler, bar, step)
        validation_loss = run_epoch(model, validation_loader, device)
        for name, value in zip(history, (train_loss, validation_loss, time.perf_counter() - began)):
            history[name].append(value)
        log(
            f"epoch {epoch + 1}: loss {train_loss:.4f} | validation {validation_loss:.4f} | "
            f"{history['epoch_seconds'][-1]:.1f} s on {device}"
        )
        save_checkpoint(checkpoint, key, epoch + 1, *objects, history)
    return model, history


def read_images(entries):
    """Scaled (N, 1, H, W) images of the entries, one shard at a time."""
    by_path = {}
    for position, entry in enumerate(entries):
        by_path.setdefault(entry.path, []).append((position, entry.row))
    images = [None] * len(entries)
    for path, rows in by_path.items():
        with h5py.File(path, "r") as h5:
            for position, row in rows:
                images[position] = h5["image"][row]
    out = np.stack(images) if images else np.zeros((0, 100, 100), np.float32)
    return bnn.scale_images(out[:, None])


def predict(model, entries, scaling, passes, batch_size=500, seed=0):
    """MC-dropout predictions in physical units: {name: (mean, sigma)} incl. q and phi from (e1, e2)."""
    return predict_images(model, read_images(entries), scaling, passes, batch_size, seed)


def predict_images(model, images, scaling, passes, batch_size=500, seed=0):
    """`predict` for images already scaled by `bnn.scale_images` ((N, 1, H, W)), e.g. a user's cutout."""
    prediction = bnn.mc_predict(model, images, passes, batch_size, seed)
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


def assess(model, entries, scaling, passes, train_entries, seed=0):
    """MC predictions of `entries`, their truths and the Table-1-form summary (with the trivial predictor)."""
    names = reported_names(scaling)
    predictions = predict(model, entries, scaling, passes, seed=seed)
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
    model = bnn.LensBNN(len(scaling.names), float(attrs["dropout"]), float(attrs["width"]))
    model.load_state_dict(state_from_hdf5(model_file))
    return model.to(device), scaling, attrs


def prediction_columns(predictions, truth=None):
    """Flat HDF5 columns: <name>_mean, <name>_sigma (and true_<name>)."""
    columns = {}
    for name, (mean, sigma) in predictions.items():
        columns[f"{name}_mean"], columns[f"{name}_sigma"] = np.asarray(mean, float), np.asarray(sigma, float)
    for name, values in (truth or {}).items():
        columns[f"true_{name}"] = np.asarray(values, float)
    return columns
