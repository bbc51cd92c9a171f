"""P21's prior builders and the blind ring fit."""

import autolens as al
import numpy as np
import pytest

from hybridlens.fitting import informed_priors as ip
from hybridlens.simulation import lenses

MODELLING = {
    "centre_half_width": 0.3,
    "axis_ratio_range": [0.25, 0.999],
    "angle_range": [0.0, 180.0],
    "log10_coefficient_range": [-3.0, 2.0],
}
SETTINGS = ip.PriorSettings(
    threshold_sigma=3.0,
    min_region_pixels=8,
    einstein_half_width=0.2,
    half_widths={"einstein_radius": 0.2, "angle": 40.0, "axis_ratio": 0.1, "slope": 0.2},
    slope_range=(1.5, 2.5),
)
GRID = al.Grid2D.uniform(shape_native=(100, 100), pixel_scales=0.1)


def test_the_ring_fit_recovers_the_radius_of_a_clean_ring():
    y, x = np.moveaxis(np.asarray(GRID.native), -1, 0)
    radius = np.hypot(y - 0.1, x + 0.2)
    image = 50.0 * np.exp(-0.5 * ((radius - 1.3) / 0.08) ** 2)
    noise = np.ones_like(image)
    image = image + np.random.default_rng(1).normal(0.0, 1.0, image.shape)
    ring = ip.fit_ring(image, noise, GRID.native, 3.0, 8)
    assert ring.radius == pytest.approx(1.3, abs=0.02)
    assert ring.centre == pytest.approx((0.1, -0.2), abs=0.02)


def test_the_ring_fit_finds_the_einstein_radius_of_an_einstein_ring():
    """A compact source behind an SIS: the ring lies at theta_E."""
    mass = lenses.mass_profile("sie", (0.0, 0.0), 1.5, 1.0, 0.0)
    source = al.lp.Gaussian(centre=(0.0, 0.0), intensity=1.0, sigma=0.05)
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), al.Galaxy(redshift=2.0, light=source)])
    image = np.asarray(tracer.image_2d_from(grid=GRID).native)
    ring = ip.fit_ring(image, np.full(image.shape, image.max() / 100), GRID.native, 3.0, 8)
    assert ring.radius == pytest.approx(1.5, rel=0.03)


def test_a_ring_pulled_inwards_by_a_bright_clump_is_clipped_into_the_annulus():
    y, x = np.moveaxis(np.asarray(GRID.native), -1, 0)
    arc = 5.0 * np.exp(-0.5 * ((np.hypot(y, x) - 2.5) / 0.08) ** 2) * (x > 1.5)  # one faint arc on the right
    clump = 80.0 * np.exp(-0.5 * (np.hypot(y - 0.3, x - 0.2) / 0.25) ** 2)
    ring = ip.fit_ring(arc + clump, np.ones_like(arc), GRID.native, 3.0, 8)
    assert ring.radius < 2.0  # the algebraic fit follows the clump's many pixels
    guarded, clipped = ip.guarded_ring(ring, 2.2, 2.8)
    assert clipped and guarded.radius == 2.2 and guarded.centre == ring.centre
    same, clipped = ip.guarded_ring(ip.Ring((0.0, 0.0), 2.5, 50), 2.2, 2.8)
    assert not clipped and same.radius == 2.5


def test_no_bright_pixels_give_no_ring():
    assert ip.fit_ring(np.zeros((100, 100)), np.ones((100, 100)), GRID.native, 3.0, 8) is None


def test_blind_priors_centre_theta_e_on_the_ring_and_leave_the_rest_full():
    priors = ip.blind_priors(ip.Ring((0.0, 0.0), 1.25, 100), (0.0, 0.0), MODELLING, SETTINGS, power_law=True)
    assert (priors.sie.einstein_radius.low, priors.sie.einstein_radius.high) == pytest.approx((1.05, 1.45))
    assert (priors.sie.axis_ratio.low, priors.sie.axis_ratio.high) == (0.25, 0.999)
    assert (priors.sie.angle.low, priors.sie.angle.high) == (0.0, 180.0)
    assert (priors.slope.low, priors.slope.high) == (1.5, 2.5)
    small = ip.blind_priors(ip.Ring((0.0, 0.0), 0.1, 10), (0.0, 0.0), MODELLING, SETTINGS)
    assert small.sie.einstein_radius.low == pytest.approx(ip.MIN_EINSTEIN_RADIUS)
    assert small.slope is None


