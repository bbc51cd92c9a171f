"""Training P21's BNN from shards: entries and targets, splits, exact resume, MC predictions in physical units."""

import json

import h5py
import numpy as np
import pytest
import torch

from hybridlens import io
from hybridlens.flags import SimulationFlag
from hybridlens.networks import bnn, bnn_training
from hybridlens.networks.training import TrainingEntry, state_arrays

# --- training from shards: checkpoint keyed by settings and data, exact resume ----------------------

SMALL = {
    "width": 0.25,
    "augment": True,
    "grad_clip": 1.0,
    "learning_rate": 1e-3,
    "lr_schedule": "constant",
    "batch_size": 4,
    "epochs": 2,
    "mc_passes": 4,
    "split": {"validation": 0.25, "test": 0.25},
    "device": "cpu",
    "binning": 2,
    "fresh_noise": True,
    "progress_bar": False,
    "dropout_rates": [0.1],
}
LENS = {
    "einstein_radius": {"min": 0.2, "max": 3.2},
    "axis_ratio": {"min": 0.4, "max": 1.0},
    "slope": {"min": 1.5, "max": 2.5},
}


def random_truths(rng, n):
    """SIE parameters drawn over the training ranges."""
    return {
        "einstein_radius": rng.uniform(0.2, 3.2, n),
        "axis_ratio": rng.uniform(0.4, 1, n),
        "angle": rng.uniform(0, 180, n),
    }


@pytest.fixture(scope="module")
def shard_splits(tmp_path_factory):
    """A real shard of small random lenses (the training code never sees how they were made)."""
    rng = np.random.default_rng(4)
    n = 16
    path = tmp_path_factory.mktemp("bnn") / "shard-00000.h5"
    params = random_truths(rng, n)
    model = rng.random((n, 100, 100), np.float32)
    noise_map = np.full_like(model, 0.1)
    image = model + noise_map * rng.standard_normal(model.shape).astype(np.float32)
    io.write_shard(
        path,
        {"config_sha256": "x"},
        arrays={"image": image, "model_image": model, "noise_map": noise_map, "index": np.arange(n)},
        params=params,
        flags=np.zeros(n, np.uint8),
        flag_family=SimulationFlag,
    )
    scaling = bnn.TargetScaling.for_ranges("sie", LENS)
    return bnn_training.split(*bnn_training.catalogue([path], scaling.names), SMALL["split"], 3), scaling


def test_resumed_bnn_training_equals_an_uninterrupted_run(shard_splits, tmp_path):
    splits, scaling = shard_splits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight, history = bnn_training.train(splits, scaling, SMALL, 0.1, tmp_path / "a.pt", 5, log=lambda _: None)
        checkpoint = tmp_path / "b.pt"
        bnn_training.train(splits, scaling, {**SMALL, "epochs": 1}, 0.1, checkpoint, 5, log=lambda _: None)
        torch.manual_seed(99)
        messages = []
        resumed, resumed_history = bnn_training.train(splits, scaling, SMALL, 0.1, checkpoint, 5, log=messages.append)
    finally:
        torch.set_num_threads(threads)
    assert any("resuming after epoch 1" in m for m in messages)
    assert resumed_history["train_loss"] == history["train_loss"]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_training_twice_gives_the_same_bytes(shard_splits, tmp_path):
    """Same data, settings, seed and threads: identical weights, though every epoch draws fresh noise."""
    splits, scaling = shard_splits
    runs = [
        bnn_training.train(splits, scaling, SMALL, 0.1, tmp_path / f"{k}.pt", 5, log=lambda _: None)[0]
        for k in range(2)
    ]
    other = bnn_training.train(splits, scaling, SMALL, 0.1, tmp_path / "c.pt", 6, log=lambda _: None)[0]
    first, second, third = (state_arrays(model) for model in (*runs, other))
    assert all(first[name].tobytes() == second[name].tobytes() for name in first)
    assert any(first[name].tobytes() != third[name].tobytes() for name in first)  # the seed matters


def test_fresh_noise_is_new_every_epoch_and_drawn_about_the_model(shard_splits):
    splits, scaling = shard_splits
    images = bnn_training.SplitImages.read(*splits["train"], scaling)
    generator = torch.Generator().manual_seed(0)
    replay = torch.Generator().manual_seed(0)
    for _ in range(2):
        (batch, _), *_ = images.batches(len(images), generator, fresh_noise=True)
        # the same draws by hand: the epoch's permutation, then one normal per pixel, scaled by the noise map
        order = torch.randperm(len(images), generator=replay)
        noise = torch.randn(images.model.shape, generator=replay)
        torch.testing.assert_close(batch, bnn.scale_images(images.model[order] + images.noise_map[order] * noise))
        assert not torch.allclose(batch, bnn.scale_images(images.image[order]))  # not the stored realisation
    # validation reads the stored realisation, the same every time
    (fixed, _), *_ = images.batches(len(images))
    torch.testing.assert_close(fixed, bnn.scale_images(images.image))


