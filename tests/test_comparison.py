"""P21's PyAutoLens methods on a test-set lens: real (tiny-budget) fits, flags for what cannot be fitted."""

import logging

import numpy as np
import pandas as pd
import pytest

from hybridlens.analysis import comparison
from hybridlens.fitting import informed_priors
from hybridlens.flags import ComparisonFlag, MaskFlag
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
        assert row["flags"] == ComparisonFlag.CALL_CAP  # the cap is recorded, not hidden
        assert np.isfinite(row["median_einstein_radius"]) and row["true_einstein_radius"] == truth["einstein_radius"]


def test_what_cannot_be_fitted_is_flagged_with_its_reason(lens_and_settings):
    lens, settings = lens_and_settings
    row, reason = comparison.fit_lens(lens, "bnn_uniform", None, settings, 3, LOG)
    assert row["flags"] == ComparisonFlag.NO_PREDICTION and "prediction" in reason
    blank = {**lens, "image": np.zeros_like(lens["image"])}
    row, reason = comparison.fit_lens(blank, "blind", None, settings, 3, LOG)
    assert row["flags"] == ComparisonFlag.NO_RING and "ring" in reason
    unusable = {**lens, "mask_flags": MaskFlag.EMPTY}
    row, _ = comparison.fit_lens(unusable, "blind", None, settings, 3, LOG)
    assert row["flags"] == ComparisonFlag.UNUSABLE


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
        "flags": np.array([0, ComparisonFlag.CALL_CAP, ComparisonFlag.RING_SMOOTHED, ComparisonFlag.FIT_FAILED]),
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
            "flags": np.array([ComparisonFlag.RING_SMOOTHED | ComparisonFlag.RING_CLIPPED, ComparisonFlag.CALL_CAP]),
        },
        "bnn_gaussian": {
            "seconds": np.array([50.0, 50.0, np.nan]),
            "n_calls": np.array([900.0, 1100.0, np.nan]),
            "flags": np.array([0, 0, ComparisonFlag.NO_PREDICTION]),
        },
    }
    out = comparison.timing(fits)
    assert out["bnn_gaussian"]["speed_up_over_blind"] == pytest.approx(4.0)
    assert out["blind"]["call_cap_hits"] == 1 and out["blind"]["mean_calls"] == 3000.0
    # a blind prior fitted to the smoothed or clipped ring is a note, not a failure
    assert out["blind"]["failed_or_not_fitted"] == 0 and out["bnn_gaussian"]["failed_or_not_fitted"] == 1


