"""The bound networks' lean training is sklearn's, bit for bit, and leaves a seeded Nautilus run unchanged."""

import warnings

import nautilus
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from hybridlens.fitting import bound_networks

# what nautilus.neural.NeuralNetworkEmulator.train hands to train_network
NAUTILUS_KWARGS = dict(
    hidden_layer_sizes=(100, 50, 20), alpha=0, learning_rate_init=1e-2, max_iter=10000, tol=0, n_iter_no_change=10
)


def shell(n, d, seed):
    """A likelihood-shell-like training set: normalised coordinates, a peaked target in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, np.exp(-0.5 * np.sum((x - 0.3) ** 2, axis=1)) + 0.01 * rng.normal(size=n)


@pytest.mark.parametrize("n, d, state", [(37, 5, 0), (200, 3, 2), (451, 6, 3)])
def test_lean_training_is_sklearns_bit_for_bit(n, d, state):
    # one batch, one batch exactly at sklearn's 200, and 451 = two full batches + a remainder
    x, y = shell(n, d, state)
    stock = MLPRegressor(random_state=state, **NAUTILUS_KWARGS).fit(x, y)
    lean = bound_networks.train_network(x, y, NAUTILUS_KWARGS, state)
    assert lean.n_iter_ == stock.n_iter_ > 11
    assert lean.loss_curve_ == stock.loss_curve_
    for a, b in zip(lean.coefs_ + lean.intercepts_, stock.coefs_ + stock.intercepts_):
        np.testing.assert_array_equal(a, b)
    probe = np.random.default_rng(9).normal(size=(64, d))
    np.testing.assert_array_equal(lean.predict(probe), stock.predict(probe))


def test_a_single_hidden_layer_given_as_an_int_trains_as_sklearn_does():
    x, y = shell(60, 4, 6)
    kwargs = {**NAUTILUS_KWARGS, "hidden_layer_sizes": 32}
    lean = bound_networks.train_network(x, y, kwargs, 2)
    stock = MLPRegressor(random_state=2, **kwargs).fit(x, y)
    assert [c.shape for c in lean.coefs_] == [(4, 32), (32, 1)]
    for a, b in zip(lean.coefs_ + lean.intercepts_, stock.coefs_ + stock.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_an_epoch_cap_stops_and_warns_as_sklearn_does():
    x, y = shell(80, 4, 1)
    kwargs = {**NAUTILUS_KWARGS, "max_iter": 7}
    with pytest.warns(ConvergenceWarning):
        lean = bound_networks.train_network(x, y, kwargs, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stock = MLPRegressor(random_state=5, **kwargs).fit(x, y)
    assert lean.n_iter_ == 7
    np.testing.assert_array_equal(lean.coefs_[0], stock.coefs_[0])


def test_a_nan_target_gets_sklearns_error():
    x, y = shell(30, 3, 4)
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bound_networks.train_network(x, y, NAUTILUS_KWARGS, 0)


def _run(lean, tmp_path):
    prior = nautilus.Prior()
    for key in "abc":
        prior.add_parameter(key, dist=(-3.0, 3.0))

    def likelihood(p):
        return -0.5 * ((p["a"] - 0.5) ** 2 / 0.04 + (p["b"] + p["a"]) ** 2 / 0.09 + p["c"] ** 2)

    sampler = nautilus.Sampler(prior, likelihood, n_live=30, seed=11, filepath=tmp_path / f"{lean}.h5")
    with bound_networks.lean_training(lean):
        sampler.run(f_live=0.1, n_eff=200, verbose=False)
    points, log_w, log_l = sampler.posterior()
    return points, log_w, log_l, sampler.log_z, sampler.n_like


def test_a_seeded_nautilus_run_takes_the_same_samples_with_lean_networks(tmp_path):
    stock, lean = _run(False, tmp_path), _run(True, tmp_path)
    assert lean[4] == stock[4] > 300  # likelihood calls: the bounds (networks included) were rebuilt
    assert lean[3] == stock[3]
    for a, b in zip(lean[:3], stock[:3]):
        np.testing.assert_array_equal(a, b)
    assert nautilus.neural.train_network is not bound_networks._current  # restored after the block
