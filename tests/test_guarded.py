"""The guarded hybrid loop's pure parts: the BNN guard, S/N of a mask, catalogue rows, the evaluation."""

import numpy as np
import pandas as pd
import pytest

from hybridlens.fitting import guarded, hybrid, informed_priors, modelling
from hybridlens.flags import GuardedFlag
from hybridlens.reconstruction.masking import Annulus

MODELLING = {
    "centre_half_width": 0.5,
    "axis_ratio_range": [0.25, 0.999],
    "angle_range": [0.0, 180.0],
    "log10_coefficient_range": [-3.0, 2.0],
}
PRIORS = informed_priors.PriorSettings(
    3.0, 8, 0.2, {"einstein_radius": 0.2, "angle": 40.0, "axis_ratio": 0.1}, (1.5, 2.5)
)
RANGES = {"under": [0.1, 0.9], "correct": [0.95, 1.05], "over": [1.1, 3.0]}


class Settings:
    priors, modelling_priors = PRIORS, MODELLING


def prediction(theta, sigma=0.05):
    return informed_priors.Prediction(theta, sigma, 0.8, 0.05, 170.0, 10.0)


def test_the_bnn_prior_is_truncated_to_the_annulus_and_dropped_when_it_lies_outside():
    blind = modelling.uniform_priors((0.1, -0.1), (0.9, 1.8), MODELLING)
    priors, flags = guarded.first_priors(prediction(1.3), (0.9, 1.8), blind, (0.1, -0.1), Settings)
    theta = priors.einstein_radius
    assert (
        flags == 0
        and theta.kind == "gaussian"
        and (theta.mean, theta.sigma, theta.low, theta.high)
        == (
            1.3,
            0.05,
            0.9,
            1.8,
        )
    )
    assert priors.axis_ratio.kind == "gaussian" and priors.angle.mean == 170.0  # phi's Gaussian is not cut at 180
    assert priors.centre_y.low == pytest.approx(-0.4) and priors.centre_x.high == pytest.approx(0.4)
    priors, flags = guarded.first_priors(prediction(0.3), (0.9, 1.8), blind, (0.1, -0.1), Settings)
    assert flags == GuardedFlag.BNN_OFF_MASK and priors is blind


def test_a_bnn_far_from_the_arcs_pair_hands_theta_e_to_it_and_keeps_its_shape():
    """A double whose images lie 0.6" and 1.4" from the lens (theta_E 1.0): a BNN at 1.4" is moved, one at 1.1" kept."""
    peaks = np.array([[1.4, 0.0], [-0.6, 0.05]])
    check = guarded.PairCheck(tolerance=0.25, sigma=0.05)
    moved, flags, theta = guarded.pair_checked(prediction(1.4, 0.1), peaks, (0.0, 0.0), check)
    assert flags == GuardedFlag.PAIR_PRIOR and theta == pytest.approx(1.0, abs=0.01)
    assert moved.einstein_radius == theta and moved.einstein_radius_sigma == pytest.approx(0.1 / 1.4 * theta)
    assert (moved.axis_ratio, moved.angle) == (0.8, 170.0)
    assert guarded.pair_checked(prediction(1.4, 0.01), peaks, (0.0, 0.0), check)[0].einstein_radius_sigma == (
        pytest.approx(0.05 * theta)
    )
    kept, flags, _ = guarded.pair_checked(prediction(1.1), peaks, (0.0, 0.0), check)
    assert flags == 0 and kept.einstein_radius == 1.1
    assert guarded.pair_checked(prediction(1.4), peaks[:1], (0.0, 0.0), check)[1] == 0  # no pair: the BNN's
    assert guarded.pair_checked(prediction(1.4), peaks, (0.0, 0.0), None)[1] == 0  # check off