def comparison_inputs():
    """Two sets: four lenses (two doubles) with every method's fits, and two lenses whose blind fits lack n_calls."""
    truths = {
        "sie_parametric": pd.DataFrame(
            {"einstein_radius": [1.0, 1.0, 2.0, 2.0], "axis_ratio": 0.8, "angle": 10.0, "is_double": [1, 0, 0, 1]}
        ),
        "sie_real": pd.DataFrame({"einstein_radius": [1.5, 1.5], "axis_ratio": 0.7, "angle": 100.0}),
    }
    predictions = {
        "sie_parametric": pd.DataFrame(
            {"einstein_radius_mean": [1.1, 0.9, 2.0, 2.0], "axis_ratio_mean": 0.8, "angle_mean": 10.0}
        ),
        "sie_real": pd.DataFrame({"einstein_radius_mean": [1.5, 1.5], "axis_ratio_mean": 0.7, "angle_mean": 100.0}),
    }

    def fits(theta, flags, seconds, calls=True, q=0.8, phi=10.0):
        table = pd.DataFrame({"median_einstein_radius": theta, "median_axis_ratio": q, "median_angle": phi})
        table["flags"], table["seconds"] = np.asarray(flags, float), seconds
        if calls:
            table["n_calls"] = 1000.0
        return table

    failed, no_prediction = ComparisonFlag.FIT_FAILED, ComparisonFlag.NO_PREDICTION
    all_fits = {
        "sie_parametric": {
            "blind": fits([1.1, 0.9, 2.2, 1.8], [0, 0, 0, 0], 100.0, q=[0.88, 0.72, 0.8, 0.8], phi=[12.0, 8.0, 10, 10]),
            "bnn_uniform": fits([1.0, 1.0, 2.0, 2.0], [0, 0, 0, failed], [50.0, 50.0, 50.0, np.nan]),
            "bnn_gaussian": fits([1.0, 1.0, 2.0, 2.0], [0, 0, 0, no_prediction], [25.0, 25.0, 25.0, np.nan]),
        },
        "sie_real": {
            "blind": fits([1.65, 1.35], [0, 0], [160.0, 140.0], calls=False, q=[0.77, 0.63], phi=[104.0, 96.0]),
            "bnn_uniform": fits([1.5, 1.5], [ComparisonFlag.CALL_CAP, 0], 50.0, q=0.7, phi=100.0),
            "bnn_gaussian": fits([1.5, 1.5], [0, 0], 25.0, q=0.7, phi=100.0),
        },
    }
    return truths, predictions, all_fits


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a set whose fits carry no n_calls
def test_compare_gathers_tables_doubles_errors_and_timing_over_the_sets():
    truths, predictions, fits = comparison_inputs()
    result = comparison.compare(["sie_parametric", "sie_real"], truths, predictions, fits)

    rows = {(row["testset"], row["method"]): row for row in result.rows}
    assert list(rows) == [(s, m) for s in ("sie_parametric", "sie_real") for m in ("bnn", *comparison.P21_METHODS)]
    blind = rows["sie_parametric", "blind"]
    # errors +-0.1 twice each: the central 68 % spans -0.1 to 0.1
    assert blind["einstein_radius"] == pytest.approx(0.1) and blind["n_einstein_radius"] == 4
    assert rows["sie_parametric", "bnn_uniform"]["n_einstein_radius"] == 3  # the failed fit is out
    assert rows["sie_parametric", "bnn_uniform"]["einstein_radius"] == 0.0
    assert rows["sie_real", "blind"]["einstein_radius"] == pytest.approx(0.1 * 0.6827)  # two errors, -0.1 and 0.1
    assert result.table().shape[0] == 8

    doubles = {(r["testset"], r["method"], r["images"]): r for r in result.double_rows}
    assert len(doubles) == 16
    assert doubles["sie_parametric", "blind", "doubles"]["n_einstein_radius"] == 2
    assert doubles["sie_parametric", "bnn_uniform", "doubles"]["n_einstein_radius"] == 1
    assert doubles["sie_real", "blind", "doubles"]["n_einstein_radius"] == 0  # a set without is_double: no doubles
    assert doubles["sie_real", "blind", "non_doubles"]["n_einstein_radius"] == 2

    errors = result.errors_by_set["sie_parametric"]
    assert errors["blind"]["einstein_radius"] == pytest.approx([0.1, -0.1, 0.1, -0.1])
    assert np.isnan(errors["bnn_uniform"]["einstein_radius"][3]) and errors["bnn"]["angle"] == pytest.approx([0] * 4)
    assert result.seconds_by_method["blind"] == [100.0] * 4 + [160.0, 140.0]  # every set, in set order

    assert result.timing_by_set["sie_parametric"]["blind"]["fits"] == 4
    capped = result.timing_by_set["sie_real"]["bnn_uniform"]  # a capped fit is listed by its lens, and still counts
    assert capped["call_cap_hit_fits"] == [{"lens_index": 0}] and capped["fits"] == 2
    assert result.timing_by_set["sie_parametric"]["bnn_uniform"]["call_cap_hit_fits"] == []
    assert np.isnan(result.timing_by_set["sie_real"]["blind"]["mean_calls"])  # its fits carry no n_calls
    timing = result.timing  # both sets together; a set without n_calls adds none
    assert timing["blind"]["fits"] == 6 and timing["blind"]["mean_seconds"] == pytest.approx(700.0 / 6)
    assert timing["blind"]["mean_calls"] == 1000.0
    assert timing["bnn_uniform"]["fits"] == 5 and timing["bnn_uniform"]["failed_or_not_fitted"] == 1
    assert timing["bnn_gaussian"]["speed_up_over_blind"] == pytest.approx((700.0 / 6) / 25.0)

    summary = result.summary(4)
    assert summary["tables"] == result.rows and summary["n_images_per_set"] == 4
    assert summary["error_ratios_to_blind"]["sie_parametric"]["einstein_radius"]["blind"] == 1.0
    assert summary["error_ratios_to_blind"]["sie_parametric"]["einstein_radius"]["bnn_uniform"] == 0.0
    assert summary["p21_reference"] is comparison.P21_REFERENCE
    assert set(result.timing_summary()) == {*comparison.P21_METHODS, "by_set", "p21_reference"}
    markdown = result.markdown(4)
    assert markdown.startswith("68 % intervals") and "4 images per set" in markdown and "P21 Tables 1-3" in markdown