def test_uniform_bnn_priors_have_the_stated_widths_and_respect_the_q_range():
    prediction = ip.Prediction(1.6, 0.05, 0.95, 0.04, 170.0, 6.0, 2.1, 0.05)
    priors = ip.bnn_uniform_priors(prediction, (0.0, 0.0), MODELLING, SETTINGS, power_law=True)
    assert (priors.sie.einstein_radius.low, priors.sie.einstein_radius.high) == pytest.approx((1.4, 1.8))
    # q + 0.1 passes the model's 0.999: the window moves down, keeping its width
    assert (priors.sie.axis_ratio.low, priors.sie.axis_ratio.high) == pytest.approx((0.799, 0.999))
    # phi's window crosses 180 degrees and stays one range (the model sees 2 phi)
    assert (priors.sie.angle.low, priors.sie.angle.high) == pytest.approx((130.0, 210.0))
    assert (priors.slope.low, priors.slope.high) == pytest.approx((1.9, 2.3))
    assert {p.kind for p in (priors.sie.einstein_radius, priors.sie.axis_ratio, priors.sie.angle)} == {"uniform"}


def test_gaussian_bnn_priors_take_the_bnn_sigma_and_cut_at_the_ranges():
    prediction = ip.Prediction(1.6, 0.05, 0.95, 0.04, 3.0, 6.0, 2.45, 0.1)
    priors = ip.bnn_gaussian_priors(prediction, (0.1, 0.0), MODELLING, SETTINGS, power_law=True)
    q = priors.sie.axis_ratio
    assert (q.kind, q.mean, q.sigma, q.low, q.high) == ("gaussian", 0.95, 0.04, 0.25, 0.999)
    assert (priors.sie.angle.mean, priors.sie.angle.sigma) == (3.0, 6.0)
    assert np.isinf(priors.sie.angle.low) and np.isinf(priors.sie.angle.high)  # wraps: never cut
    assert (priors.slope.mean, priors.slope.sigma, priors.slope.high) == (2.45, 0.1, 2.5)
    assert priors.sie.centre_y.low == pytest.approx(-0.2) and priors.sie.centre_y.high == pytest.approx(0.4)
    # the autofit priors PyAutoFit gets are the truncated Gaussians stated
    autofit_q = q.to_autofit()
    assert (autofit_q.lower_limit, autofit_q.upper_limit) == (0.25, 0.999)


@pytest.mark.parametrize(
    "centre, half, bounds, expected",
    [
        (0.5, 0.1, (0.25, 0.999), (0.4, 0.6)),
        (0.3, 0.1, (0.25, 0.999), (0.25, 0.45)),
        (0.5, 1.0, (0.25, 0.999), (0.25, 0.999)),
    ],
)
def test_window(centre, half, bounds, expected):
    assert ip.window(centre, half, bounds) == pytest.approx(expected)


def test_the_config_block_builds_the_settings(default_config):
    settings = ip.PriorSettings.from_config(default_config["p21_comparison"]["priors"])
    assert settings.half_widths["angle"] == 40.0 and settings.slope_range == (1.5, 2.5)


def test_smoothing_lowers_the_noise_map_by_what_it_does_to_white_noise():
    noise = np.random.default_rng(3).normal(0.0, 2.0, (200, 200))
    smoothed, noise_map = ip.smoothed(noise, np.full(noise.shape, 2.0), 1.0)
    assert np.std(smoothed[20:-20, 20:-20]) == pytest.approx(noise_map[100, 100], rel=0.05)
    assert noise_map[100, 100] < 0.6  # ~2 / (2 sqrt(pi)): a 1-pixel Gaussian averages ~12 pixels


def test_a_faint_ring_without_a_3_sigma_pixel_is_found_once_smoothed():
    y, x = np.moveaxis(np.asarray(GRID.native), -1, 0)
    image = 1.6 * np.exp(-0.5 * ((np.hypot(y, x) - 1.7) / 0.12) ** 2)  # peak S/N 1.6 per pixel
    image = image + np.random.default_rng(2).normal(0.0, 1.0, image.shape)
    noise = np.ones_like(image)
    assert ip.fit_ring(image, noise, GRID.native, 3.0, 8) is None
    ring = ip.fit_ring(*ip.smoothed(image, noise, 1.0), GRID.native, 3.0, 8)
    assert ring.radius == pytest.approx(1.7, abs=0.1)
