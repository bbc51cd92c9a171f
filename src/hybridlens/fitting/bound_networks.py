"""Nautilus' bound networks, trained to the same weights at about half the cost.

Nautilus bounds each likelihood shell with four `sklearn` MLPs (100, 50, 20) trained by
Adam on the shell's few tens of points, hundreds of epochs each and ~100 networks per
fit: 10-18 s of a one-minute first fit (docs/m21.md). On such small batches sklearn's
per-step bookkeeping (a fresh array per gradient and Adam moment, input validation on
every shuffle) costs as much as the arithmetic. `train_network` runs the same
algorithm with sklearn's own initialisation and random stream, the same matrix products
and the same Adam arithmetic element for element, into arrays allocated once, so the
trained network is sklearn's bit for bit (tests/test_bound_networks.py) and a seeded fit
takes the same samples. Settings outside what it reproduces, and an sklearn other than the
one it was checked against (envs/requirements.lock), go to sklearn's own `fit`.

`lean_training()` points Nautilus at it for the span of a fit.
"""

import contextlib
import warnings

import nautilus.neural
import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.utils import check_random_state

# sklearn settings the lean loop reproduces; any other value is trained by sklearn itself
REPRODUCED = {
    "solver": "adam",
    "activation": "relu",
    "loss": "squared_error",
    "alpha": 0.0,
    "batch_size": "auto",
    "shuffle": True,
    "early_stopping": False,
    "warm_start": False,
}
SKLEARN_BATCH = 200  # sklearn's batch_size "auto": min(200, n_samples)
SKLEARN_CHECKED = "1.8."  # the sklearn whose `_fit_stochastic` the loop follows (envs/requirements.lock)


def reproduced(network):
    """Whether `network`'s settings are ones the lean loop trains exactly as this sklearn does."""
    params = network.get_params()
    return sklearn.__version__.startswith(SKLEARN_CHECKED) and all(
        params[key] == value for key, value in REPRODUCED.items()
    )


def train_network(x, y, neural_network_kwargs, random_state):
    """`nautilus.neural.train_network`'s contract: an `MLPRegressor(random_state, **kwargs)` fitted to (x, y)."""
    network = MLPRegressor(random_state=random_state, **neural_network_kwargs)
    x, y = np.asarray(x), np.asarray(y)
    plain = x.dtype == np.float64 and x.ndim == 2 and y.shape == (len(x),) and len(x) > 0
    if not (reproduced(network) and plain and np.isfinite(x).all() and np.isfinite(y).all()):
        return network.fit(x, y)  # sklearn's own checks and messages
    network._validate_params()
    x = np.ascontiguousarray(x)
    y = y.astype(np.float64).reshape(-1, 1)
    network.n_features_in_ = x.shape[1]
    units = [x.shape[1], *np.atleast_1d(network.hidden_layer_sizes).tolist(), 1]
    network._random_state = check_random_state(random_state)
    network._initialize(y, units, x.dtype)  # sklearn's Glorot draws, in its order
    _adam(network, x, y, units)
    if not all(np.isfinite(w).all() for w in network.coefs_ + network.intercepts_):
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may"
            " contain large values and need to be preprocessed."
        )
    return network


def _adam(network, x, y, units):
    """sklearn's `_fit_stochastic` for Adam on the flat parameter vector; sets its fitted attributes."""
    layers = len(units) - 1
    shapes = list(zip(units[:-1], units[1:]))
    sizes = [a * b for a, b in shapes] + [b for _, b in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    theta, grad = np.empty(offsets[-1]), np.empty(offsets[-1])

    def split(vector):
        coefs = [vector[offsets[i] : offsets[i + 1]].reshape(shapes[i]) for i in range(layers)]
        return coefs, [vector[offsets[layers + i] : offsets[layers + i + 1]] for i in range(layers)]

    coefs, intercepts = split(theta)
    for view, value in zip(coefs + intercepts, network.coefs_ + network.intercepts_):
        view[...] = value
    coef_grads, intercept_grads = split(grad)
    first, second, scratch, denominator = (np.zeros_like(theta) for _ in range(4))

    n = len(x)
    batch = min(SKLEARN_BATCH, n)
    starts = range(0, n, batch)
    activations = {}  # per batch length: the layers' outputs
    beta_1, beta_2, epsilon = network.beta_1, network.beta_2, network.epsilon
    rng = network._random_state
    order = np.arange(n)
    best, stale, step, loss = np.inf, 0, 0, np.inf
    curve = []
    for epoch in range(network.max_iter):
        shuffled = np.arange(n)
        rng.shuffle(shuffled)  # sklearn.utils.shuffle's draw
        order = order[shuffled]
        total = 0.0
        for start in starts:
            rows = order[start : start + batch]
            m = len(rows)
            if m not in activations:
                activations[m] = [np.empty((m, u)) for u in units[1:]]
            layer = [x[rows], *activations[m]]
            for i in range(layers):
                np.matmul(layer[i], coefs[i], out=layer[i + 1])
                layer[i + 1] += intercepts[i]
                if i != layers - 1:
                    np.maximum(layer[i + 1], 0, out=layer[i + 1])
            target = y[rows]
            total += 0.5 * np.average((target - layer[-1]) ** 2, axis=0).mean() * m
            delta = layer[-1] - target
            for i in range(layers - 1, -1, -1):
                np.matmul(layer[i].T, delta, out=coef_grads[i])
                coef_grads[i] /= m
                np.sum(delta, axis=0, out=intercept_grads[i])
                intercept_grads[i] /= m
                if i:
                    delta = delta @ coefs[i].T
                    delta[layer[i] == 0] = 0
            step += 1
            rate = network.learning_rate_init * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
            # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  theta += -rate m / (sqrt(v) + eps)
            first *= beta_1
            np.multiply(1 - beta_1, grad, out=scratch)
            first += scratch
            second *= beta_2
            np.square(grad, out=scratch)
            scratch *= 1 - beta_2
            second += scratch
            np.sqrt(second, out=denominator)
            denominator += epsilon
            np.multiply(-rate, first, out=scratch)
            scratch /= denominator
            theta += scratch
        loss = total / n
        curve.append(loss)
        stale = stale + 1 if loss > best - network.tol else 0
        best = min(best, loss)
        if stale > network.n_iter_no_change:
            break
    else:
        warnings.warn(
            "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization hasn't converged yet."
            % network.max_iter,
            ConvergenceWarning,
        )
    network.coefs_ = [c.copy() for c in coefs]
    network.intercepts_ = [b.copy() for b in intercepts]
    network.n_iter_, network.t_ = len(curve), len(curve) * n
    network.loss_, network.loss_curve_, network.best_loss_ = loss, curve, best
    network._no_improvement_count = stale


@contextlib.contextmanager
def lean_training(enabled=True):
    """Nautilus trains its bound networks with `train_network` inside the block (restored after)."""
    if not enabled:
        yield
        return
    stock = nautilus.neural.train_network
    nautilus.neural.train_network = _current
    try:
        yield
    finally:
        nautilus.neural.train_network = stock


def _current(x, y, neural_network_kwargs, random_state):
    # looked up per call, so a wrapper of `train_network` (a benchmark's timer) is seen
    return train_network(x, y, neural_network_kwargs, random_state)
