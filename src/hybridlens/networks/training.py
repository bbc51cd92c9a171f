"""Training the reconstruction classifier from training-set shards.

Pairs are read from the HDF5 shards on demand (one compressed chunk per image),
so 300,000 pairs never sit in memory. Splits are by lens, not by pair: the three
reconstructions of one lens share its noise and source, and must not straddle
train and test. Every epoch ends with an atomic checkpoint (model, optimiser,
scaler, history, every RNG training draws from) keyed by a digest of the settings
and data; a killed run resumes from it and ends with the weights an uninterrupted
run would have had, while a checkpoint of other settings or data is discarded.
"""

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hybridlens.networks.classifier import (
    FastClassifier,
    ReconstructionClassifier,
    augment,
    mc_dropout_averaged,
    normalise,
    view_averaged,
)
from hybridlens.vocabulary import CLASSIFIER_INFERENCE_SETTINGS, IMAGE_PLANE_MAPS

SPLITS = ("train", "validation", "test")
# Settings that change neither the arithmetic nor the data of training. `epochs`
# only says where to stop (the first k epochs do not depend on it), so raising it
# continues a finished run instead of repeating it.
UNDIGESTED_SETTINGS = frozenset(
    {"progress_bar", "loader_workers", "device", "epochs", "threads", *CLASSIFIER_INFERENCE_SETTINGS}
)


@dataclass(frozen=True, slots=True)
class TrainingEntry:
    """One usable row of a shard: where it lies, its class label and the lens it belongs to.

    The BNN, a regression, labels every entry 0; its `lens_index` is the image's index.
    """

    path: str
    row: int
    label: int
    lens_index: int


def image_channels(settings):
    """The image-plane maps the residual's path takes beside the residual (`classifier.image_channels`)."""
    names = tuple(settings.get("image_channels") or ())
    unknown = [name for name in names if name not in IMAGE_PLANE_MAPS]
    if unknown:
        raise ValueError(f"classifier.image_channels: {unknown} not among {list(IMAGE_PLANE_MAPS)}")
    return names


class PairShards(Dataset):
    """(source, residual, label) pairs of selected `TrainingEntry` rows across training-set shards.

    The residual is stacked with the shard's `channels` (`image_channels`).
    """

    def __init__(self, entries, channels=()):
        self.entries = entries
        self.channels = tuple(channels)
        self._files = {}

    def __len__(self):
        return len(self.entries)

    def _file(self, path):
        if path not in self._files:
            h5 = h5py.File(path, "r")
            missing = [name for name in self.channels if name not in h5]
            if missing:
                h5.close()
                raise KeyError(f"{path}: no {missing} (a shard older than classifier.image_channels: remake it)")
            self._files[path] = h5
        return self._files[path]

    def __getitem__(self, i):
        entry = self.entries[i]
        h5 = self._file(entry.path)
        row = entry.row
        maps = [h5[name][row] for name in self.channels]
        source, residual = network_inputs(h5["source"][row], h5["residual"][row], h5["chi_squared_map"][row], maps)
        return source, residual, int(entry.label)


def network_inputs(source, residual, chi_squared_map, maps=()):
    """One pair as the classifier sees it: peak-normalised source (1, H, W); noise-scaled residual
    stacked with the image-plane `maps` (1 + len(maps), H, W)."""
    source = normalise(torch.from_numpy(np.asarray(source, np.float32)[None]))
    residual = noise_scaled_residual(np.asarray(residual), np.asarray(chi_squared_map))
    stacked = np.stack([residual, *(np.asarray(m, float) for m in maps)]).astype(np.float32)
    return source, torch.from_numpy(stacked)


def noise_scaled_residual(residual, chi_squared_map):
    """asinh of the residual in units of the noise (sign of the residual, size from chi^2).

    Unlike a peak-normalised residual this keeps how badly a model fits, the
    strongest clue to an unphysical solution; asinh tames the dynamic range.
    """
    return np.arcsinh(np.sign(residual) * np.sqrt(np.clip(chi_squared_map, 0.0, None)))