def test_a_cosine_schedule_anneals_to_zero_and_ties_the_checkpoint_to_the_run_length(shard_splits):
    splits, _ = shard_splits
    cosine = {**SMALL, "lr_schedule": "cosine", "learning_rate": 2e-3, "epochs": 4}
    rates = [bnn_training.learning_rate(cosine, epoch) for epoch in range(4)]
    assert rates == pytest.approx([2e-3, 2e-3 * (1 + np.cos(np.pi / 4)) / 2, 1e-3, 2e-3 * (1 - np.cos(np.pi / 4)) / 2])
    assert bnn_training.learning_rate(SMALL, 3) == SMALL["learning_rate"]
    # a longer constant-rate run continues a shorter one; a longer cosine run is another run
    assert bnn_training.digest(splits, SMALL, 0.1, 5) == bnn_training.digest(splits, {**SMALL, "epochs": 9}, 0.1, 5)
    assert bnn_training.digest(splits, cosine, 0.1, 5) != bnn_training.digest(splits, {**cosine, "epochs": 9}, 0.1, 5)


def test_bnn_checkpoint_of_another_config_is_not_resumed(shard_splits, tmp_path):
    splits, scaling = shard_splits
    checkpoint = tmp_path / "c.pt"
    bnn_training.train(splits, scaling, {**SMALL, "epochs": 1}, 0.1, checkpoint, 5, log=lambda _: None)
    for settings, dropout in (({**SMALL, "learning_rate": 3e-4}, 0.1), (SMALL, 0.2)):
        messages = []
        bnn_training.train(splits, scaling, settings, dropout, checkpoint, 5, log=messages.append)
        assert any("starting afresh" in m for m in messages) and not any("resuming" in m for m in messages)
        bnn_training.train(splits, scaling, {**SMALL, "epochs": 1}, 0.1, checkpoint, 5, log=lambda _: None)


# --- entries, targets and splits ----------------------------------------------------------------------


def write_images(path, values, flagged=(), index_offset=0, seed=0):
    """A shard whose image i is constant `values[i]` plus a marker pixel, with random SIE parameters."""
    rng = np.random.default_rng(seed)
    n = len(values)
    images = np.repeat(np.asarray(values, np.float32)[:, None, None], 100, axis=1).repeat(100, axis=2)
    images[:, 10, 20] += 1.0  # not constant: scaling to [0, 1] keeps a trace of the row
    images[:, 50, 50] += np.arange(n, dtype=np.float32)
    flags = np.zeros(n, np.uint8)
    flags[list(flagged)] = SimulationFlag.SINGLY_IMAGED
    params = random_truths(rng, n)
    io.write_shard(
        path,
        {"config_sha256": "y"},
        arrays={"image": images, "index": index_offset + np.arange(n)},
        params=params,
        flags=flags,
        flag_family=SimulationFlag,
    )
    return params


@pytest.fixture
def two_shards(tmp_path):
    first = write_images(tmp_path / "shard-00000.h5", np.arange(6.0), flagged=[2], seed=1)
    second = write_images(tmp_path / "shard-00001.h5", 10 + np.arange(5.0), index_offset=6, seed=2)
    return [tmp_path / "shard-00000.h5", tmp_path / "shard-00001.h5"], (first, second)


def test_the_catalogue_skips_flagged_images_and_pairs_each_entry_with_its_targets(two_shards):
    paths, (first, second) = two_shards
    names = bnn.TARGETS["sie"]
    entries, targets = bnn_training.catalogue(paths, names)
    assert [(entry.path, entry.row) for entry in entries] == [(str(paths[0]), r) for r in (0, 1, 3, 4, 5)] + [
        (str(paths[1]), r) for r in range(5)
    ]
    assert all(isinstance(e, TrainingEntry) and e.label == 0 for e in entries)
    assert [e.lens_index for e in entries] == [0, 1, 3, 4, 5, 6, 7, 8, 9, 10]
    rows = {"first": [0, 1, 3, 4, 5], "second": list(range(5))}
    expected = np.concatenate(
        [
            bnn.targets_from_params({k: v[rows["first"]] for k, v in first.items()}, names),
            bnn.targets_from_params({k: v[rows["second"]] for k, v in second.items()}, names),
        ]
    )
    np.testing.assert_array_equal(targets, expected)
    truth = bnn_training.truths(entries, ("einstein_radius", "axis_ratio"))
    np.testing.assert_array_equal(truth["axis_ratio"][:5], first["axis_ratio"][rows["first"]])
    np.testing.assert_array_equal(truth["einstein_radius"][5:], second["einstein_radius"])