def test_a_bnn_a_little_off_the_pair_gets_a_second_prescan_start_there_and_one_on_it_does_not():
    check = guarded.PairCheck(tolerance=0.25, sigma=0.05, second_start=0.03)
    start = guarded.pair_start(prediction(1.12, 0.04), 1.0, check)
    assert start.einstein_radius == 1.0 and start.einstein_radius_sigma == pytest.approx(0.05)
    assert (start.axis_ratio, start.angle) == (0.8, 170.0)  # the BNN's shape: the pair says nothing of it
    assert guarded.pair_start(prediction(1.12, 0.12), 1.0, check).einstein_radius_sigma == pytest.approx(0.12 / 1.12)
    assert guarded.pair_start(prediction(1.02), 1.0, check) is None  # within second_start: one climb
    assert guarded.pair_start(prediction(1.12), np.nan, check) is None  # no opposite pair
    assert guarded.pair_start(prediction(1.12), 1.0, guarded.PairCheck(0.25, 0.05)) is None  # off


def test_signal_to_noise_counts_the_emission_inside_the_mask_not_its_empty_pixels():
    rng = np.random.default_rng(1)
    noise = np.ones((60, 60))
    arc = np.zeros((60, 60))
    arc[20:24, 10:30] = 5.0
    arc[50, 50] = 1000.0  # outside the mask
    mask = np.zeros((60, 60), bool)
    mask[5:45, 5:45] = True  # 1,600 pixels about an 80-pixel arc
    image = arc + rng.normal(size=arc.shape)
    arc_alone = 80 * 5.0 / np.sqrt(80)  # 44.7; the whole mask's pixels would give 400 / 40 = 10
    assert 0.7 * arc_alone < guarded.signal_to_noise(image, noise, mask) < 1.1 * arc_alone
    assert guarded.signal_to_noise(rng.normal(size=arc.shape), noise, mask) < 5  # noise alone is no lens
    assert guarded.signal_to_noise(image, noise, np.zeros((60, 60), bool)) == 0.0


def fitted_row(number, theta, verdict, action, seconds=10.0, calls=100.0):
    row = {"round": float(number), "verdict": float(verdict), "action": float(hybrid.ACTION_CODES[action])}
    for name, value in (("einstein_radius", theta), ("axis_ratio", 0.8), ("angle", 20.0), ("centre_y", 0.0)):
        row.update({f"median_{name}": value, f"lower_{name}": value - 0.01, f"upper_{name}": value + 0.01})
        row[f"sigma_{name}"] = 0.01
    row.update(median_centre_x=0.0, lower_centre_x=-0.01, upper_centre_x=0.01, sigma_centre_x=0.01)
    row.update(seconds=seconds, n_calls=calls, hit_call_cap=0.0, p_under=0.1, p_correct=0.8, p_over=0.1, flags=0.0)
    return row


def test_a_catalogue_row_reports_the_last_fitted_round_and_the_loops_cost():
    products = object()
    records = [
        hybrid.RoundRecord(fitted_row(0, 0.7, 0, "refit"), "UM", products),
        hybrid.RoundRecord(fitted_row(1, 1.2, 1, "accept", seconds=5.0, calls=50.0), "C after UM", products),
    ]
    annulus = Annulus(np.ones((4, 4), bool), 0.9, 1.8, (0.0, 0.0), 1.0)
    result = guarded.GuardedResult(records, annulus, prediction(1.25), 0, "accepted", 55.0)
    row = guarded.catalogue_row("lens", result, 20.0, lambda angle: (angle - 90.0) % 180.0)
    assert row["einstein_radius"] == 1.2 and row["verdict"] == "C" and row["final_action"] == "accept"
    assert row["fits"] == 2 and row["fit_seconds"] == 15.0 and row["likelihood_calls"] == 150.0
    assert row["position_angle"] == pytest.approx(110.0) and row["first_prior_einstein_radius"] == 1.25
    refused = guarded.GuardedResult([], None, None, GuardedFlag.BAD_INPUT, "input refused: image has 3 NaN/inf pixels")
    row = guarded.catalogue_row("bad", refused, 0.1)
    assert np.isnan(row["einstein_radius"]) and row["fits"] == 0 and row["flags"] == GuardedFlag.BAD_INPUT
    assert "refused" in guarded.describe_flags(row["flags"])


