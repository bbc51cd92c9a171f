import numpy as np
import pandas as pd
import pytest

from hybridlens.reconstruction import calibration, inversion, masking, trainingset
from hybridlens.simulation import simulate

RANGES = {"under": [0.1, 0.9], "correct": [0.95, 1.05], "over": [1.1, 3.0]}


def settings(**extra):
    return {"class_ratio_ranges": RANGES, "window_sigma": 3.0, "min_window_fraction": 0.1, **extra}


def test_scan_window_follows_the_relation_inside_the_class_range():
    under = {"slope": 0.46, "intercept": -0.08, "scatter": 0.02, "reliable": 1.0}
    low, high = trainingset.scan_window("under", 1.5, under, settings())
    centre = 0.46 * 1.5 - 0.08
    assert low == pytest.approx(centre - 0.15) and high == pytest.approx(centre + 0.15)  # 10 % floor
    wide = {**under, "scatter": 5.0}
    assert trainingset.scan_window("under", 1.5, wide, settings()) == pytest.approx((0.15, 1.35))
    outside = {"slope": 5.0, "intercept": 0.0, "scatter": 0.01, "reliable": 1.0}  # predicts theta_U above 0.9 theta
    assert trainingset.scan_window("under", 1.0, outside, settings()) == pytest.approx((0.1, 0.9))
    assert trainingset.scan_window("correct", 2.0, None, settings()) == pytest.approx((1.9, 2.1))
    assert trainingset.scan_window("over", 1.0, {"slope": np.nan}, settings()) == pytest.approx((1.1, 3.0))


def test_coarse_to_fine_finds_a_sharp_peak_between_grid_points():
    calls = []

    def evidence(t):
        calls.append(t)
        return -((t - 1.2345) ** 2) * 1e4

    theta, value = trainingset.maximise_in_window(evidence, (0.5, 2.0), 9, 1e-4)
    assert theta == pytest.approx(1.2345, rel=1e-3)
    assert len(calls) < 40


def test_bad_lens_is_flagged_and_the_rest_of_the_shard_goes_on(default_config, euclid):
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 0), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    p = sim.params
    truth = inversion.Mass(p["einstein_radius"], p["axis_ratio"], p["angle"])
    images = np.stack([sim.image, np.full(sim.image.shape, np.nan)])
    relations = {
        "under": {"slope": 0.46, "intercept": -0.08, "scatter": 0.05},
        "over": {"slope": 2.11, "intercept": 0.16, "scatter": 0.2},
    }
    config = settings(
        scan_points=5,
        scan_rtol=0.01,
        source_shape=[40, 40],
        source_extent=1.0,
        wrong_theta="best",
        relax_evaluations=0,
        inversion={**default_config["inversion"], "overlay_shape": [16, 16]},
    )
    out = trainingset.build_shard(
        images,
        np.stack([sim.noise_map] * 2),
        np.stack([annulus.mask, annulus.mask]),
        [truth, truth],
        [annulus.outer_radius] * 2,
        [True, False],
        renderer.psf,
        euclid.pixel_scale,
        relations,
        config,
        {"axis_ratio": 0.05, "angle": 8.0, "centre": 0.03},
        [11, 12],
    )
    assert list(out["params"]["label"]) == [0, 1, 2, 0, 1, 2]
    q_off = out["params"]["axis_ratio"][:3] - truth.axis_ratio  # each class's model is off the truth besides theta_E
    assert (q_off != 0).all() and (np.abs(q_off) < 0.25).all()
    assert np.isnan(out["params"]["axis_ratio"][3:]).all()
    assert list(out["flags"]) == [0, 0, 0, 1, 1, 1]
    assert out["arrays"]["source"].shape == (6, 40, 40)
    good = out["params"]["einstein_radius"][:3]
    assert good[0] < 0.9 * truth.einstein_radius < 1.1 * truth.einstein_radius < good[2]
    assert good[1] == pytest.approx(truth.einstein_radius, rel=0.05)
    assert np.isnan(out["params"]["log_evidence"][3:]).all() and np.isfinite(out["params"]["log_evidence"][:3]).all()


