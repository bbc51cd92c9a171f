"""COOLEST export: read back with COOLEST's own API, equal to the catalogue, and in COOLEST's conventions."""

import json

import autolens as al
import numpy as np
import pytest

from hybridlens import io
from hybridlens.fitting import guarded, hybrid
from hybridlens.own_lenses import coolest_export
from hybridlens.reconstruction import inversion, masking
from hybridlens.simulation import simulate
from hybridlens.simulation.survey import NoiseModel
from inversion_helpers import INVERSION


def fitted_row(mass, coefficient, products):
    """A final round whose posterior sits about `mass` (medians at it, 68 % intervals around it)."""
    row = {"round": 0.0, "verdict": 1.0, "action": float(hybrid.ACTION_CODES["accept"]), "flags": 0.0}
    values = {
        "einstein_radius": mass.einstein_radius,
        "axis_ratio": mass.axis_ratio,
        "angle": mass.angle,
        "centre_y": mass.centre[0],
        "centre_x": mass.centre[1],
    }
    for name, value in values.items():
        row.update({f"median_{name}": value, f"lower_{name}": value - 0.02, f"upper_{name}": value + 0.03})
        row.update({f"ml_{name}": value, f"sigma_{name}": 0.025})
    row.update(ml_coefficient=coefficient, log_evidence=products.log_evidence, seconds=60.0, n_calls=900.0)
    row.update(hit_call_cap=0.0, p_under=0.1, p_correct=0.8, p_over=0.1)
    return row


@pytest.fixture(scope="module")
def exported(default_config, euclid, tmp_path_factory):
    """A SLACS-like lens "fitted" at its truth, written as the model_lens rule writes it, then exported."""
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(5, "slacs", 3), default_config["simulate_slacs"], renderer, euclid)
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    masked = inversion.MaskedLens(sim.image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, INVERSION)
    truth = inversion.Mass.from_truth(sim.params)
    coefficient, _ = masked.best_coefficient(truth)
    products = masked.products(truth, coefficient, (40, 40), 1.5 * annulus.outer_radius)
    result = guarded.GuardedResult(
        [hybrid.RoundRecord(fitted_row(truth, coefficient, products), "accepted", products)], annulus, None, 0, "ok"
    )
    row = guarded.catalogue_row("J0000", result, 61.0)
    folder = tmp_path_factory.mktemp("lenses")
    attrs = io.provenance("model_lens", "0" * 64, 0, euclid.as_dict(), name="J0000", pixel_scale=euclid.pixel_scale)
    data = {"image": sim.image, "noise_map": noise_map, "psf_kernel": renderer.psf}
    guarded.write_lens(folder / "J0000.h5", result, row, data, attrs)
    path = coolest_export.export(
        folder / "J0000.h5", folder / "J0000.coolest.json", folder / "J0000.coolest", INVERSION
    )
    return coolest_export.read(path), row, sim, data, annulus, path


def lens_mass(template):
    lens = next(entity for entity in template.lensing_entities if entity.name == "lens")
    return lens.mass_model[0].parameters


def test_coolest_reads_back_the_catalogues_model_with_its_posterior(exported):
    template, row, *_ = exported
    parameters = lens_mass(template)
    value = lambda name: parameters[name].point_estimate.value
    factor = coolest_export.theta_e_factor(row["axis_ratio"])  # the two codes' SIE conventions
    assert value("theta_E") == pytest.approx(factor * row["einstein_radius"])
    assert value("q") == pytest.approx(row["axis_ratio"])
    assert (value("center_y"), value("center_x")) == pytest.approx((row["centre_y"], row["centre_x"]))
    assert coolest_export.angle_from_phi(value("phi")) == pytest.approx(row["angle"] % 180.0)
    assert -90.0 <= value("phi") < 90.0
    posterior = parameters["theta_E"].posterior_stats
    assert (posterior.percentile_16th, posterior.percentile_84th) == pytest.approx(
        (factor * row["einstein_radius_lower"], factor * row["einstein_radius_upper"])
    )
    assert template.mode == "MAP" and template.meta["hybridlens"]["final_action"] == row["final_action"]


def test_data_noise_psf_and_mask_come_back_in_pyautolens_rows_through_coolests_reader(exported):
    template, _, _, data, annulus, path = exported
    folder = str(path.parent)
    pixels = template.observation.pixels
    assert pixels.pixel_size == pytest.approx(template.instrument.pixel_size)
    assert np.array_equal(np.flipud(pixels.get_pixels(folder)), data["image"])
    assert np.array_equal(np.flipud(template.observation.noise.noise_map.get_pixels(folder)), data["noise_map"])
    assert np.allclose(np.flipud(template.instrument.psf.pixels.get_pixels(folder)), data["psf_kernel"])
    mask = template.likelihoods[0].get_mask_pixels(folder)
    assert np.array_equal(np.flipud(mask).astype(bool), annulus.mask)


def test_coolests_own_sie_has_pyautolens_convergence_at_the_exported_parameters(exported):
    """theta_E, q, phi and the centre mean the same in both codes: COOLEST's profile, fed the exported
    values, gives PyAutoLens' convergence of the catalogue's model."""
    from coolest.api.profiles.mass import PEMD

    template, row, *_ = exported
    parameters = {name: p.point_estimate.value for name, p in lens_mass(template).items()}
    rng = np.random.default_rng(0)
    y, x = rng.uniform(-2.0, 2.0, (2, 200))
    ours = al.mp.Isothermal(
        centre=(row["centre_y"], row["centre_x"]),
        ell_comps=al.convert.ell_comps_from(axis_ratio=row["axis_ratio"], angle=row["angle"]),
        einstein_radius=row["einstein_radius"],
    )
    expected = np.asarray(ours.convergence_2d_from(grid=al.Grid2DIrregular(np.stack([y, x], axis=1))))
    theirs = PEMD().convergence(x, y, gamma=2.0, **parameters)
    assert np.allclose(theirs, expected, rtol=1e-6)


def test_the_source_grid_is_brightest_at_the_true_source_position(exported):
    template, _, sim, _, _, path = exported
    source = next(entity for entity in template.lensing_entities if entity.name == "source")
    grid = source.light_model[0].parameters["pixels"]
    x, y, z = grid.get_xyz(str(path.parent))
    assert len(z) == grid.num_pix > 100
    brightest = np.argmax(z)
    truth = (sim.params["source_centre_y"], sim.params["source_centre_x"])
    assert np.hypot(y[brightest] - truth[0], x[brightest] - truth[1]) < 0.1


def test_a_lens_that_was_not_fitted_gets_a_template_with_its_reason_and_no_model(tmp_path, euclid):
    result = guarded.GuardedResult([], None, None, 1, "input refused: unreadable FITS file")
    row = guarded.catalogue_row("broken", result, 0.1)
    attrs = io.provenance("model_lens", "0" * 64, 0, euclid.as_dict(), name="broken")
    guarded.write_lens(tmp_path / "broken.h5", result, row, {}, attrs)
    path = coolest_export.export(tmp_path / "broken.h5", tmp_path / "broken.coolest.json", tmp_path / "b", INVERSION)
    template = coolest_export.read(path, check_files=False)  # no data, no FITS file
    assert len(template.lensing_entities) == 0
    assert "unreadable" in template.meta["hybridlens"]["reason"]
    assert json.loads(path.read_text())["standard"] == "COOLEST"
