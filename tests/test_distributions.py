"""Sampled distributions match the stated ones (KS tests on 20k draws)."""

import numpy as np
import pytest
from scipy import stats

from hybridlens.simulation import distributions as dist

N = 20_000


def ks_pvalue(values, reference):
    return stats.kstest(values, reference.cdf).pvalue


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def test_m21_einstein_radius_and_axis_ratio(rng, default_config):
    lens = default_config["simulate_slacs"]["lens"]
    for key in ("einstein_radius", "axis_ratio"):
        node = lens[key]
        values = dist.truncated_normal(rng, node, N)
        assert values.min() >= node["min"] and values.max() <= node["max"]
        assert ks_pvalue(values, dist.scipy_reference("truncated_normal", node)) > 1e-3
    # Truncation barely touches theta_E ~ N(1.16, 0.42): moments match the paper's.
    theta = dist.truncated_normal(rng, lens["einstein_radius"], N)
    assert abs(theta.mean() - 1.16) < 0.02 and abs(theta.std() - 0.42) < 0.02


def test_m21_sersic_index_is_truncated_emg(rng, default_config):
    node = default_config["simulate_slacs"]["source"]["sersic_index"]
    values = dist.truncated_emg(rng, node, N)
    assert ks_pvalue(values, dist.scipy_reference("truncated_emg", node)) > 1e-3
    # Untruncated EMG mean is mu + 1/lambda.
    wide = {**node, "min": -50.0, "max": 50.0}
    assert abs(dist.truncated_emg(rng, wide, N).mean() - (0.71 + 1 / 0.723)) < 0.05


def test_m21_effective_radius_is_exponential_with_rate(rng, default_config):
    node = default_config["simulate_slacs"]["source"]["effective_radius"]
    values = dist.truncated_exponential(rng, node, N)
    assert ks_pvalue(values, dist.scipy_reference("truncated_exponential", node)) > 1e-3
    assert abs(np.median(values) - np.log(2) / 6.64) < 0.01  # arcsec


def test_uniform_ranges(rng, default_config):
    node = default_config["simulate_training"]["lens"]["einstein_radius"]
    values = dist.uniform(rng, node, N)
    assert ks_pvalue(values, dist.scipy_reference("uniform", node)) > 1e-3


def test_uniform_disc_is_uniform_in_area(rng):
    y, x = dist.uniform_disc(rng, 1.5, N)
    r2 = (y**2 + x**2) / 1.5**2
    assert r2.max() <= 1.0
    assert stats.kstest(r2, "uniform").pvalue > 1e-3
    assert stats.kstest(np.arctan2(y, x), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3


def test_impossible_truncation_fails_clearly(rng):
    with pytest.raises(ValueError, match="truncation"):
        dist.truncated_normal(rng, {"mean": 0.0, "sd": 0.01, "min": 50.0, "max": 51.0}, 10)


@pytest.mark.parametrize(
    "sampler, node",
    [
        (dist.truncated_normal, {"mean": 1.2, "sd": 0.3, "min": 1.0, "max": 1.5}),  # redraws: several numbers used
        (dist.truncated_emg, {"mean": 0.7, "sd": 0.4, "rate": 0.7, "min": 0.5, "max": 2.0}),
        (dist.truncated_exponential, {"rate": 4.0, "min": 0.05, "max": 0.3}),
        (dist.uniform, {"min": 0.3, "max": 1.0}),
    ],
)
def test_one_draw_is_a_scalar_taking_exactly_the_numbers_of_a_size_one_draw(sampler, node):
    """`size=None` returns the value `size=1` puts in its array and leaves the generator where it does.

    The simulations draw one value at a time; their images are reproducible only if this holds.
    """
    one, array = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(50):
        value = sampler(one, node)
        assert np.ndim(value) == 0 and type(value) is np.float64
        assert value == sampler(array, node, 1)[0]
    assert one.bit_generator.state == array.bit_generator.state


def test_one_point_of_the_disc_is_a_scalar_pair_taking_the_numbers_of_a_size_one_draw():
    one, array = np.random.default_rng(8), np.random.default_rng(8)
    for _ in range(20):
        y, x = dist.uniform_disc(one, 1.3)
        ys, xs = dist.uniform_disc(array, 1.3, 1)
        assert np.ndim(y) == np.ndim(x) == 0 and (y, x) == (ys[0], xs[0])
    assert one.bit_generator.state == array.bit_generator.state
