"""The evidence prescan: from a network-like start off in every parameter to the right mode, and its windows."""

import numpy as np
import pytest

from hybridlens.fitting import modelling, prescan
from hybridlens.reconstruction import inversion, masking
from hybridlens.simulation import simulate
from hybridlens.simulation.survey import NoiseModel
from inversion_helpers import INVERSION

SETTINGS = prescan.PrescanSettings(
    draws=64,
    draw_sigma=2.0,
    max_evaluations=120,
    half_widths={"einstein_radius": 0.1, "axis_ratio": 0.1, "angle": 15.0, "centre": 0.1, "log10_coefficient": 1.0},
)
PRIORS = {
    "centre_half_width": 0.3,
    "axis_ratio_range": [0.25, 0.999],
    "angle_range": [0.0, 180.0],
    "log10_coefficient_range": [-3.0, 2.0],
}


@pytest.fixture(scope="module")
def lens(default_config, euclid):
    """A noiseless SLACS-like lens (data = model) with a realistic noise map, masked."""
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(5, "slacs", 2), default_config["simulate_slacs"], renderer, euclid)
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    masked = inversion.MaskedLens(sim.model_image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, INVERSION)
    return masked, inversion.Mass.from_truth(sim.params), annulus


def off_truth(truth, theta_factor, dq, dphi, dcentre):
    """A network-like start: the true SIE moved in every parameter."""
    return inversion.Mass(
        theta_factor * truth.einstein_radius,
        min(truth.axis_ratio + dq, 0.99),
        truth.angle + dphi,
        (truth.centre[0] + dcentre[0], truth.centre[1] + dcentre[1]),
    )


def network_sigmas(truth):
    """A network's typical 1-sigma in theta_E, q, phi."""
    return (0.04 * truth.einstein_radius, 0.08, 12.0)


def test_a_start_off_by_about_a_sigma_everywhere_climbs_to_the_true_mode(lens):
    masked, truth, annulus = lens
    start = off_truth(truth, 1.04, 0.07, -10.0, (0.05, -0.05))
    sigmas, bounds = network_sigmas(truth), (annulus.inner_radius, annulus.outer_radius)
    result = prescan.scan(masked, start, sigmas, bounds, (0.25, 0.999), SETTINGS, seed=0)
    _, start_evidence = masked.best_coefficient(start)
    assert result.log_evidence > start_evidence
    assert result.mass.einstein_radius == pytest.approx(truth.einstein_radius, rel=0.02)
    assert np.hypot(*np.subtract(result.mass.centre, truth.centre)) < 0.05
    assert result.evaluations < SETTINGS.draws + SETTINGS.max_evaluations + 40  # + the two coefficient searches


def test_a_stamp_centre_pixels_off_is_found_by_the_centre_grid(lens):
    """A start 0.25" off the lens, the network's shape about right: the grid puts the climb on the lens."""
    masked, truth, annulus = lens
    start = off_truth(truth, 1.03, 0.05, -8.0, (0.2, -0.15))
    sigmas, bounds = network_sigmas(truth), (annulus.inner_radius, annulus.outer_radius)
    search = prescan.CentreSearch(half_width=0.3, step=0.05, window=0.2)
    assert len(search.offsets()) == 169 and not search.offsets()[0].any()
    result = prescan.scan(masked, start, sigmas, bounds, (0.25, 0.999), SETTINGS, seed=0, centre_search=search)
    assert np.hypot(*np.subtract(result.mass.centre, truth.centre)) < 0.05
    assert result.mass.einstein_radius == pytest.approx(truth.einstein_radius, rel=0.02)


def test_windows_hold_the_optimum_inside_the_outer_priors_and_wrap_the_angle():
    outer = modelling.uniform_priors((0.0, 0.0), (0.5, 2.0), PRIORS)
    found = prescan.Prescan(inversion.Mass(1.95, 0.97, 175.0, (0.28, 0.0)), 0.5, 0.0, None, None, 1, 0.0)
    priors = prescan.priors_about(found, outer, SETTINGS)
    assert (priors.einstein_radius.low, priors.einstein_radius.high) == pytest.approx((1.755, 2.0))
    assert (priors.axis_ratio.low, priors.axis_ratio.high) == pytest.approx((0.87, 0.999))
    assert (priors.angle.low, priors.angle.high) == pytest.approx((160.0, 190.0))  # one connected range of ellipses
    assert (priors.centre_y.low, priors.centre_y.high) == pytest.approx((0.18, 0.3))
    assert (priors.coefficient.low, priors.coefficient.high) == pytest.approx((0.05, 5.0))