def catalogue(paths):
    """Usable pairs of the shards: a `TrainingEntry` for every unflagged row."""
    entries = []
    for path in paths:
        with h5py.File(path, "r") as h5:
            labels, flags, index = h5["params/label"][()], h5["flags"][()], h5["index"][()]
        entries += [
            TrainingEntry(str(path), int(row), int(labels[row]), int(index[row])) for row in np.flatnonzero(flags == 0)
        ]
    return entries


def split_groups(entries_by_split):
    """{"split_<name>": columns} of each split's entries: the HDF5 groups `split_from_hdf5` reads back."""
    return {
        f"split_{name}": {
            "shard": np.array([entry.path for entry in rows], dtype="S"),
            "row": np.array([entry.row for entry in rows], dtype=np.int64),
            "label": np.array([entry.label for entry in rows], dtype=np.int64),
            "lens_index": np.array([entry.lens_index for entry in rows], dtype=np.int64),
        }
        for name, rows in entries_by_split.items()
    }


def split_from_hdf5(path, name):
    """The entries of split `name` a trained network's HDF5 recorded: its test pairs are scored by them."""
    with h5py.File(path, "r") as h5:
        if f"split_{name}" not in h5:
            raise KeyError(f"{path}: no 'split_{name}' group (a network trained before splits were stored?)")
        group = h5[f"split_{name}"]
        columns = (group["shard"][()].astype(str), group["row"][()], group["label"][()], group["lens_index"][()])
    return [TrainingEntry(str(shard), int(row), int(label), int(lens)) for shard, row, label, lens in zip(*columns)]


def split_by_lens(entries, fractions, seed):
    """Assign whole lenses to train / validation / test with the given fractions."""
    lenses = np.unique([entry.lens_index for entry in entries])
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))).permutation(lenses)
    n_val = int(round(fractions["validation"] * len(order)))
    n_test = int(round(fractions["test"] * len(order)))
    groups = {"validation": set(order[:n_val]), "test": set(order[n_val : n_val + n_test])}
    groups["train"] = set(order[n_val + n_test :])
    return {name: [entry for entry in entries if entry.lens_index in groups[name]] for name in SPLITS}


def training_digest(entries_by_split, settings, seed):
    """SHA-256 of what determines a training run: settings, seed, split rows, shard provenance.

    Every (split, shard, row, label, lens) enters, held-out rows included, so any
    change of split is another run; so does each shard's `config_sha256`, so
    regenerated shards with the same row layout still count as new data.
    """
    h = hashlib.sha256()
    kept = {key: value for key, value in settings.items() if key not in UNDIGESTED_SETTINGS}
    h.update(json.dumps({"settings": kept, "seed": int(seed)}, sort_keys=True, separators=(",", ":")).encode())
    shards = set()
    for name in SPLITS:
        h.update(f"\n[{name}]\n".encode())
        for entry in entries_by_split.get(name, ()):
            h.update(f"{entry.path}\t{int(entry.row)}\t{int(entry.label)}\t{int(entry.lens_index)}\n".encode())
            shards.add(str(entry.path))
    for path in sorted(shards):
        with h5py.File(path, "r") as h5:
            stamp = h5.attrs.get("config_sha256", "")
        h.update(f"{path}\t{stamp.decode() if isinstance(stamp, bytes) else stamp}\n".encode())
    return h.hexdigest()


def _rng_state(generator, device):
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state, generator, device):
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _resumable(checkpoint, digest, epochs, log):
    """The checkpoint's state if it was made by these settings and data and not past `epochs`, else None."""
    if not Path(checkpoint).exists():
        return None
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if state.get("digest") != digest:
        log(
            f"checkpoint {checkpoint} was made by other settings or data (digest {str(state.get('digest'))[:12]}... "
            f"!= {digest[:12]}...); starting afresh"
        )
        return None
    if state["epoch"] > epochs:
        log(f"checkpoint {checkpoint} is {state['epoch']} epochs in, past the {epochs} asked for; starting afresh")
        return None
    return state


