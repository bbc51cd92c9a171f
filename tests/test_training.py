"""Training the M21 classifier from shards: entries, splits by lens, exact kill-and-resume, weights in HDF5."""

import dataclasses
import hashlib

import h5py
import numpy as np
import pytest
import torch

from hybridlens.networks import training
from hybridlens.vocabulary import IMAGE_PLANE_MAPS

SMALL = {
    "input_shape": [32, 32],
    "filters": [4, 8, 16],
    "kernel_sizes": [3, 3, 3],
    "dropout": 0.1,
    "dense": 32,
    "batch_size": 8,
    "learning_rate": 2e-3,
    "epochs": 3,
    "device": "cpu",
    "loader_workers": 0,
    "progress_bar": False,
}


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = training.build_model(SMALL)
    source, residual = torch.randn(16, 1, 32, 32), torch.randn(16, 1, 32, 32)
    label = torch.arange(16) % 3
    optimiser = torch.optim.NAdam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.eval()
    first = float(loss_fn(model(source, residual), label))
    model.train()
    for _ in range(40):
        optimiser.zero_grad()
        loss = loss_fn(model(source, residual), label)
        loss.backward()
        optimiser.step()
    model.eval()
    assert float(loss_fn(model(source, residual), label)) < 0.5 * first


def fake_shards(tmp_path, n_lenses=12, side=32, seed=0, maps=IMAGE_PLANE_MAPS):
    """Training-set shards whose classes differ in reconstruction size, like U/C/O; `maps`: image-plane maps too."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : side * 1j, -1 : 1 : side * 1j]
    paths = []
    for shard in range(2):
        sources, residuals, labels, index = [], [], [], []
        for lens in range(n_lenses // 2):
            for label, width in enumerate((0.6, 0.15, 0.35)):
                sources.append(np.exp(-(x**2 + y**2) / (2 * width**2)) + 0.05 * rng.normal(size=(side, side)))
                residuals.append(rng.normal(size=(side, side)) * 4.0**label)
                labels.append(label)
                index.append(shard * n_lenses + lens)
        path = tmp_path / f"shard-{shard:05d}.h5"
        with h5py.File(path, "w") as h5:
            h5["source"] = np.array(sources, np.float32)
            h5["residual"] = np.array(residuals, np.float32)
            h5["chi_squared_map"] = np.array(residuals, np.float32) ** 2
            h5["params/label"] = np.array(labels, float)
            h5["flags"] = np.zeros(len(labels), np.uint8)
            h5["index"] = np.array(index)
            for name in maps:
                h5[name] = rng.normal(size=(len(labels), side, side)).astype(np.float32)
        paths.append(path)
    return paths


def test_residual_input_is_in_noise_units_with_its_sign():
    residual = np.array([[-2.0, 0.0], [3.0, 0.5]])
    scaled = training.noise_scaled_residual(residual, (residual / 0.5) ** 2)  # noise rms 0.5
    np.testing.assert_allclose(scaled, np.arcsinh(residual / 0.5))


def test_split_keeps_each_lens_in_one_split(tmp_path):
    entries = training.catalogue(fake_shards(tmp_path))
    splits = training.split_by_lens(entries, {"validation": 0.2, "test": 0.2}, seed=3)
    lenses = [{e.lens_index for e in splits[name]} for name in training.SPLITS]
    assert not (lenses[0] & lenses[1]) and not (lenses[0] & lenses[2]) and not (lenses[1] & lenses[2])
    assert sum(len(splits[name]) for name in training.SPLITS) == len(entries)


def _splits(tmp_path, **kwargs):
    return training.split_by_lens(
        training.catalogue(fake_shards(tmp_path, **kwargs)), {"validation": 0.2, "test": 0.2}, 3
    )


def test_splits_round_trip_through_a_networks_hdf5(tmp_path):
    from hybridlens import io

    splits = _splits(tmp_path)
    path = tmp_path / "classifier.h5"
    io.write_shard(path, attrs={}, groups=training.split_groups(splits))
    for name, entries in splits.items():
        assert training.split_from_hdf5(path, name) == entries, name
    with pytest.raises(KeyError, match="no 'split_calibration' group"):
        training.split_from_hdf5(path, "calibration")


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    splits = _splits(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: CPU kernels reduce in a fixed order
    try:
        straight, straight_history = training.train(splits, SMALL, tmp_path / "straight.pt", seed=5, log=lambda _: None)
        checkpoint = tmp_path / "killed.pt"
        training.train(splits, {**SMALL, "epochs": 1}, checkpoint, seed=5, log=lambda _: None)  # killed after epoch 1
        torch.manual_seed(987)  # a fresh process would start from other global RNG state
        torch.rand(1000)
        messages = []
        resumed, resumed_history = training.train(splits, SMALL, checkpoint, seed=5, log=messages.append)
    finally:
        torch.set_num_threads(threads)
    assert any("resuming after epoch 1" in m for m in messages)
    assert torch.load(checkpoint, weights_only=False)["epoch"] == SMALL["epochs"]
    for key in straight_history.keys() - {"epoch_seconds"}:
        assert resumed_history[key] == straight_history[key], key
    straight_state, resumed_state = straight.state_dict(), resumed.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    for key in straight_state:
        assert torch.equal(straight_state[key], resumed_state[key]), key


def test_training_twice_with_the_test_config_gives_the_same_bytes(tmp_path):
    """Two fresh runs at the test config's classifier settings on 2 threads: identical weights."""
    from hybridlens import config

    settings = {
        **config.load(config.CONFIG_DIR / "config.yaml", config.CONFIG_DIR / "test.yaml")["classifier"],
        "input_shape": [32, 32],
    }
    splits = _splits(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [training.train(splits, settings, tmp_path / f"{k}.pt", seed=5, log=lambda _: None)[0] for k in range(2)]
    finally:
        torch.set_num_threads(threads)
    first, second = (training.state_arrays(model) for model in runs)
    assert first.keys() == second.keys()
    assert all(first[name].tobytes() == second[name].tobytes() for name in first)


def test_checkpoint_of_other_settings_is_started_afresh(tmp_path):
    splits = _splits(tmp_path)
    checkpoint = tmp_path / "classifier.pt"
    training.train(splits, {**SMALL, "epochs": 1}, checkpoint, seed=5, log=lambda _: None)
    other = {**SMALL, "learning_rate": 5e-4}
    messages = []
    _, history = training.train(splits, other, checkpoint, seed=5, log=messages.append)
    assert any("other settings or data" in m and "starting afresh" in m for m in messages)
    assert not any("resuming" in m for m in messages)
    assert len(history["train_loss"]) == other["epochs"]
    _, fresh = training.train(splits, other, tmp_path / "fresh.pt", seed=5, log=lambda _: None)
    assert history["train_loss"][0] == pytest.approx(fresh["train_loss"][0], rel=1e-5)  # epoch 1 redone under B
    state = torch.load(checkpoint, weights_only=False)
    assert state["epoch"] == other["epochs"]
    assert state["digest"] == training.training_digest(splits, other, 5)


def test_training_digest_follows_data_and_settings_not_cosmetics(tmp_path):
    splits = _splits(tmp_path)
    digest = training.training_digest(splits, SMALL, 5)
    assert training.training_digest(splits, {**SMALL, "progress_bar": True, "loader_workers": 4}, 5) == digest
    assert training.training_digest(splits, {**SMALL, "dropout": 0.3}, 5) != digest
    assert training.training_digest(splits, SMALL, 6) != digest
    moved = {**splits, "validation": splits["validation"][1:], "test": splits["test"] + splits["validation"][:1]}
    assert training.training_digest(moved, SMALL, 5) != digest
    with h5py.File(splits["train"][0].path, "a") as h5:  # the same rows, regenerated under another config
        h5.attrs["config_sha256"] = "0" * 64
    assert training.training_digest(splits, SMALL, 5) != digest


def test_training_learns_separable_classes(tmp_path):
    splits = training.split_by_lens(training.catalogue(fake_shards(tmp_path, 24)), {"validation": 0.2, "test": 0.2}, 1)
    model, history = training.train(splits, {**SMALL, "epochs": 10}, tmp_path / "c.pt", seed=2, log=lambda _: None)
    assert history["train_loss"][-1] < history["train_loss"][0]
    predicted = training.predict(model, splits["test"], SMALL).argmax(1)
    truth = np.array([e.label for e in splits["test"]])
    assert (predicted == truth).mean() >= 0.8


def test_catalogue_lists_the_unflagged_rows_as_named_entries(tmp_path):
    paths = fake_shards(tmp_path)
    with h5py.File(paths[1], "a") as h5:
        h5["flags"][4] = 1  # e.g. a failed inversion
    entries = training.catalogue(paths)
    assert len(entries) == 2 * 18 - 1
    assert all(isinstance(entry, training.TrainingEntry) for entry in entries)
    assert training.TrainingEntry(str(paths[1]), 4, 1, 13) not in entries
    assert entries[18 + 4] == training.TrainingEntry(str(paths[1]), 5, 2, 13)  # the flagged row's successor
    with h5py.File(paths[0], "r") as h5:
        for entry in entries[:18]:
            assert entry.label == h5["params/label"][entry.row] and entry.lens_index == h5["index"][entry.row]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entries[0].label = 2


def test_the_training_digest_keeps_its_line_per_entry(tmp_path):
    """The digest hashes one tab-separated line per entry: checkpoints made before stay resumable."""
    path = fake_shards(tmp_path)[0]
    with h5py.File(path, "a") as h5:
        h5.attrs["config_sha256"] = "abc"
    splits = {
        "train": [training.TrainingEntry(str(path), 0, 0, 7)],
        "test": [training.TrainingEntry(str(path), 2, 2, 7)],
    }
    settings = {"learning_rate": 1e-3, "progress_bar": True}
    h = hashlib.sha256()
    h.update(b'{"seed":3,"settings":{"learning_rate":0.001}}')
    h.update(f"\n[train]\n{path}\t0\t0\t7\n\n[validation]\n\n[test]\n{path}\t2\t2\t7\n{path}\tabc\n".encode())
    assert training.training_digest(splits, settings, 3) == h.hexdigest()


def test_predict_reads_the_rows_its_entries_name(tmp_path):
    torch.manual_seed(0)
    paths = fake_shards(tmp_path)
    entries = training.catalogue(paths)[::-5]  # across shards, out of order
    model = training.build_model(SMALL)
    predicted = training.predict(model, entries, SMALL, batch_size=3)
    sources, residuals, chi_squared = [], [], []
    for entry in entries:
        with h5py.File(entry.path, "r") as h5:
            sources.append(h5["source"][entry.row])
            residuals.append(h5["residual"][entry.row])
            chi_squared.append(h5["chi_squared_map"][entry.row])
    np.testing.assert_allclose(predicted, training.classify(model, sources, residuals, chi_squared), atol=1e-6)
    np.testing.assert_allclose(predicted.sum(1), 1.0, rtol=1e-6)
    assert training.classify(model, [], [], []).shape == (0, 3)


def test_image_channels_stack_with_the_residual_in_training_and_in_inference(tmp_path):
    """With `image_channels` the shards' maps enter beside the residual; a fit's products give the same."""
    torch.manual_seed(0)
    settings = {**SMALL, "image_channels": ["signal_to_noise", "critical_curve"]}
    entries = training.catalogue(fake_shards(tmp_path))[::-5]
    model = training.build_model(settings)
    assert model.residual_path[0].in_channels == 3 and model.source_path[0].in_channels == 1
    predicted = training.predict(model, entries, settings, batch_size=3)
    path = tmp_path / "classifier.h5"
    with h5py.File(path, "w") as h5:
        for name, array in training.state_arrays(model).items():
            h5[f"weights/{name}"] = array
    classify = training.classifier_from_hdf5(path, settings)
    for entry, expected in zip(entries, predicted):
        with h5py.File(entry.path, "r") as h5:
            names = ("source", "residual", "chi_squared_map", *settings["image_channels"])
            products = type("Products", (), {name: h5[name][entry.row] for name in names})()
        np.testing.assert_allclose(classify(products), expected, atol=1e-6)
    with pytest.raises(ValueError, match="classifier.image_channels"):
        training.build_model({**SMALL, "image_channels": ["data"]})
    (tmp_path / "plain").mkdir()
    plain = training.catalogue(fake_shards(tmp_path / "plain", maps=()))  # shards made without the maps
    with pytest.raises(KeyError, match="signal_to_noise"):
        training.predict(model, plain, settings)


def test_weights_round_trip_through_hdf5(tmp_path):
    torch.manual_seed(1)
    model = training.build_model(SMALL)
    path = tmp_path / "classifier.h5"
    with h5py.File(path, "w") as h5:
        for name, array in training.state_arrays(model).items():
            h5[f"weights/{name}"] = array
    state = training.state_from_hdf5(path)
    assert state.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(state[name], tensor), name
    rng = np.random.default_rng(2)
    products = type("Products", (), {"source": rng.normal(size=(32, 32)), "residual": rng.normal(size=(32, 32))})()
    products.chi_squared_map = products.residual**2
    p = training.classifier_from_hdf5(path, SMALL)(products)
    direct = training.classify(model, [products.source], [products.residual], [products.chi_squared_map])[0]
    np.testing.assert_allclose(p, direct, atol=1e-6)
    with pytest.raises(KeyError, match="no 'weights' group"):
        training.state_from_hdf5(fake_shards(tmp_path)[0])


def test_mc_dropout_verdicts_are_seeded_and_without_dropout_equal_one_pass(tmp_path):
    """MC-dropout verdicts repeat exactly, leave the caller's RNG and the model's mode alone,
    differ from one pass when the network has dropout, and equal it when it has none."""
    torch.manual_seed(0)
    entries = training.catalogue(fake_shards(tmp_path))[:6]
    mc = {**SMALL, "mc_passes": 8}
    model = training.build_model({**SMALL, "dropout": 0.5}).eval()
    pair = [[np.random.default_rng(1).normal(size=(32, 32))]] * 3
    state = torch.get_rng_state()
    one = training.classify(model, *pair, settings=mc)
    assert torch.equal(torch.get_rng_state(), state) and not model.training
    np.testing.assert_array_equal(one, training.classify(model, *pair, settings=mc))
    first = training.predict(model, entries, mc, batch_size=4)
    np.testing.assert_array_equal(first, training.predict(model, entries, mc, batch_size=4))
    assert np.abs(first - training.predict(model, entries, SMALL, batch_size=4)).max() > 1e-3
    without = training.build_model({**SMALL, "dropout": 0.0})
    np.testing.assert_allclose(
        training.predict(without, entries, mc, batch_size=4), training.predict(without, entries, SMALL), atol=1e-5
    )
