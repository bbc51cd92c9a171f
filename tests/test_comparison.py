"""P21's PyAutoLens methods on a test-set lens: real (tiny-budget) fits, flags for what cannot be fitted."""

import logging

import numpy as np
import pytest

from hybridlens.analysis import comparison
from hybridlens.fitting import informed_priors
from hybridlens.reconstruction import masking
from hybridlens.simulation import simulate
from hybridlens import config as hlconfig
from hybridlens.simulation import p21_testsets
from hybridlens.simulation.survey import Survey

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def lens_and_settings(default_config):
    cfg = default_config
    settings = hlconfig.p21_testset_settings(cfg)
    survey_settings = hlconfig.survey_settings(cfg, "p21_testsets")
    survey = Survey.from_settings(survey_settings)
    rng = simulate.image_rng(5, "p21_sie_parametric", 0)
    out = p21_testsets.testset_image(rng, "sie_parametric", settings, simulate.Renderer(survey, 2), survey, None, None)
    annulus = masking.fit_annulus(out.image, survey.pixel_scale)
    lens = {
        "image": out.image,
        "noise_map": out.noise_map,
        "mask": annulus.mask,
        "truth": out.params,
        "annulus": {
            "inner_radius": annulus.inner_radius,
            "outer_radius": annulus.outer_radius,
            "centre_y": annulus.centre[0],
            "centre_x": annulus.centre[1],
        },
        "survey": survey_settings,
        "simulation_flags": out.flags,
        "mask_flags": annulus.flags,
    }
    fit_settings = {
        "modelling": {**cfg["modelling"], "search": {**cfg["modelling"]["search"], "n_live": 12, "max_calls": 150}},
        "inversion": {**cfg["inversion"], "overlay_shape": [16, 16]},
        "priors": informed_priors.PriorSettings.from_config(
            cfg["p21_comparison"]["priors"], cfg["masking"]["smooth_pixels"]
        ),
        "power_law": False,
    }
    return lens, fit_settings


def truth_prediction(truth, sigma=0.05):
    return informed_priors.Prediction(
        truth["einstein_radius"], sigma, truth["axis_ratio"], sigma, truth["angle"], 5.0, 2.0, np.nan
    )


def test_blind_and_bnn_gaussian_fits_run_and_record_their_priors_and_cost(lens_and_settings):
    lens, settings = lens_and_settings
    truth = lens["truth"]
    blind, _ = comparison.fit_lens(lens, "blind", None, settings, 3, LOG)
    # the ring fit lands near theta_E: the blind prior holds the truth
    assert blind["prior_einstein_radius_low"] < truth["einstein_radius"] < blind["prior_einstein_radius_high"]
    gaussian, _ = comparison.fit_lens(lens, "bnn_gaussian", truth_prediction(truth), settings, 3, LOG)
    assert gaussian["prior_einstein_radius_kind"] == 2.0 and gaussian["prior_einstein_radius_sigma"] == 0.05
    for row in (blind, gaussian):
        assert row["n_calls"] >= 150 and row["hit_call_cap"] == 1.0
        assert row["flags"] == comparison.FLAG_CALL_CAP  # the cap is recorded, not hidden
        assert np.isfinite(row["median_einstein_radius"]) and row["true_einstein_radius"] == truth["einstein_radius"]


def test_what_cannot_be_fitted_is_flagged_with_its_reason(lens_and_settings):
    lens, settings = lens_and_settings
    row, reason = comparison.fit_lens(lens, "bnn_uniform", None, settings, 3, LOG)
    assert row["flags"] == comparison.FLAG_NO_PREDICTION and "prediction" in reason
    blank = {**lens, "image": np.zeros_like(lens["image"])}
    row, reason = comparison.fit_lens(blank, "blind", None, settings, 3, LOG)
    assert row["flags"] == comparison.FLAG_NO_RING and "ring" in reason
    unusable = {**lens, "mask_flags": masking.FLAG_EMPTY}
    row, _ = comparison.fit_lens(unusable, "blind", None, settings, 3, LOG)
    assert row["flags"] == comparison.FLAG_UNUSABLE


def test_a_prediction_is_read_only_when_finite():
    columns = {
        "einstein_radius_mean": np.array([1.5, np.nan]),
        "einstein_radius_sigma": np.array([0.1, 0.1]),
        "axis_ratio_mean": np.array([0.8, 0.8]),
        "axis_ratio_sigma": np.array([0.05, 0.05]),
        "angle_mean": np.array([30.0, 30.0]),
        "angle_sigma": np.array([4.0, 4.0]),
    }
    assert comparison.prediction_from(columns, 0).einstein_radius == 1.5
    assert comparison.prediction_from(columns, 1) is None


def test_errors_are_fractional_for_theta_e_and_q_and_wrapped_for_phi():
    assert comparison.errors("einstein_radius", [1.1], [1.0]) == pytest.approx([0.1])
    assert comparison.errors("axis_ratio", [0.72], [0.8]) == pytest.approx([-0.1])
    assert comparison.errors("angle", [178.0, 2.0], [2.0, 178.0]) == pytest.approx([-4.0, 4.0])
    assert comparison.errors("slope", [2.1], [2.0]) == pytest.approx([0.1])


def test_tables_skip_flagged_fits_and_count_what_they_used():
    truth = {"einstein_radius": np.full(4, 2.0), "axis_ratio": np.full(4, 0.8), "angle": np.full(4, 10.0)}
    fits = {
        "median_einstein_radius": np.array([2.2, 1.8, 2.0, 50.0]),
        "median_axis_ratio": np.full(4, 0.8),
        "median_angle": np.full(4, 10.0),
        "flags": np.array([0, comparison.FLAG_CALL_CAP, comparison.FLAG_RING_SMOOTHED, comparison.FLAG_FIT_FAILED]),
    }
    estimates = {"blind": comparison.method_estimates("blind", fits, None)}
    (row,) = comparison.table_rows("sie_parametric", truth, estimates)
    assert row["n_einstein_radius"] == 3  # the failed fit is out; the capped and the noted ones are in
    assert row["einstein_radius"] == pytest.approx(
        0.5 * (np.percentile([0.1, -0.1, 0.0], 84.135) - np.percentile([0.1, -0.1, 0.0], 15.865))
    )


def test_timing_reports_speed_up_and_cap_hits():
    fits = {
        "blind": {
            "seconds": np.array([100.0, 300.0]),
            "n_calls": np.array([2000.0, 4000.0]),
            "flags": np.array([comparison.FLAG_RING_SMOOTHED | comparison.FLAG_RING_CLIPPED, comparison.FLAG_CALL_CAP]),
        },
        "bnn_gaussian": {
            "seconds": np.array([50.0, 50.0, np.nan]),
            "n_calls": np.array([900.0, 1100.0, np.nan]),
            "flags": np.array([0, 0, comparison.FLAG_NO_PREDICTION]),
        },
    }
    out = comparison.timing(fits)
    assert out["bnn_gaussian"]["speed_up_over_blind"] == pytest.approx(4.0)
    assert out["blind"]["call_cap_hits"] == 1 and out["blind"]["mean_calls"] == 3000.0
    # a blind prior fitted to the smoothed or clipped ring is a note, not a failure
    assert out["blind"]["failed_or_not_fitted"] == 0 and out["bnn_gaussian"]["failed_or_not_fitted"] == 1