def resume(checkpoint, digest, epochs, log, model, optimiser, scaler, generator, device, history):
    """Load a matching checkpoint into the training objects; returns (history, first epoch to run)."""
    state = _resumable(checkpoint, digest, epochs, log)
    if state is None:
        return history, 0
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"], generator, device)
    log(f"resuming after epoch {state['epoch']} from {checkpoint}")
    return state["history"], state["epoch"]


def save_checkpoint(checkpoint, digest, epoch, model, optimiser, scaler, generator, device, history):
    """Everything `resume` needs, written atomically at the end of an epoch."""
    _save_atomic(
        {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_state(generator, device),
            "history": history,
            "epoch": epoch,
            "digest": digest,
        },
        checkpoint,
    )


@contextmanager
def deterministic():
    """Torch's deterministic algorithms while training (same data, seed, threads, machine: same weights).

    On a GPU cuBLAS needs a fixed workspace for that; the setting is restored afterwards.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def device_for(preference="auto"):
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def build_model(settings):
    return ReconstructionClassifier(
        input_shape=tuple(settings["input_shape"]),
        filters=tuple(settings["filters"]),
        kernel_sizes=tuple(settings["kernel_sizes"]),
        dropout=settings["dropout"],
        dense=settings["dense"],
        residual_channels=1 + len(image_channels(settings)),
    )


def _loader(entries, settings, shuffle, generator):
    return DataLoader(
        PairShards(entries, image_channels(settings)),
        batch_size=settings["batch_size"],
        shuffle=shuffle,
        generator=generator,
        num_workers=settings["loader_workers"],
    )


def _save_atomic(state, path):
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_epoch(model, loader, device, optimiser=None, scaler=None, generator=None, progress=None):
    """One pass; trains when `optimiser` is given. Returns (mean loss, accuracy)."""
    training = optimiser is not None
    model.train(training)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct, seen = 0.0, 0, 0
    use_amp = device.type == "cuda"
    with torch.set_grad_enabled(training):
        for source, residual, label in loader:
            if training:
                source, residual = augment(source, residual, generator)
            source, residual, label = source.to(device), residual.to(device), label.to(device)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                logits = model(source, residual)
                loss = loss_fn(logits, label)
            if training:
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss / len(label)).backward()
                scaler.step(optimiser)
                scaler.update()
            total_loss += float(loss.detach())
            correct += int((logits.argmax(1) == label).sum())
            seen += len(label)
            if progress is not None:
                progress.update(len(label))
    return total_loss / max(seen, 1), correct / max(seen, 1)


def train(entries_by_split, settings, checkpoint, seed, log=print):
    """Train (or resume) to `settings['epochs']`; returns the model and its history.

    Resuming restores every RNG the epochs draw from (the shuffle and augmentation
    generator, torch's global RNG behind dropout, CUDA's on GPU), so on a
    deterministic device a resumed run ends with the same weights as one never
    interrupted.
    """
    from tqdm import tqdm

    digest = training_digest(entries_by_split, settings, seed)
    torch.manual_seed(seed)
    device = device_for(settings["device"])
    model = build_model(settings).to(device)
    optimiser = torch.optim.NAdam(model.parameters(), lr=settings["learning_rate"])
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    history = {
        key: [] for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "epoch_seconds")
    }
    objects = (model, optimiser, scaler, generator, device)
    history, start_epoch = resume(checkpoint, digest, settings["epochs"], log, *objects, history)
    train_loader = _loader(entries_by_split["train"], settings, True, generator)
    validation_loader = _loader(entries_by_split["validation"], settings, False, None)
    with deterministic():
        for epoch in range(start_epoch, settings["epochs"]):
            began = time.perf_counter()
            with tqdm(
                total=len(train_loader.dataset),
                desc=f"epoch {epoch + 1}/{settings['epochs']}",
                disable=not settings["progress_bar"],
            ) as bar:
                train_loss, train_acc = run_epoch(model, train_loader, device, optimiser, scaler, generator, bar)
            val_loss, val_acc = run_epoch(model, validation_loader, device)
            for key, value in zip(history, (train_loss, train_acc, val_loss, val_acc, time.perf_counter() - began)):
                history[key].append(value)
            log(
                f"epoch {epoch + 1}: loss {train_loss:.4f} acc {train_acc:.3f} | val loss {val_loss:.4f} "
                f"acc {val_acc:.3f} | {history['epoch_seconds'][-1]:.1f} s on {device}"
            )
            save_checkpoint(checkpoint, digest, epoch + 1, *objects, history)

    return model, history


def probabilities_of(model, settings):
    """`(source, residual) -> class probabilities` as `settings` judge: `views` symmetries, and
    `mc_passes` > 1 MC-dropout passes averaged (else one deterministic pass, on the fast path)."""
    views, passes = int(settings.get("views", 1)), int(settings.get("mc_passes") or 1)
    if passes > 1:
        return lambda source, residual: mc_dropout_averaged(model, source, residual, views, passes)
    fast = FastClassifier(model)
    return lambda source, residual: view_averaged(fast, source, residual, views)


def classify(model, sources, residuals, chi_squared_maps, maps=None, settings=None):
    """Class probabilities (under, correct, over) of in-memory pairs, e.g. a fresh fit's products.

    `maps`: per pair, its image-plane maps in the order of `image_channels` (None: none);
    `settings`: the classifier's (`views`, `mc_passes`; None: one deterministic pass).
    """
    maps = maps if maps is not None else [()] * len(sources)
    pairs = [network_inputs(*pair) for pair in zip(sources, residuals, chi_squared_maps, maps)]
    if not pairs:
        return np.zeros((0, 3))
    source, residual = (torch.stack(parts) for parts in zip(*pairs))
    return probabilities_of(model, settings or {})(source, residual).cpu().numpy()


def predict(model, entries, settings, batch_size=256):
    """Class probabilities of `entries` as `settings` judge (`probabilities_of`)."""
    judge = probabilities_of(model, settings)
    out = []
    for source, residual, _ in _loader(entries, {**settings, "batch_size": batch_size}, False, None):
        out.append(judge(source, residual).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def state_arrays(model):
    """A model's state dict as numpy arrays (shapes and dtypes kept): the `weights` group of its HDF5."""
    return {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}


def state_from_hdf5(path, group="weights"):
    """The state dict written by `state_arrays` into `path`: a network loads from its HDF5 alone."""
    with h5py.File(path, "r") as h5:
        if group not in h5:
            raise KeyError(f"{path}: no '{group}' group (written before weights were stored in HDF5?)")
        return {name: torch.as_tensor(np.asarray(h5[group][name][()])) for name in h5[group]}


def classifier_from_hdf5(path, settings, device="cpu"):
    """`classify(products) -> (p_under, p_correct, p_over)` of the classifier stored in `path`."""
    model = build_model(settings)
    model.load_state_dict(state_from_hdf5(path))
    model.to(device)
    return products_classifier(model, settings)


def products_classifier(model, settings):
    """`classify(products) -> (p_under, p_correct, p_over)` of `model`, fed the maps `settings` names."""
    channels = image_channels(settings)

    def classify_products(products):
        maps = [[getattr(products, name) for name in channels]]
        sources, residuals, chi_squared_maps = [products.source], [products.residual], [products.chi_squared_map]
        return classify(model, sources, residuals, chi_squared_maps, maps, settings)[0]

    return classify_products
