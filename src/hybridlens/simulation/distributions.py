"""Parameter distributions of the simulated populations.

Truncation is by redrawing (rejection), never by clipping: clipping would pile
probability mass onto the bounds (e.g. ~11 % of SLACS axis ratios exactly at
q = 1), which a lens population does not have. Each function takes a
`numpy.random.Generator` and a config node, so the same node documents and
drives the draw, and tests can compare against `scipy.stats`.

As in numpy, `size=None` (the default) draws one value and returns it as a
scalar; it takes exactly the random numbers a draw of `size=1` takes, so one
value is the first element of the one-element array.
"""

import numpy as np
from scipy import stats

_MAX_REDRAWS = 10_000


def _shaped(values, size):
    """`values`, drawn with size 1 when `size` is None, as that one value (a numpy scalar)."""
    return values[0] if size is None else values


def _truncated(draw, low, high, size):
    """Redraw values of `draw(n)` outside [low, high] until `size` (None: one) are inside."""
    if size is None:
        return _shaped(_truncated(draw, low, high, 1), None)
    out = np.empty(size)
    filled = 0
    for _ in range(_MAX_REDRAWS):
        values = np.atleast_1d(draw(max(2 * (size - filled), 1)))
        values = values[(values >= low) & (values <= high)][: size - filled]
        out[filled : filled + values.size] = values
        filled += values.size
        if filled == size:
            return out
    raise ValueError(f"truncation [{low}, {high}] keeps almost no probability mass")


def truncated_normal(rng, node, size=None):
    return _truncated(lambda n: rng.normal(node["mean"], node["sd"], n), node["min"], node["max"], size)


def truncated_emg(rng, node, size=None):
    """Exponentially modified Gaussian N(mean, sd) + Exp(rate), truncated (M21 Sersic index)."""

    def draw(n):
        return rng.normal(node["mean"], node["sd"], n) + rng.exponential(1.0 / node["rate"], n)

    return _truncated(draw, node["min"], node["max"], size)


def truncated_exponential(rng, node, size=None):
    """Exponential with rate `node['rate']` (mean 1/rate), truncated (M21 effective radius)."""
    return _truncated(lambda n: rng.exponential(1.0 / node["rate"], n), node["min"], node["max"], size)


def uniform(rng, node, size=None):
    return _shaped(rng.uniform(node["min"], node["max"], 1 if size is None else size), size)


def uniform_disc(rng, radius, size=None):
    """Points uniform in area inside a disc: the M21/P21 source-centre rule. Returns (y, x)."""
    n = 1 if size is None else size
    r = radius * np.sqrt(rng.uniform(0.0, 1.0, n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    return _shaped(r * np.sin(phi), size), _shaped(r * np.cos(phi), size)


def scipy_reference(kind, node):
    """The scipy.stats distribution a sampler draws from, for tests and figures."""
    if kind == "truncated_normal":
        a = (node["min"] - node["mean"]) / node["sd"]
        b = (node["max"] - node["mean"]) / node["sd"]
        return stats.truncnorm(a, b, loc=node["mean"], scale=node["sd"])
    if kind == "truncated_emg":
        base = stats.exponnorm(1.0 / (node["sd"] * node["rate"]), loc=node["mean"], scale=node["sd"])
    elif kind == "truncated_exponential":
        base = stats.expon(scale=1.0 / node["rate"])
    elif kind == "uniform":
        return stats.uniform(node["min"], node["max"] - node["min"])
    else:
        raise ValueError(f"unknown distribution {kind!r}")
    return _TruncatedContinuous(base, node["min"], node["max"])


class _TruncatedContinuous:
    """A frozen scipy distribution restricted to [low, high] (cdf and pdf only)."""

    def __init__(self, base, low, high):
        self.base, self.low, self.high = base, low, high
        self._norm = base.cdf(high) - base.cdf(low)

    def cdf(self, x):
        x = np.clip(x, self.low, self.high)
        return (self.base.cdf(x) - self.base.cdf(self.low)) / self._norm

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x >= self.low) & (x <= self.high)
        return np.where(inside, self.base.pdf(x) / self._norm, 0.0)
