"""M21's rerun rules (section 3.5), one behaviour per test."""

from dataclasses import replace

import numpy as np
import pytest

from hybridlens.fitting import hybrid, modelling
from hybridlens.flags import HybridFlag
from hybridlens.reconstruction import positions

SETTINGS = hybrid.HybridSettings(
    reruns=3,
    under_half_width=0.25,
    over_half_width=0.5,
    refine_half_widths={"einstein_radius": 0.25, "axis_ratio": 0.1, "angle": 20.0, "centre_y": 0.1, "centre_x": 0.1},
    refine_f_live=0.01,
)
RANGES = {"under": (0.1, 0.9), "correct": (0.95, 1.05), "over": (1.1, 3.0)}
RELATIONS = {
    "under": {"slope": 0.5, "intercept": -0.1, "slope_error": 0.02, "reliable": True},
    "over": {"slope": 2.0, "intercept": 0.2, "slope_error": 0.1, "reliable": True},
}


def rnd(verdict, theta, sigma=0.02):
    return hybrid.Round(verdict, theta, theta - sigma, theta + sigma)


def act(*rounds, relations=RELATIONS, bounds=None):
    return hybrid.next_action(list(rounds), relations, SETTINGS, RANGES, bounds)


def test_first_um_inverts_the_under_relation():
    action = act(rnd("under", 0.5))  # theta_true = (0.5 + 0.1) / 0.5 = 1.2
    assert action.kind == hybrid.REFIT
    assert action.einstein_radius_range == pytest.approx((0.95, 1.45))


def test_first_om_inverts_the_over_relation_with_a_wider_prior():
    action = act(rnd("over", 2.6))  # theta_true = (2.6 - 0.2) / 2 = 1.2
    assert action.kind == hybrid.REFIT
    assert action.einstein_radius_range == pytest.approx((0.7, 1.7))


def test_unreliable_relation_falls_back_to_the_class_range():
    relations = {**RELATIONS, "under": {**RELATIONS["under"], "reliable": False}}
    action = act(rnd("under", 0.45), relations=relations)
    assert action.einstein_radius_range == pytest.approx((0.5, 4.5))  # 0.45/0.9 .. 0.45/0.1
    assert "unreliable" in action.reason


def test_moves_are_clipped_to_the_mask():
    action = act(rnd("under", 0.45), relations={}, bounds=(0.6, 1.8))
    assert action.einstein_radius_range == pytest.approx((0.6, 1.8))


def test_correct_is_refined_then_accepted():
    assert act(rnd("correct", 1.2)).kind == hybrid.REFINE
    assert act(rnd("under", 0.5), rnd("correct", 1.2)).kind == hybrid.REFINE
    assert act(rnd("over", 2.6), rnd("correct", 1.2)).kind == hybrid.REFINE
    assert act(rnd("correct", 1.2), rnd("correct", 1.21)).kind == hybrid.ACCEPT


def test_correct_on_a_prescan_narrowed_first_fit_is_accepted_without_a_refinement():
    narrowed = hybrid.Round("correct", 1.2, 1.18, 1.22, narrowed=True)
    assert act(narrowed).kind == hybrid.ACCEPT
    assert act(hybrid.Round("under", 0.5, 0.48, 0.52, narrowed=True)).kind == hybrid.REFIT
    row = {"verdict": 1.0, "median_einstein_radius": 1.2, "lower_einstein_radius": 1.1, "upper_einstein_radius": 1.3}
    assert not hybrid.RoundRecord({**row, "narrowed": np.nan}, "").round().narrowed  # a round read back without it
    assert hybrid.RoundRecord({**row, "narrowed": 1.0}, "").round().narrowed


def test_a_first_fit_agreeing_with_the_network_is_accepted_whatever_the_classifier_says():
    agreeing = hybrid.Round("under", 1.2, 1.18, 1.22, narrowed=True, network_agrees=True)
    assert act(agreeing).kind == hybrid.ACCEPT and "UM" in act(agreeing).reason
    assert act(hybrid.Round("under", 1.2, 1.18, 1.22, narrowed=True)).kind == hybrid.REFIT
    later = hybrid.Round("under", 1.2, 1.18, 1.22, narrowed=True, network_agrees=True)
    assert act(rnd("over", 2.6), later).kind != hybrid.ACCEPT  # only a first fit: reruns are judged as M21's


