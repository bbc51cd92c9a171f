"""M21 Figs 11-12 and P21 Figs 4 and 6: the networks' figures, and the numbers their JSON holds."""

import math

import numpy as np
import pytest
from figure_helpers import plotted

from hybridlens.networks import figures

GAUSSIAN = {k: math.erf(k / math.sqrt(2)) for k in (1, 2, 3)}  # as bnn.GAUSSIAN_COVERAGE


def test_confusion_records_the_fractions_shown(tmp_path):
    counts = np.array([[8, 2, 0], [1, 6, 3], [0, 0, 5]])
    fractions = counts / counts.sum(1, keepdims=True)
    shown = plotted(figures.confusion(fractions, ("under", "correct", "over"), "Sérsic test pairs (n=25)"), tmp_path)
    assert shown["classes"] == ["under", "correct", "over"] and shown["title"] == "Sérsic test pairs (n=25)"
    np.testing.assert_allclose(shown["fractions"], fractions)
    np.testing.assert_allclose(np.sum(shown["fractions"], axis=1), 1.0)


def test_confusion_of_an_empty_test_set_keeps_its_nan_rows(tmp_path):
    fractions = np.full((3, 3), np.nan)
    shown = plotted(figures.confusion(fractions, ("under", "correct", "over"), "none"), tmp_path)
    assert np.isnan(shown["fractions"]).all()


def test_coverage_sweep_records_the_coverage_at_each_rate(tmp_path):
    rates = [0.01, 0.05, 0.1, 0.2]
    names = ("einstein_radius", "axis_ratio", "angle")

    def coverage(rate, i):
        return {"coverage": {f"{k}sigma": min(1.0, 0.3 * k * (1 + rate) + 0.05 * i) for k in (1, 2, 3)}}

    validation = [{name: coverage(rate, i) for i, name in enumerate(names)} for rate in rates]  # one per rate
    shown = plotted(figures.coverage_sweep(rates, validation, GAUSSIAN, 0.05), tmp_path)
    assert shown["dropout_rates"] == rates and shown["chosen_rate"] == 0.05
    assert shown["gaussian"] == pytest.approx({"1sigma": 0.6827, "2sigma": 0.9545, "3sigma": 0.9973}, abs=1e-4)
    assert set(shown["coverage"]) == set(names)
    for name in names:
        for k in (1, 2, 3):
            assert shown["coverage"][name][f"{k}sigma"] == [v[name]["coverage"][f"{k}sigma"] for v in validation]


def test_predicted_vs_true_records_each_point_and_its_error_bar(tmp_path):
    rng = np.random.default_rng(8)
    truth = {"einstein_radius": rng.uniform(0.5, 2.0, 30), "axis_ratio": rng.uniform(0.3, 1.0, 30)}
    predictions = {name: (values + rng.normal(0, 0.05, 30), np.full(30, 0.05)) for name, values in truth.items()}
    shown = plotted(figures.predicted_vs_true(predictions, truth), tmp_path)
    assert set(shown) == {"einstein_radius", "axis_ratio"}
    for name, (mean, sigma) in predictions.items():
        assert shown[name]["true"] == pytest.approx(truth[name])
        assert shown[name]["mean"] == pytest.approx(mean) and shown[name]["sigma"] == pytest.approx(sigma)
        both = np.r_[truth[name], mean]
        assert shown[name]["diagonal"] == pytest.approx([both.min(), both.max()])
