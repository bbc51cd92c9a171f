"""The P21 comparison's figures (error distributions, Fig 19 timing), and the numbers their JSON holds."""

import numpy as np
import pytest
from figure_helpers import plotted

from hybridlens.analysis import figures

ESTIMATORS = ("bnn", "blind", "bnn_uniform", "bnn_gaussian")  # as vocabulary.P21_ESTIMATORS
PARAMETERS = ("einstein_radius", "angle", "axis_ratio")


def test_error_distributions_record_each_histogram_per_set_parameter_and_method(tmp_path):
    rng = np.random.default_rng(9)

    def errors(scale, n=25):
        return {name: rng.normal(0, scale, n) for name in PARAMETERS}

    errors_by_set = {
        "sie_parametric": {"bnn": errors(0.02), "blind": errors(0.03), "bnn_gaussian": errors(0.01)},
        "sie_real": {"bnn": errors(0.05), "blind": {**errors(0.04), "angle": np.full(25, np.nan)}},
    }
    errors_by_set["sie_parametric"]["blind"]["einstein_radius"][:5] = np.nan  # flagged fits
    shown = plotted(figures.p21_error_distributions(errors_by_set, PARAMETERS, ESTIMATORS), tmp_path)

    assert set(shown) == set(errors_by_set)
    for testset, by_method in errors_by_set.items():
        for name in PARAMETERS:
            drawn = shown[testset][name]
            expected = {m for m, values in by_method.items() if np.isfinite(values[name]).any()}
            assert set(drawn) == expected  # a method without finite errors draws nothing
            for method in expected:
                values = by_method[method][name]
                counts, edges = np.histogram(values[np.isfinite(values)], bins=15)
                assert drawn[method]["counts"] == counts.tolist()
                assert drawn[method]["edges"] == pytest.approx(edges)
    assert sum(shown["sie_parametric"]["einstein_radius"]["blind"]["counts"]) == 20


def test_timing_records_each_method_histogram_and_mean(tmp_path):
    seconds = {
        "blind": [120.0, 300.0, np.nan, 180.0, 240.0],
        "bnn_uniform": [np.nan, np.nan],  # nothing fitted: no histogram
        "bnn_gaussian": np.array([60.0, 90.0, 75.0]),
    }
    shown = plotted(figures.p21_timing(seconds), tmp_path)
    assert set(shown) == {"blind", "bnn_gaussian"}
    for method in shown:
        finite = np.asarray(seconds[method])[np.isfinite(seconds[method])]
        counts, edges = np.histogram(finite, bins=15)
        assert shown[method]["counts"] == counts.tolist() and shown[method]["edges"] == pytest.approx(edges)
        assert shown[method]["mean_seconds"] == pytest.approx(finite.mean())
    assert shown["blind"]["mean_seconds"] == 210.0
