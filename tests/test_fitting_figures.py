"""M21 Fig 13 and the guarded loop's evaluation: the figures, and the numbers their JSON holds."""

import numpy as np
import pandas as pd
import pytest
from figure_helpers import plotted

from hybridlens.fitting import figures, hybrid

CLASSES = ("under", "correct", "over")
TRUTH_CLASSES = ("under", "correct", "over", "between")


def rounds_table():
    """Four lenses: blind fits (lens 3's failed), lenses 0 and 3 rerun once."""
    rows = [
        # lens, round, verdict, truth class, theta_E, theta_true, q, q_true, phi, phi_true
        (0, 0, 0, 0, 1.00, 1.25, 0.70, 0.80, 10.0, 20.0),
        (1, 0, 1, 1, 1.02, 1.00, 0.81, 0.80, 45.0, 44.0),
        (2, 0, 2, 2, 2.40, 2.00, 0.50, 0.60, 170.0, 5.0),
        (3, 0, np.nan, 0, np.nan, 1.50, np.nan, 0.90, np.nan, 30.0),
        (0, 1, 1, 1, 1.24, 1.25, 0.79, 0.80, 19.0, 20.0),
        (3, 1, 1, 3, 1.40, 1.50, 0.85, 0.90, 35.0, 30.0),
    ]  # fmt: skip
    columns = ["lens_index", "round", "verdict", "truth_class"]
    columns += [f"{kind}_{name}" for name in ("einstein_radius", "axis_ratio", "angle") for kind in ("median", "truth")]
    return pd.DataFrame(rows, columns=columns)


def test_hybrid_rounds_record_each_round_histograms_and_class_counts(tmp_path):
    table = rounds_table()
    names = hybrid.round_names(1)
    shown = plotted(figures.hybrid_rounds(table, names, hybrid.state_after, CLASSES, TRUTH_CLASSES), tmp_path)

    assert shown["rounds"] == ["blind", "rerun 1"] and shown["classes"] == list(CLASSES)
    # after the blind round: lenses 0, 1, 2 (table rows 0-2); after the rerun: 0 and 3 refitted, 1 and 2 kept
    states = [table.loc[[0, 1, 2]], table.loc[[4, 1, 2, 5]]]
    errors = {
        "fractional_error_einstein_radius": [
            s["median_einstein_radius"] / s["truth_einstein_radius"] - 1 for s in states
        ],
        "fractional_error_axis_ratio": [s["median_axis_ratio"] / s["truth_axis_ratio"] - 1 for s in states],
        "absolute_error_angle": [[10.0, 1.0, 15.0], [1.0, 1.0, 15.0, 5.0]],  # on the 180-degree circle: 170 vs 5 is 15
    }
    for key, per_round in errors.items():
        every = np.concatenate(per_round)
        assert shown[key]["edges"] == pytest.approx(np.linspace(every.min(), every.max(), 21))
        for name, values in zip(names, per_round):
            expected = np.histogram(values, bins=np.asarray(shown[key]["edges"]))[0]
            assert shown[key]["counts"][name] == expected.tolist()
    assert shown["class_counts"]["blind"] == {"cnn": [1, 1, 1], "truth": [1, 1, 1]}
    assert shown["class_counts"]["rerun 1"] == {"cnn": [0, 3, 1], "truth": [0, 2, 1]}  # lens 3 is "between"


def test_guarded_evaluation_records_the_bars_of_each_panel(tmp_path):

    def approach(unphysical, theta_error, seconds):  # shaped as guarded.evaluate's, `describe` {"n": 0} when empty
        return {
            "unphysical_fraction": unphysical,
            "fractional_error_einstein_radius": {"n": 0} if theta_error is None else {"median": theta_error},
            "seconds_per_lens": {"n": 0} if seconds is None else {"mean": seconds},
        }

    summary = {"m21_loop": approach(0.4, 0.05, 300.0), "bnn_gaussian": approach(0.25, None, 90.0)}
    summary["guarded"] = approach(0.1, 0.02, None)
    labels = {"m21_loop": "M21 blind + reruns", "bnn_gaussian": "PyAL + BNN(1 sigma)", "guarded": "guarded hybrid"}
    shown = plotted(figures.guarded_evaluation(summary, labels), tmp_path)

    assert shown["approaches"] == list(summary) and shown["labels"] == list(labels.values())
    assert shown["unphysical_fraction"] == [0.4, 0.25, 0.1]
    # an approach without a number (no lens modelled) has no bar: NaN, not zero
    assert shown["median_fractional_error_einstein_radius"][::2] == [0.05, 0.02]
    assert np.isnan(shown["median_fractional_error_einstein_radius"][1])
    assert shown["mean_seconds_per_lens"][:2] == [300.0, 90.0] and np.isnan(shown["mean_seconds_per_lens"][2])
