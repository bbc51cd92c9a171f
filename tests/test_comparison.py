"""P21's PyAutoLens methods on a test-set lens: real (tiny-budget) fits, flags for what cannot be fitted."""

import logging

import numpy as np
import pytest

from hybridlens import comparison, informed_priors, masking, simulate
from hybridlens import config as hlconfig
from hybridlens import p21_testsets
from hybridlens.survey import Survey

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def lens_and_settings(default_config):
    cfg = default_config
    settings = {
        **cfg["p21_testsets"],
        "parametric_source": {
            **cfg["simulate_training"]["source"],
            "fractions": cfg["p21_testsets"]["parametric_fractions"],
        },
        "real_source": cfg["simulate_slacs"]["source"],
        "kappa_fit": cfg["p21_comparison"]["kappa_fit"],
    }
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
        "priors": informed_priors.PriorSettings.from_config(cfg["p21_comparison"]["priors"]),
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
