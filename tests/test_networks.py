"""The M21 classifier: shapes, size, learning, aligned augmentation, exact kill-and-resume, fast inference."""

import h5py
import numpy as np
import pytest
import torch

from hybridlens.networks import classifier, training

SMALL = {
    "input_shape": [32, 32], "filters": [4, 8, 16], "kernel_sizes": [3, 3, 3], "dropout": 0.1, "dense": 32,
    "batch_size": 8, "learning_rate": 2e-3, "epochs": 3, "device": "cpu", "loader_workers": 0,
    "progress_bar": False,
}  # fmt: skip


def test_paper_architecture_shapes_and_parameter_count():
    model = classifier.ReconstructionClassifier()
    assert model.concatenated_shape == (13, 13, 256)  # M21's concatenation
    n = classifier.count_parameters(model)
    # 2 x (320 + 18,496 + 73,856) convolution + 43,264 x 512 + 512 dense + 512 x 3 + 3 output.
    assert n == 2 * (320 + 18_496 + 73_856) + 43_264 * 512 + 512 + 512 * 3 + 3
    logits = model(torch.zeros(2, 1, 100, 100), torch.zeros(2, 1, 100, 100))
    assert logits.shape == (2, 3)


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


def test_augmentation_applies_the_same_transform_to_both_images():
    base = torch.arange(8 * 16 * 16, dtype=torch.float32).reshape(8, 1, 16, 16)
    source, residual = classifier.augment(base, base * 2 + 1, torch.Generator().manual_seed(1))
    torch.testing.assert_close(residual, source * 2 + 1)
    assert not torch.equal(source, base)  # something moved
    for i in range(8):  # each output is a dihedral image of its input
        candidates = [torch.rot90(b, k, (-2, -1)) for b in (base[i], base[i].flip(-1)) for k in range(4)]
        assert any(torch.equal(source[i], c) for c in candidates)


def fake_shards(tmp_path, n_lenses=12, side=32, seed=0):
    """Training-set shards whose classes differ in reconstruction size, like U/C/O."""
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
        paths.append(path)
    return paths


def test_residual_input_is_in_noise_units_with_its_sign():
    residual = np.array([[-2.0, 0.0], [3.0, 0.5]])
    scaled = training.noise_scaled_residual(residual, (residual / 0.5) ** 2)  # noise rms 0.5
    np.testing.assert_allclose(scaled, np.arcsinh(residual / 0.5))


def test_split_keeps_each_lens_in_one_split(tmp_path):
    entries = training.catalogue(fake_shards(tmp_path))
    splits = training.split_by_lens(entries, {"validation": 0.2, "test": 0.2}, seed=3)
    lenses = [{e[3] for e in splits[name]} for name in training.SPLITS]
    assert not (lenses[0] & lenses[1]) and not (lenses[0] & lenses[2]) and not (lenses[1] & lenses[2])
    assert sum(len(splits[name]) for name in training.SPLITS) == len(entries)


def _splits(tmp_path, **kwargs):
    return training.split_by_lens(
        training.catalogue(fake_shards(tmp_path, **kwargs)), {"validation": 0.2, "test": 0.2}, 3
    )


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
    with h5py.File(splits["train"][0][0], "a") as h5:  # the same rows, regenerated under another config
        h5.attrs["config_sha256"] = "0" * 64
    assert training.training_digest(splits, SMALL, 5) != digest


@pytest.mark.parametrize(
    "input_shape, filters, micro_batch", [((100, 100), (32, 64, 128), 8), ((30, 27), (4, 8, 16), 3)]
)
def test_fast_inference_matches_the_eager_model(input_shape, filters, micro_batch):
    torch.manual_seed(11)
    model = classifier.ReconstructionClassifier(input_shape=input_shape, filters=filters, dense=64)
    with torch.no_grad():  # a spread of logits, as from a trained model
        model.head[-1].weight.mul_(30)
    source = classifier.normalise(torch.randn(10, 1, *input_shape).cumsum(-1))
    residual = torch.asinh(torch.randn(10, 1, *input_shape) * 3)
    model.eval()
    with torch.no_grad():
        eager = torch.softmax(model(source, residual), 1)
    fast = torch.softmax(classifier.FastClassifier(model, micro_batch=micro_batch)(source, residual), 1)
    assert eager.max(1).values.min() < 0.99  # not saturated: the comparison sees small differences
    assert torch.equal(fast.argmax(1), eager.argmax(1))
    torch.testing.assert_close(fast, eager, atol=1e-5, rtol=0)


def test_training_learns_separable_classes(tmp_path):
    splits = training.split_by_lens(training.catalogue(fake_shards(tmp_path, 24)), {"validation": 0.2, "test": 0.2}, 1)
    model, history = training.train(splits, {**SMALL, "epochs": 10}, tmp_path / "c.pt", seed=2, log=lambda _: None)
    assert history["train_loss"][-1] < history["train_loss"][0]
    predicted = training.predict(model, splits["test"], SMALL).argmax(1)
    truth = np.array([e[2] for e in splits["test"]])
    assert (predicted == truth).mean() >= 0.8