def test_a_fit_that_images_no_arc_peak_twice_is_moved_up_whatever_the_classifier_and_the_network_say():
    alone = hybrid.Round("correct", 0.3, 0.29, 0.31, narrowed=True, network_agrees=True, images_meet=True, lensed=False)
    action = act(alone)
    assert action.kind == hybrid.REFIT and "multiply imaged" in action.reason
    assert action.einstein_radius_range[0] > 0.3
    assert act(rnd("under", 0.3), replace(alone, narrowed=False)).kind == hybrid.FLAG  # UM twice: inspection
    row = {"verdict": 1.0, "median_einstein_radius": 0.3, "lower_einstein_radius": 0.29, "upper_einstein_radius": 0.31}
    assert not hybrid.RoundRecord({**row, "position_lensed": 0.0}, "").round().lensed
    assert hybrid.RoundRecord({**row, "position_lensed": np.nan}, "").round().lensed  # no peak: nothing known
    assert hybrid.RoundRecord(row, "").round().lensed  # a round written before the check


def test_a_split_source_is_never_accepted_and_its_geometry_sets_the_move():
    split = hybrid.Round("correct", 0.6, 0.58, 0.62, narrowed=True, network_agrees=True, split=True)
    action = act(split)
    assert action.kind == hybrid.REFIT and "do not meet" in action.reason
    assert action.einstein_radius_range[0] > 0.6  # "under": the prior moves up, by M21's relation
    over = hybrid.Round("correct", 2.0, 1.98, 2.02, split=True, split_verdict="over")
    assert act(over).einstein_radius_range[1] < 2.0
    assert act(rnd("correct", 1.2), hybrid.Round("correct", 1.2, 1.18, 1.22, split=True)).kind != hybrid.ACCEPT
    last = [
        rnd("under", 0.5),
        rnd("over", 2.0),
        rnd("under", 0.9),
        hybrid.Round("correct", 1.0, 0.98, 1.02, split=True),
    ]
    assert act(*last).kind == hybrid.FLAG  # out of reruns: flagged for inspection, not accepted unrefined
    meeting = hybrid.Round("under", 1.2, 1.18, 1.22, narrowed=True, images_meet=True)
    assert act(meeting).kind == hybrid.ACCEPT and "meet" in act(meeting).reason
    assert act(rnd("over", 2.6), hybrid.Round("under", 1.2, 1.18, 1.22, images_meet=True)).kind != hybrid.ACCEPT
    row = {"verdict": 1.0, "median_einstein_radius": 1.2, "lower_einstein_radius": 1.1, "upper_einstein_radius": 1.3}
    assert hybrid.RoundRecord({**row, "position_split": 0.0}, "").round().images_meet
    assert not hybrid.RoundRecord(row, "").round().images_meet  # no check ran: nothing is known
    read = hybrid.RoundRecord({**row, "position_split": 1.0, "position_verdict": 2.0}, "").round()
    assert read.split and read.split_verdict == "over"
    assert not hybrid.RoundRecord({**row, "position_split": np.nan}, "").round().split
    # one arc peak: its row (as positions writes it) holds NaNs where a pair would be traced
    single = hybrid.RoundRecord({**row, **positions.Traced(np.nan, False, "under", True).row()}, "").round()
    assert not single.split and not single.images_meet and single.lensed
    assert act(hybrid.Round("correct", 1.2, 1.18, 1.22), single).kind == hybrid.ACCEPT  # C after C, as without a check


@pytest.mark.parametrize("verdict", ["under", "over"])
def test_the_same_wrong_verdict_twice_is_flagged(verdict):
    action = act(rnd(verdict, 0.5 if verdict == "under" else 2.6), rnd(verdict, 0.55 if verdict == "under" else 2.5))
    assert action.kind == hybrid.FLAG and action.done


def test_um_and_om_in_turn_bracket_the_solution_excluding_both():
    for rounds in ((rnd("under", 0.6, 0.05), rnd("over", 2.0, 0.1)), (rnd("over", 2.0, 0.1), rnd("under", 0.6, 0.05))):
        action = act(*rounds)
        assert action.kind == hybrid.REFIT
        low, high = action.einstein_radius_range
        assert low == pytest.approx(0.65) and high == pytest.approx(1.9)


def test_um_above_om_is_a_contradiction_and_flagged():
    assert act(rnd("over", 0.8), rnd("under", 1.5)).kind == hybrid.FLAG


def test_wrong_after_correct_moves_as_a_first_verdict():
    action = act(rnd("correct", 1.2), rnd("under", 0.5))
    assert action.kind == hybrid.REFIT and action.einstein_radius_range == pytest.approx((0.95, 1.45))


def test_the_rerun_budget_ends_the_loop():
    rounds = [rnd("under", 0.5), rnd("over", 2.6), rnd("under", 0.7), rnd("over", 1.9)]
    action = act(*rounds)
    assert action.kind == hybrid.FLAG and "3 reruns" in action.reason
    assert act(*rounds[:3], rnd("correct", 1.2)).kind == hybrid.ACCEPT