def rounds_table(lenses):
    """A rounds table: per lens a list of (theta, verdict, action, seconds), truth theta_E 1.0."""
    rows = []
    for index, rounds in enumerate(lenses):
        for number, (theta, verdict, action, seconds) in enumerate(rounds):
            row = fitted_row(number, theta, verdict, action, seconds)
            row.update(lens_index=float(index), truth_einstein_radius=1.0, truth_axis_ratio=0.8, truth_angle=20.0)
            rows.append(row)
    return pd.DataFrame(rows)


def test_the_evaluation_counts_unphysical_final_solutions_against_the_truth():
    m21 = rounds_table(
        [
            [(0.5, 0, "refit", 10), (0.6, 0, "flag", 10)],  # stays under: unphysical
            [(0.5, 0, "refit", 10), (1.0, 1, "refine", 10), (1.01, 1, "accept", 10)],  # recovered
            [(2.0, 2, "refit", 10), (0.92, 1, "refine", 10)],  # between classes: unphysical
        ]
    )
    mine = rounds_table(
        [[(1.0, 1, "refine", 5), (1.0, 1, "accept", 5)], [(0.5, 0, "refit", 5), (1.02, 1, "refine", 5)]]
    )
    mine = pd.concat([mine, rounds_table([[(0.98, 1, "refine", 5)]]).assign(lens_index=2.0)])
    summary = guarded.evaluate(
        {"m21_loop": m21, "bnn_gaussian": mine, "guarded": mine},
        {"m21_loop": 3, "bnn_gaussian": 0, "guarded": 3},
        RANGES,
    )
    assert summary["m21_loop"]["unphysical"] == 2 and summary["m21_loop"]["truth_classes"]["between"] == 1
    assert summary["bnn_gaussian"]["unphysical"] == 1  # its round 0 only: lens 1 was under
    assert summary["guarded"]["unphysical"] == 0 and summary["guarded"]["unphysical_change_vs_m21_loop"] == -1.0
    assert summary["m21_loop"]["fits_per_lens"]["mean"] == pytest.approx(7 / 3)
    assert summary["bnn_gaussian"]["fits_per_lens"]["mean"] == 1.0
    assert summary["guarded"]["seconds_per_lens"]["mean"] == pytest.approx(25 / 3)
    assert summary["m21_loop"]["first_fit_seconds"]["n"] == 3 and summary["guarded"]["first_fit_seconds"]["median"] == 5


def test_the_classifier_is_scored_on_both_loops_real_fits_by_their_truth_class():
    m21 = rounds_table([[(0.5, 0, "refit", 10), (0.6, 1, "flag", 10)], [(2.0, 0, "refit", 10), (1.5, 2, "flag", 10)]])
    m21["truth_class"] = [0.0, 0.0, 2.0, 2.0]  # under, under; over, over
    mine = rounds_table([[(1.0, 1, "accept", 5)], [(0.93, 1, "accept", 5)]])
    mine["truth_class"] = [1.0, 3.0]  # correct; between classes: no label, not scored
    summary = guarded.evaluate(
        {"m21_loop": m21, "bnn_gaussian": mine, "guarded": mine},
        {"m21_loop": 3, "bnn_gaussian": 0, "guarded": 3},
        RANGES,
    )
    scores = summary["classifier_on_real_fits"]
    assert scores["m21_loop"]["confusion_counts"] == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]
    assert scores["guarded"]["n_fits"] == 1 and scores["guarded"]["accuracy"] == 1.0
    assert scores["both_loops"]["n_fits"] == 5 and scores["both_loops"]["accuracy"] == pytest.approx(3 / 5)


def test_the_network_agrees_only_within_the_guards_sigma():
    bnn = prediction(1.2, 0.04)
    assert guarded.network_agrees(1.27, bnn, 2.0) and not guarded.network_agrees(1.29, bnn, 2.0)
    assert not guarded.network_agrees(1.2, bnn, None)
    assert not guarded.network_agrees(0.9 * 1.2, bnn, 2.0)  # the under-magnified range starts 10 % below
