import numpy as np
import pandas as pd
import pytest

from hybridlens import calibration, inversion, masking, modelling, simulate


def test_linear_relation_recovers_a_known_line():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.4, 2.5, 400)
    inferred = 0.46 * truth - 0.08 + rng.normal(0, 0.05, truth.size)
    line = calibration.linear_relation(truth, inferred)
    assert line["slope"] == pytest.approx(0.46, abs=4 * line["slope_error"])
    assert line["intercept"] == pytest.approx(-0.08, abs=4 * line["intercept_error"])
    assert line["scatter"] == pytest.approx(0.05, rel=0.15) and line["n"] == 400


def test_linear_relation_needs_two_distinct_points():
    assert np.isnan(calibration.linear_relation([1.0], [0.5])["slope"])
    assert np.isnan(calibration.linear_relation([1.0, 1.0], [0.5, 0.6])["slope"])


def test_relations_from_a_table_and_class_ranges(default_config):
    settings = default_config["calibrate_relations"]
    truth = np.array([0.8, 1.2, 1.6, 2.0])
    table = pd.DataFrame({
        "label": np.repeat([0, 1, 2], 4),
        "truth_einstein_radius": np.tile(truth, 3),
        "ml_einstein_radius": np.concatenate([0.5 * truth - 0.1, truth, 2.0 * truth + 0.2]),
    })  # fmt: skip
    lines = calibration.relations(table)
    assert lines["under"]["slope"] == pytest.approx(0.5) and lines["over"]["intercept"] == pytest.approx(0.2)
    low, high = calibration.class_range("over", 1.2, settings)
    assert (low, high) == pytest.approx((1.1 * 1.2, 3.0 * 1.2))


def test_constrained_nautilus_fit_stays_in_its_class(default_config, euclid, tmp_path):
    """A real (small) PyAutoFit + Nautilus fit: theta_E ends inside the forcing range."""
    modelling.configure(tmp_path)
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 1), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    settings = {**default_config["inversion"], "overlay_shape": [16, 16]}
    masked = inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)
    search = {**default_config["calibrate_relations"]["search"], "n_live": 15, "max_calls": 300}
    theta = sim.params["einstein_radius"]
    low, high = calibration.class_range("under", theta, default_config["calibrate_relations"])
    result = modelling.fit_sie(masked, (low, high), search, "under", seed=3)
    assert low <= result["ml_einstein_radius"] <= high
    assert np.isfinite(result["log_evidence"]) and result["n_calls"] >= 300
    assert 0 < result["ml_axis_ratio"] <= 1 and 0 <= result["ml_angle"] < 180