def test_gaussians_are_recentred_on_the_optimum_with_the_networks_widths_and_the_coefficient_held():
    outer = modelling.uniform_priors((0.0, 0.0), (0.5, 2.0), PRIORS).replace(
        einstein_radius=modelling.Prior.gaussian(1.3, 0.05, 0.5, 2.0),
        axis_ratio=modelling.Prior.gaussian(0.9, 0.08, 0.25, 0.999),
        angle=modelling.Prior.gaussian(10.0, 12.0),
    )
    found = prescan.Prescan(inversion.Mass(1.4, 0.75, 178.0, (0.05, -0.02)), 0.5, 0.0, None, None, 1, 0.0)
    held = prescan.PrescanSettings(
        **{**vars(SETTINGS), "half_widths": {**SETTINGS.half_widths, "log10_coefficient": 0}}
    )
    priors = held.narrowed(found, outer)
    assert (priors.einstein_radius.kind, priors.einstein_radius.mean, priors.einstein_radius.sigma) == (
        "gaussian",
        1.4,
        0.05,
    )
    assert (priors.axis_ratio.mean, priors.axis_ratio.sigma, priors.axis_ratio.low) == (0.75, 0.08, 0.25)
    assert (priors.angle.mean, priors.angle.sigma) == (178.0, 12.0)
    assert (priors.centre_x.low, priors.centre_x.high) == pytest.approx((-0.12, 0.08))
    assert priors.coefficient.kind == "fixed" and priors.coefficient.to_autofit() == 0.5


def test_a_centre_window_of_zero_holds_the_centre_at_the_optimum():
    outer = modelling.uniform_priors((0.0, 0.0), (0.5, 2.0), PRIORS)
    found = prescan.Prescan(inversion.Mass(1.4, 0.75, 178.0, (0.05, -0.02)), 0.5, 0.0, None, None, 1, 0.0)
    held = prescan.PrescanSettings(**{**vars(SETTINGS), "half_widths": {**SETTINGS.half_widths, "centre": 0.0}})
    priors = held.narrowed(found, outer)
    assert (priors.centre_y.kind, priors.centre_y.mean, priors.centre_x.mean) == ("fixed", 0.05, -0.02)
    assert priors.einstein_radius.kind != "fixed"


def test_a_fit_with_the_centre_and_coefficient_held_samples_the_rest_and_reports_them_as_constants(lens, tmp_path):
    masked, truth, annulus = lens
    outer = modelling.uniform_priors(truth.centre, (annulus.inner_radius, annulus.outer_radius), PRIORS)
    found = prescan.Prescan(truth, 1.0, 0.0, None, None, 1, 0.0)
    held = prescan.PrescanSettings(
        **{**vars(SETTINGS), "half_widths": {**SETTINGS.half_widths, "centre": 0.0, "log10_coefficient": 0}}
    )
    search = modelling.SearchSettings(n_live=12, max_calls=400, f_live=0.2, n_eff=30, n_batch=10)
    modelling.configure(tmp_path)
    result = modelling.fit_sie(masked, held.narrowed(found, outer), search, "held", 1)
    assert result.median["centre_y"] == truth.centre[0] and result.median["coefficient"] == 1.0
    assert abs(result.median["einstein_radius"] / truth.einstein_radius - 1) < 0.05


def test_an_uncertain_start_centre_keeps_the_outer_window_about_the_stamp():
    """A stamp centre 0.25" off the lens: the climb barely moves it, so the window must still reach the lens."""
    outer = modelling.uniform_priors((0.0, 0.0), (0.5, 2.0), PRIORS)
    found = prescan.Prescan(inversion.Mass(1.4, 0.75, 178.0, (0.04, -0.02)), 0.5, 0.0, None, None, 1, 0.0)
    narrow = SETTINGS.narrowed(found, outer)
    wide = SETTINGS.narrowed(found, outer, centre_half_width=PRIORS["centre_half_width"])
    lens_y, lens_x = -0.18, 0.17
    assert not narrow.centre_y.low <= lens_y <= narrow.centre_y.high  # the old window excluded it
    assert wide.centre_y.low <= lens_y <= wide.centre_y.high and wide.centre_x.low <= lens_x <= wide.centre_x.high
    assert wide.centre_y.high <= outer.centre_y.high and wide.einstein_radius == narrow.einstein_radius


def test_two_starts_keep_the_climb_of_higher_evidence_and_count_both(lens):
    """A BNN 15 % high and off in shape beside the arcs' pair estimate 3 % low: the evidence picks, the cost adds."""
    import logging
    from types import SimpleNamespace

    from hybridlens.fitting import guarded, informed_priors

    masked, truth, annulus = lens
    bounds = (annulus.inner_radius, annulus.outer_radius)
    high = off_truth(truth, 1.15, 0.12, -15.0, (0.0, 0.0))
    bnn = informed_priors.Prediction(
        high.einstein_radius, 0.04 * high.einstein_radius, high.axis_ratio, 0.09, high.angle, 10.0
    )
    pair = guarded.pair_start(bnn, 0.97 * truth.einstein_radius, guarded.PairCheck(0.25, 0.05, 0.03))
    settings = SimpleNamespace(prescan=SETTINGS, modelling_priors=PRIORS, stamp_centre=None)
    problem = SimpleNamespace(masked=masked, bounds=bounds, seed=0)
    alone = guarded.first_prescan(masked, bnn, truth.centre, bounds, settings, 0)
    best, judge, start, other = guarded.best_prescan(
        problem, alone, bnn, pair, truth.centre, settings, False, logging.getLogger("test")
    )
    assert best.log_evidence == max(best.log_evidence, other) and best.log_evidence >= alone.log_evidence
    assert best.evaluations > alone.evaluations and judge is (pair if start == "pair" else bnn)
    assert best.mass.einstein_radius == pytest.approx(truth.einstein_radius, rel=0.02)
    print(f"BNN start alone: {alone.mass.einstein_radius / truth.einstein_radius:.3f} theta_true; two: {start}")
