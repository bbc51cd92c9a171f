"""Composite (stellar + dark) lenses standing in for P21's EAGLE lenses."""

import numpy as np
import pytest

from hybridlens.simulation import composite, lens_truth

GRID = lens_truth.grid_for((100, 100), 0.1)


@pytest.fixture(scope="module")
def settings(default_config):
    return default_config["p21_testsets"]["composite"]


KAPPA_FIT = {"kappa_max": 3.0, "radius_factor": 2.0}


def test_the_fit_finds_the_centre_and_orientation_of_an_aligned_composite(settings):
    aligned = {**settings, "stellar_axis_ratio": {"min": 0.6, "max": 0.7}, "dark_misalignment_sd": 0.0}
    aligned["shear_magnitude"] = {"min": 0.0, "max": 0.0}
    aligned["subhalos"] = {**settings["subhalos"], "max_number": 0}
    rng = np.random.default_rng(7)
    good = 0
    for _ in range(4):
        lens, fit, _ = composite.composite_in_range(rng, aligned, 0.5, GRID, KAPPA_FIT, 50)
        assert fit.centre == pytest.approx((0.0, 0.0), abs=0.02)
        assert fit.axis_ratio < 0.95  # the flattening is seen through the rounder halo
        if fit.residual < 0.1:  # where an SIE describes the map, it has the lens' orientation
            good += 1
            assert abs((fit.angle - lens.params["stellar_angle"] + 90.0) % 180.0 - 90.0) < 1.0
    assert good >= 1


def test_draws_are_reproducible_from_the_seed(settings):
    first = composite.draw_composite(np.random.default_rng(3), settings, 0.5)
    again = composite.draw_composite(np.random.default_rng(3), settings, 0.5)
    assert first.params == again.params and len(first.galaxies) == 1 + first.params["n_subhalos"]


def test_an_impossible_range_gives_no_lens(settings):
    lens, fit, attempts = composite.composite_in_range(
        np.random.default_rng(1), {**settings, "einstein_radius": {"min": 20.0, "max": 30.0}}, 0.5, GRID, KAPPA_FIT, 3
    )
    assert lens is None and fit is None and attempts == 3