PAIRS = {  # (previous, last) -> the action M21's rules take
    ("under", "under"): hybrid.FLAG,
    ("under", "correct"): hybrid.REFINE,
    ("under", "over"): hybrid.REFIT,
    ("correct", "under"): hybrid.REFIT,
    ("correct", "correct"): hybrid.ACCEPT,
    ("correct", "over"): hybrid.REFIT,
    ("over", "under"): hybrid.REFIT,
    ("over", "correct"): hybrid.REFINE,
    ("over", "over"): hybrid.FLAG,
}
RADII = {"under": 0.6, "correct": 1.2, "over": 2.4}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_every_history_pair(pair):
    action = act(rnd(pair[0], RADII[pair[0]]), rnd(pair[1], RADII[pair[1]]))
    assert action.kind == PAIRS[pair]
    if {"under", "over"} == set(pair):  # the bracket excludes both previous solutions
        low, high = action.einstein_radius_range
        assert RADII["under"] + 0.02 <= low < high <= RADII["over"] - 0.02


def test_a_failed_fit_flags_the_lens_and_stops_its_loop(problem, tmp_path):
    import dataclasses
    import logging

    modelling.configure(tmp_path / "autofit")
    broken = dataclasses.replace(problem, masked=None)  # the fit raises on its first call
    store = hybrid.RoundStore(tmp_path / "broken.h5", "d", logging.getLogger("test"))
    records = hybrid.model_lens(broken, lambda products: [0, 1, 0], RELATIONS, SETTINGS, store, logging.getLogger("t"))
    assert len(records) == 1 and records[0].action.kind == hybrid.FLAG and records[0].products is None
    assert int(records[0].row["flags"]) & HybridFlag.FIT_FAILED and "fit failed" in records[0].reason
    assert store.load()[0].reason == records[0].reason  # on disk, so the summary counts it


def test_no_history_is_an_error():
    with pytest.raises(ValueError):
        act()


def fit_result(theta, q, angle):
    return {
        "centre_y": 0.01,
        "centre_x": -0.02,
        "einstein_radius": theta,
        "axis_ratio": q,
        "angle": angle,
        "coefficient": 1.0,
    }


def blind_priors():
    settings = {
        "centre_half_width": 0.3,
        "axis_ratio_range": [0.25, 0.999],
        "angle_range": [0.0, 180.0],
        "log10_coefficient_range": [-3.0, 2.0],
    }
    return modelling.uniform_priors((0.0, 0.0), (0.5, 2.0), settings)


def test_priors_for_a_move_change_only_theta_e():
    blind = blind_priors()
    moved = hybrid.priors_for(hybrid.Action(hybrid.REFIT, "", (0.9, 1.4)), blind, fit_result(0.6, 0.3, 40.0), SETTINGS)
    assert (moved.einstein_radius.low, moved.einstein_radius.high) == (0.9, 1.4)
    assert moved.replace(einstein_radius=blind.einstein_radius) == blind


def test_refined_priors_are_narrow_inside_the_blind_ones_and_wrap_the_angle():
    blind = blind_priors()
    refined = hybrid.priors_for(hybrid.Action(hybrid.REFINE, ""), blind, fit_result(1.2, 0.95, 5.0), SETTINGS)
    assert (refined.einstein_radius.low, refined.einstein_radius.high) == pytest.approx((0.95, 1.45))
    assert (refined.axis_ratio.low, refined.axis_ratio.high) == pytest.approx((0.85, 0.999))
    assert (refined.angle.low, refined.angle.high) == pytest.approx((-15.0, 25.0))  # across 0 = 180 degrees
    assert refined.coefficient == blind.coefficient
    # the SIE reads the wrapped angle modulo 180: -10 degrees is the ellipse at 170
    assert np.allclose(
        modelling.SIE(angle=-10.0, axis_ratio=0.7).ell_comps, modelling.SIE(angle=170.0, axis_ratio=0.7).ell_comps
    )
    with pytest.raises(ValueError):
        hybrid.priors_for(hybrid.Action(hybrid.ACCEPT, ""), blind, fit_result(1.2, 0.9, 5.0), SETTINGS)


# --- the loop with real fits, a real (untrained, seeded) classifier and a real store ---------------