def test_the_split_is_a_seeded_partition_that_keeps_targets_with_their_entries(two_shards):
    entries, targets = bnn_training.catalogue(two_shards[0], bnn.TARGETS["sie"])
    splits = bnn_training.split(entries, targets, {"validation": 0.2, "test": 0.3}, seed=7)
    sizes = {name: len(rows) for name, (rows, _) in splits.items()}
    assert sizes == {"validation": 2, "test": 3, "train": 5}
    together = sorted((e for rows, _ in splits.values() for e in rows), key=entries.index)
    assert together == entries
    for rows, part in splits.values():
        positions = [entries.index(e) for e in rows]
        assert positions == sorted(positions)  # each split keeps the catalogue's order
        np.testing.assert_array_equal(part, targets[positions])
    again = bnn_training.split(entries, targets, {"validation": 0.2, "test": 0.3}, seed=7)
    assert all(again[name][0] == splits[name][0] for name in splits)
    other = bnn_training.split(entries, targets, {"validation": 0.2, "test": 0.3}, seed=8)
    assert any(other[name][0] != splits[name][0] for name in splits)


def test_images_are_read_in_the_order_of_the_entries_across_shards(two_shards):
    paths = two_shards[0]
    entries = [TrainingEntry(str(paths[1]), 3, 0, 9), TrainingEntry(str(paths[0]), 4, 0, 4)]
    entries.append(TrainingEntry(str(paths[1]), 0, 0, 6))
    images = bnn_training.read_images(entries)
    assert images.shape == (3, 1, 100, 100)
    for image, entry in zip(images, entries):
        with h5py.File(entry.path, "r") as h5:
            torch.testing.assert_close(image, bnn.scale_images(h5["image"][entry.row][None]))
    assert bnn_training.read_images([]).shape == (0, 1, 100, 100)


# --- predictions ----------------------------------------------------------------------------------


def test_predictions_are_the_mc_record_in_physical_units(shard_splits):
    splits, scaling = shard_splits
    torch.manual_seed(2)
    model = bnn.LensBNN(len(scaling.names), dropout=0.2, width=0.25)
    images = bnn_training.read_images(splits["test"][0])
    predictions = bnn_training.predict_images(model, images, scaling, passes=5, seed=3)
    record = bnn.mc_predict(model, images, 5, 500, 3, scaling=scaling)
    mean, sigma = scaling.unscale(record.mean, record.sigma)
    for i, name in enumerate(scaling.names):
        np.testing.assert_array_equal(predictions[name][0], mean[:, i])
        np.testing.assert_array_equal(predictions[name][1], sigma[:, i])
    assert set(bnn_training.reported_names(scaling)) <= set(predictions)
    columns = bnn_training.prediction_columns(predictions, {"axis_ratio": np.ones(len(images))})
    assert {"einstein_radius_mean", "angle_sigma", "true_axis_ratio"} <= set(columns)
    assert np.array_equal(columns["axis_ratio_mean"], predictions["axis_ratio"][0])


def test_the_trivial_predictor_averages_the_angle_on_its_circle():
    mean = bnn_training.training_mean({"einstein_radius": np.array([1.0, 2.0]), "angle": np.array([179.0, 3.0])})
    assert mean["einstein_radius"] == 1.5
    assert mean["angle"] == pytest.approx(1.0)  # not 91 degrees: 179 and 3 lie 4 degrees apart


def test_a_trained_bnn_loads_from_its_hdf5_alone(tmp_path):
    scaling = bnn.TargetScaling.for_ranges("power_law", LENS)
    torch.manual_seed(4)
    model = bnn.LensBNN(len(scaling.names), dropout=0.15, width=0.25)
    path = tmp_path / "bnn.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs.update(
            {
                "dropout": 0.15,
                "width": 0.25,
                "targets": json.dumps(scaling.names),
                "scaling": json.dumps({"low": scaling.low, "high": scaling.high}),
            }
        )
        for name, array in state_arrays(model).items():
            h5[f"weights/{name}"] = array
    loaded, loaded_scaling, attrs = bnn_training.load(path)
    assert loaded_scaling == scaling and attrs["dropout"] == 0.15
    assert bnn_training.reported_names(loaded_scaling)[-1] == "slope"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