def test_fit_errors_are_robust_to_a_near_round_lens_with_a_meaningless_angle():
    rng = np.random.default_rng(3)
    n = 400
    table = pd.DataFrame(
        {
            "median_axis_ratio": 0.7 + rng.normal(0, 0.06, n),
            "truth_axis_ratio": np.full(n, 0.7),
            "median_angle": (40.0 + rng.normal(0, 10.0, n)) % 180,
            "truth_angle": np.full(n, 40.0),
            "median_centre_y": rng.normal(0, 0.02, n),
            "median_centre_x": rng.normal(0, 0.02, n),
            "truth_lens_centre_y": np.zeros(n),
            "truth_lens_centre_x": np.zeros(n),
        }
    )
    table.loc[:20, "median_angle"] = 130.0  # near-round lenses: phi off by 90 degrees
    errors = calibration.fit_errors(table)
    assert errors["axis_ratio"] == pytest.approx(0.06, rel=0.15)
    assert errors["centre"] == pytest.approx(0.02, rel=0.15)
    assert 6.0 < errors["angle"] < 15.0  # |error| of a N(0, 10): its robust scale, not the 90-degree outliers'
    assert trainingset.perturbation_errors(None) is None


def test_relaxing_a_shape_off_the_truth_climbs_back_to_it_at_the_true_einstein_radius(default_config, euclid):
    """At the right theta_E the evidence's maximum in (q, phi, centre) is the truth's: a fit's shape."""
    renderer = simulate.Renderer(euclid, 4)
    rng = simulate.image_rng(2, "slacs", 3)  # q 0.82: phi means something
    sim = simulate.slacs_image(rng, default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    truth = inversion.Mass.from_truth(sim.params)
    lens = inversion.MaskedLens(
        sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, default_config["inversion"]
    )
    coefficient, _ = lens.best_coefficient(truth)
    start = inversion.Mass(
        truth.einstein_radius, truth.axis_ratio - 0.12, truth.angle + 12.0, (truth.centre[0] + 0.05, truth.centre[1])
    )
    relaxed = trainingset.relaxed(lens, start, coefficient, 80)
    assert relaxed.einstein_radius == truth.einstein_radius
    assert abs(relaxed.axis_ratio - truth.axis_ratio) < 0.05
    assert abs(relaxed.centre[0] - truth.centre[0]) < 0.03


def test_a_drawn_window_lies_in_its_class_range_and_spreads_over_it():
    rng = np.random.default_rng(5)
    windows = np.array([trainingset.drawn_window((0.1, 0.9), rng, 0.1) for _ in range(400)])
    assert (windows[:, 0] >= 0.1).all() and (windows[:, 1] <= 0.9).all() and (windows[:, 0] < windows[:, 1]).all()
    centres = windows.mean(axis=1)
    assert centres.min() < 0.2 and centres.max() > 0.8  # not pinned to the range's edge as the best-evidence row is


def test_a_searched_wrong_row_fits_its_einstein_radius_better_than_the_true_shape(default_config, euclid):
    """Over the blind priors, an under-magnified theta_E is fitted better by another shape than by the
    truth's: the models real wrong fits end on, which M21's truth-shape rows are not."""
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 3), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    truth = inversion.Mass.from_truth(sim.params)
    lens = inversion.MaskedLens(
        sim.image,
        sim.noise_map,
        annulus.mask,
        renderer.psf,
        euclid.pixel_scale,
        {**default_config["inversion"], "overlay_shape": [20, 20]},
    )
    coefficient, _ = lens.best_coefficient(truth)
    window = (0.4 * truth.einstein_radius, 0.8 * truth.einstein_radius)
    _, at_true_shape = trainingset.maximise_in_window(
        lambda t: lens.log_evidence(truth.with_einstein_radius(t), coefficient), window, 5, 0.005
    )
    search = trainingset.WrongSearch(draws=16, max_evaluations=40, centre_half_width=0.3)
    first = trainingset.searched(lens, truth, window, coefficient, search, np.random.default_rng(4))
    again = trainingset.searched(lens, truth, window, coefficient, search, np.random.default_rng(4))
    assert first == again  # seeded: the same row from the same stream
    assert lens.log_evidence(first, coefficient) > at_true_shape + 10.0