@pytest.fixture(scope="module")
def problem(default_config, euclid):
    from hybridlens.reconstruction import masking
    from hybridlens.simulation import simulate

    renderer = simulate.Renderer(euclid, 2)
    sim = simulate.slacs_image(simulate.image_rng(5, "blind", 0), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    lens = {
        "image": sim.image,
        "noise_map": sim.noise_map,
        "mask": annulus.mask,
        "truth": sim.params,
        "annulus": {"inner_radius": annulus.inner_radius, "outer_radius": annulus.outer_radius},
        "survey": {"name": "euclid_vis", **default_config["surveys"]["euclid_vis"]},
    }
    inversion_settings = {**default_config["inversion"], "overlay_shape": [16, 16], "over_sample": 2}
    modelling_settings = {
        **default_config["modelling"],
        "search": {**default_config["modelling"]["search"], "n_live": 12, "max_calls": 120},
    }
    trainingset_settings = {**default_config["trainingset"], "source_shape": [100, 100]}
    ranges = default_config["calibrate_relations"]["class_ratio_ranges"]
    return hybrid.lens_problem(lens, inversion_settings, modelling_settings, trainingset_settings, ranges, 11)


@pytest.fixture(scope="module")
def classify(default_config):
    import torch

    from hybridlens.networks import training

    torch.manual_seed(0)
    model = training.build_model(default_config["classifier"])
    return training.products_classifier(model, default_config["classifier"])


class Killed(Exception):
    pass


def test_killed_loop_resumes_at_its_round_and_equals_an_uninterrupted_one(problem, classify, tmp_path):
    import logging

    log = logging.getLogger("test")
    modelling.configure(tmp_path / "autofit")
    settings = hybrid.HybridSettings(**{**SETTINGS.__dict__, "reruns": 2})

    def verdicts(sequence):  # forced verdicts: the loop's path must not hang on an untrained network
        calls = iter(sequence)

        def judge(products):
            classify(products)  # the real network runs on the real products
            return next(calls)

        return judge

    under, over = [0.9, 0.05, 0.05], [0.05, 0.05, 0.9]
    uninterrupted = hybrid.model_lens(
        problem,
        verdicts([under, over, under]),
        RELATIONS,
        settings,
        hybrid.RoundStore(tmp_path / "a.h5", "d", log),
        log,
    )
    assert [r.action.kind for r in uninterrupted] == [hybrid.REFIT, hybrid.REFIT, hybrid.FLAG]

    def killed_after_two(products):
        if killed_after_two.calls == 2:
            raise Killed
        killed_after_two.calls += 1
        return [under, over][killed_after_two.calls - 1]

    killed_after_two.calls = 0
    store = hybrid.RoundStore(tmp_path / "b.h5", "d", log)
    with pytest.raises(Killed):
        hybrid.model_lens(problem, killed_after_two, RELATIONS, settings, store, log)
    assert len(store.load()) == 2
    resumed = hybrid.model_lens(problem, verdicts([under]), RELATIONS, settings, store, log)
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert a.reason == b.reason
        for key in ("median_einstein_radius", "log_evidence", "n_calls", "next_low", "prior_einstein_radius_low"):
            assert a.row.get(key) == pytest.approx(b.row.get(key), nan_ok=True)
    # a store written under other settings is not picked up
    assert hybrid.RoundStore(tmp_path / "b.h5", "other", log).load() == []


def test_summary_counts_failed_fits_and_call_caps_from_the_rounds_table():
    """The rounds as read back from HDF5 (a pandas table): lens 2's blind fit raised, lens 1's hit the cap."""
    import pandas as pd

    rows = [
        # lens, round, verdict, truth class, theta_E, true, action, flags, hit cap
        (0, 0, 0, 0, 1.00, 1.25, hybrid.ACTION_CODES[hybrid.REFIT], 0, 0),
        (1, 0, 1, 1, 1.02, 1.00, hybrid.ACTION_CODES[hybrid.REFINE], int(HybridFlag.CALL_CAP), 1),
        (2, 0, np.nan, 0, np.nan, 1.50, hybrid.ACTION_CODES[hybrid.FLAG], int(HybridFlag.FIT_FAILED), 0),
        (0, 1, 1, 1, 1.24, 1.25, hybrid.ACTION_CODES[hybrid.REFINE], 0, 0),
        (1, 1, 1, 1, 1.01, 1.00, hybrid.ACTION_CODES[hybrid.ACCEPT], 0, 0),
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "lens_index",
            "round",
            "verdict",
            "truth_class",
            "median_einstein_radius",
            "truth_einstein_radius",
            "action",
            "flags",
            "hit_call_cap",
        ],
    )
    for name in ("axis_ratio", "angle"):
        table[f"median_{name}"], table[f"truth_{name}"] = 0.8, 0.8
    table["axis_ratio_off"], table["seconds"], table["n_calls"] = 0, 60.0, 1000.0
    table["flags"] = table["flags"].astype(float)  # as io.read_params gives it back

    summary = hybrid.summarise(table, reruns=1)

    assert summary["failed_fits"] == 1
    assert summary["call_cap_hits"] == 1 and summary["call_cap_hit_fits"] == [{"lens_index": 1, "round": 0}]
    assert summary["final"]["accept"] == 1 and summary["final"]["flag"] == 1 and summary["final"]["refine"] == 1
