import numpy as np
import pandas as pd
import pytest

from hybridlens.fitting import modelling
from hybridlens.reconstruction import calibration, inversion, masking, trainingset
from hybridlens.simulation import simulate
from test_inversion import mirrored_flux_fraction, size


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


def test_stratified_lenses_spread_over_theta_e_and_skip_unusable():
    rng = np.random.default_rng(3)
    theta = rng.normal(1.16, 0.42, 200)
    usable = rng.uniform(size=200) > 0.2
    chosen = calibration.stratified_lenses(theta, usable, 4)
    assert usable[chosen].all() and len(set(chosen)) == 4
    # each pick sits at its quantile of the usable radii, not bunched like the first four drawn
    quantiles = [np.mean(theta[usable] <= theta[i]) for i in chosen]
    assert quantiles == pytest.approx([0.125, 0.375, 0.625, 0.875], abs=0.01)
    with pytest.raises(ValueError, match="calibrate_relations.n_lenses"):
        calibration.stratified_lenses(theta[:3], [True, False, True], 3)


def test_relations_from_a_table_and_class_ranges(default_config):
    settings = default_config["calibrate_relations"]
    truth = np.array([0.8, 1.2, 1.6, 2.0])
    table = pd.DataFrame(
        {
            "label": np.repeat([0, 1, 2], 4),
            "truth_einstein_radius": np.tile(truth, 3),
            "ml_einstein_radius": np.concatenate([0.5 * truth - 0.1, truth, 2.0 * truth + 0.2]),
        }
    )
    lines = calibration.relations(table)
    assert lines["under"]["slope"] == pytest.approx(0.5) and lines["over"]["intercept"] == pytest.approx(0.2)
    low, high = calibration.class_range("over", 1.2, settings)
    assert (low, high) == pytest.approx((1.1 * 1.2, 3.0 * 1.2))


def test_relation_reliability_flags_a_noisy_or_negative_slope():
    rng = np.random.default_rng(1)
    truth = np.tile(np.linspace(0.6, 2.0, 4), 3)
    inferred = {0: 0.46 * truth[:4] - 0.08, 1: truth[:4], 2: -0.3 * truth[:4] + 2.5}
    table = pd.DataFrame(
        {
            "label": np.repeat([0, 1, 2], 4),
            "truth_einstein_radius": truth,
            "ml_einstein_radius": np.concatenate([inferred[k] for k in range(3)]) + rng.normal(0, 0.01, 12),
        }
    )
    lines = calibration.relations(table, max_relative_slope_error=0.25)
    assert lines["under"]["reliable"] and lines["correct"]["reliable"]
    assert not lines["over"]["reliable"]  # negative slope
    noisy = table.assign(ml_einstein_radius=table["ml_einstein_radius"] + rng.normal(0, 1.0, 12))
    assert not calibration.relations(noisy, max_relative_slope_error=0.25)["under"]["reliable"]


def test_unreliable_relation_widens_the_scan_window_to_the_class_range(default_config):
    settings = {
        **default_config["trainingset"],
        "class_ratio_ranges": default_config["calibrate_relations"]["class_ratio_ranges"],
    }
    line = {"slope": 0.46, "intercept": -0.08, "scatter": 0.02, "reliable": 1.0}
    narrow = trainingset.scan_window("under", 1.2, line, settings)
    wide = trainingset.scan_window("under", 1.2, {**line, "reliable": 0.0}, settings)
    assert wide == pytest.approx(calibration.class_range("under", 1.2, default_config["calibrate_relations"]))
    assert narrow[1] - narrow[0] < 0.5 * (wide[1] - wide[0])


@pytest.fixture(scope="module")
def noisy_lens(default_config, euclid):
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 1), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    settings = {**default_config["inversion"], "overlay_shape": [20, 20], "over_sample": 2}
    masked = inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)
    return sim, annulus, masked, inversion.Mass.from_truth(sim.params)


def test_under_fit_converges_to_an_under_magnified_solution(default_config, euclid, noisy_lens, tmp_path):
    """A real, converged Nautilus fit with M21's 'under' prior finds the under-magnified solution.

    Judged by what makes it unphysical, not by theta_E being inside its prior: the
    reconstruction is much larger than the correct model's, and the model does not
    mirror the data (no parity flip, unlike the over-magnified solution).
    """
    sim, annulus, masked, truth = noisy_lens
    modelling.configure(tmp_path)
    settings = default_config["calibrate_relations"]
    search = modelling.SearchSettings(n_live=20, max_calls=20_000, f_live=0.05, n_eff=100, n_batch=10)
    priors = calibration.class_priors("under", truth, settings, default_config["modelling"])
    result = modelling.fit_sie(masked, priors, search, "under", seed=3)
    assert not result.hit_call_cap
    under = result.mass()
    assert under.einstein_radius < 0.75 * truth.einstein_radius
    coefficient, _ = masked.best_coefficient(truth)
    extent = annulus.outer_radius
    sizes = {
        name: size(masked.products(mass, c, (80, 80), extent).source, extent)
        for name, mass, c in (("under", under, result.max_likelihood["coefficient"]), ("correct", truth, coefficient))
    }
    assert sizes["under"] > 1.5 * sizes["correct"]
    assert mirrored_flux_fraction(under, sim.model_image, euclid) < 0.2
    assert result.lower["einstein_radius"] <= result.median["einstein_radius"] <= result.upper["einstein_radius"]
