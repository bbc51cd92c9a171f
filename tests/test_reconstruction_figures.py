"""M21 Figs 2, 4-7 and the training set's theta / theta_true: the figures, and the numbers their JSON holds."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from figure_helpers import plotted

from hybridlens import plotting
from hybridlens.reconstruction import figures, inversion, trainingset

CLASSES = ("under", "correct", "over")
CLASS_RANGES = {"under": (0.1, 0.9), "correct": (0.95, 1.05), "over": (1.1, 3.0)}  # config's class_ratio_ranges
M21_LINES = {"under": {"slope": 0.46, "intercept": -0.08}, "over": {"slope": 2.11, "intercept": 0.16}}


def test_calibration_scatter_records_the_points_and_lines_per_class(tmp_path):
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.8, 2.0, 12)
    table = pd.DataFrame(
        {
            "label": np.arange(12) % 3,
            "truth_einstein_radius": truth,
            "ml_einstein_radius": truth * rng.uniform(0.5, 2, 12),
        }
    )
    ours = {"under": {"slope": 0.5, "intercept": -0.1}, "correct": {"slope": 1.0, "intercept": 0.0}}
    ours["over"] = {"slope": np.nan, "intercept": np.nan}  # an unreliable fit is not drawn
    shown = plotted(
        figures.calibration_scatter(table, "einstein_radius", CLASSES, ours, M21_LINES, "(arcsec)"), tmp_path
    )

    assert shown["span"] == pytest.approx([truth.min(), truth.max()])
    for label, name in enumerate(CLASSES):
        rows = table[table["label"] == label]
        assert shown["classes"][name]["true"] == pytest.approx(rows["truth_einstein_radius"])
        assert shown["classes"][name]["inferred"] == pytest.approx(rows["ml_einstein_radius"])
    assert shown["classes"]["under"]["ours"] == {"slope": 0.5, "intercept": -0.1}
    assert shown["classes"]["over"]["ours"] is None and shown["classes"]["over"]["m21"] == M21_LINES["over"]
    assert shown["classes"]["correct"]["m21"] is None


def test_calibration_scatter_without_lines_records_the_points_alone(tmp_path):
    table = pd.DataFrame({"label": [0, 1, 2, 1], "truth_angle": [10.0, 50, 90, 120], "ml_angle": [12.0, 49, 95, 118]})
    shown = plotted(figures.calibration_scatter(table, "angle", CLASSES, unit="(deg)"), tmp_path)
    assert shown["classes"]["correct"]["true"] == [50.0, 120.0] and shown["classes"]["correct"]["inferred"] == [49, 118]
    assert all(c["ours"] is None and c["m21"] is None for c in shown["classes"].values())


def test_reconstruction_panels_record_each_class_numbers_and_colour_limits(tmp_path):
    rng = np.random.default_rng(6)

    def products(scale):
        return SimpleNamespace(
            source=rng.uniform(0, scale, (12, 12)),
            source_extent=1.5,
            residual=rng.normal(0, scale, (24, 24)),
            chi_squared_map=rng.chisquare(1, (24, 24)),
            chi_squared=500.0 * scale,
            log_evidence=-1000.0 * scale,
        )

    pairs = [
        trainingset.Pair(k, inversion.Mass(1.2 * (0.8 + 0.2 * k), 0.8, 30.0), None, products(k + 1.0)) for k in (0, 2)
    ]
    observation = rng.uniform(0, 3, (24, 24))
    shown = plotted(figures.reconstruction_panels(observation, pairs, 0.1, CLASSES), tmp_path)

    assert shown["observation_shape"] == [24, 24] and shown["half_width"] == pytest.approx(1.2)
    assert [row["class"] for row in shown["rows"]] == ["under", "over"]
    for row, pair in zip(shown["rows"], pairs):
        theta, prod = pair.einstein_radius, pair.products
        assert row["einstein_radius"] == theta and row["log_evidence"] == prod.log_evidence
        assert row["chi_squared"] == prod.chi_squared and row["source_shape"] == [12, 12]
        assert row["source_range"] == pytest.approx(plotting.robust_range(prod.source))
        limit = plotting.robust_range(np.abs(prod.residual))[1]
        assert row["residual_range"] == pytest.approx([-limit, limit])
        assert row["chi_squared_range"] == pytest.approx([0.0, plotting.robust_range(prod.chi_squared_map)[1]])


def test_evidence_slices_record_the_finite_curve_below_its_peak(tmp_path):
    ratios = np.linspace(0.2, 2.5, 24)
    evidence = -50.0 * (ratios - 1.0) ** 2 + 1e4
    evidence[3] = np.nan  # an inversion that failed
    slices = [(ratios, evidence, "lens 0"), (ratios, evidence - 30.0 * ratios, "lens 1")]
    shown = plotted(figures.evidence_slices(slices, CLASS_RANGES), tmp_path)

    assert shown["class_ranges"] == {name: list(bounds) for name, bounds in CLASS_RANGES.items()}
    assert [s["title"] for s in shown["slices"]] == ["lens 0", "lens 1"]
    finite = np.isfinite(evidence)
    for drawn, (_, values, _) in zip(shown["slices"], slices):
        assert drawn["ratio"] == pytest.approx(ratios[finite])
        assert drawn["log_evidence_below_peak"] == pytest.approx(values[finite] - np.nanmax(values))
        assert max(drawn["log_evidence_below_peak"]) == 0.0


def test_class_ratio_histograms_record_the_counts_and_where_the_relations_sit(tmp_path):
    rng = np.random.default_rng(7)
    ratios = {"under": rng.uniform(0.2, 0.9, 40), "correct": rng.uniform(0.95, 1.05, 30), "over": np.r_[1.5, 3.6]}
    ours = {"under": {"slope": 0.5, "intercept": -0.1}, "correct": {}, "over": {"slope": np.nan, "intercept": 0.0}}
    shown = plotted(figures.class_ratio_histograms(ratios, ours, M21_LINES, 1.4), tmp_path)

    edges = np.linspace(0.0, 3.6, 65)  # to the largest ratio when it passes 3.2
    assert shown["edges"] == pytest.approx(edges)
    for name, values in ratios.items():
        assert shown["counts"][name] == np.histogram(values, bins=edges)[0].tolist()
    assert shown["theta_median"] == 1.4
    assert shown["lines"]["under"] == pytest.approx({"ours": (0.5 * 1.4 - 0.1) / 1.4, "m21": (0.46 * 1.4 - 0.08) / 1.4})
    assert shown["lines"]["over"] == pytest.approx({"m21": (2.11 * 1.4 + 0.16) / 1.4})  # ours unreliable: not drawn
    assert shown["lines"]["correct"] == {}


def test_class_ratio_histograms_keep_the_default_range_and_an_empty_class(tmp_path):
    ratios = {"under": np.array([0.5, 0.6]), "correct": np.zeros(0), "over": np.array([1.2])}
    shown = plotted(figures.class_ratio_histograms(ratios, None, None, 1.0), tmp_path)
    assert shown["edges"][-1] == pytest.approx(3.2) and sum(shown["counts"]["correct"]) == 0
    assert sum(shown["counts"]["under"]) == 2
