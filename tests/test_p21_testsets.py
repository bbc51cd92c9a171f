"""P21's test sets: one image per kind of realism, simulated for real."""

import autolens as al
import numpy as np
import pytest

from hybridlens import config as hlconfig
from hybridlens.flags import SimulationFlag
from hybridlens.simulation import hudf, line_of_sight, p21_testsets, simulate
from hybridlens.simulation.survey import Survey

TINY_LOS = {
    "planes_before_lens": 1,
    "planes_after_lens": 1,
    "m_min": 1.0e9,
    "m_max": 1.0e11,
    "cone_radius_arcsec": 4.0,
    "c_scatter": 0.15,
    "truncation_factor": 100.0,
}


@pytest.fixture(scope="module")
def setup(default_config):
    cfg = default_config
    settings = {**hlconfig.p21_testset_settings(cfg), "line_of_sight": TINY_LOS}
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "p21_testsets"))
    images, _ = hudf.galaxy_stamps(
        hudf.luminance(), {"threshold_sigma": 3.0, "min_area": 40, "max_area": 3000, "padding": 1.3, "n_stamps": 10}
    )
    stamps = {"stamps": images, "half_light_radius": np.array([hudf.half_light_radius(i) for i in images])}
    return settings, simulate.Renderer(survey, 2), survey, stamps


def image(setup, name, index=0, coefficients=None):
    settings, renderer, survey, stamps = setup
    rng = simulate.image_rng(5, f"p21_{name}", index)
    return p21_testsets.testset_image(rng, name, settings, renderer, survey, stamps, coefficients)


@pytest.mark.parametrize("name", ["sie_parametric", "power_law_real"])
def test_profile_sets_keep_the_drawn_lens_as_truth_and_are_multiply_imaged(setup, name):
    out = image(setup, name)
    assert out.flags == 0 and np.isfinite(out.image).all()
    assert 1.3 <= out.params["einstein_radius"] <= 2.6 and out.params["n_point_images"] >= 2
    assert "kappa_fit_residual" not in out.params
    assert simulate.integrated_snr(out.model_image, out.noise_map) >= 20.0  # the arcs are seen


def test_a_line_of_sight_set_takes_its_truth_from_the_effective_convergence(setup):
    settings = setup[0]
    los = line_of_sight.LOSSettings.from_config(settings["line_of_sight"])
    coefficients = line_of_sight.plane_coefficients(0.5, 2.0, los)
    out = image(setup, "sie_real_los", coefficients=coefficients)
    assert out.flags == 0 and out.params["n_halos"] > 0
    # the fitted truth is near, not equal to, the drawn SIE: the halos and sheets perturb it
    assert out.params["einstein_radius"] == pytest.approx(out.params["input_einstein_radius"], rel=0.1)
    assert out.params["einstein_radius"] != out.params["input_einstein_radius"]
    assert out.params["kappa_fit_residual"] < 0.2


def test_the_multi_plane_pixelised_render_equals_the_single_plane_one_without_a_line_of_sight(setup):
    _, renderer, survey, stamps = setup
    lens = al.Galaxy(redshift=0.5, mass=al.mp.Isothermal(einstein_radius=1.5))
    source = stamps["stamps"][0] * 100.0
    single = renderer.lensed_pixelised(lens, source, 0.02, (0.05, 0.0))
    tracer = al.Tracer(galaxies=[lens, al.Galaxy(redshift=2.0)])
    assert np.allclose(renderer.lensed_pixelised(tracer, source, 0.02, (0.05, 0.0)), single, rtol=1e-6, atol=1e-9)


def test_every_paper_set_is_known():
    assert list(p21_testsets.TESTSETS) == [
        "sie_parametric",
        "sie_real",
        "sie_real_los",
        "power_law_real",
        "power_law_real_los",
        "complex_real",
        "complex_real_los",
    ]
    assert p21_testsets.TESTSETS["power_law_real_los"].fitted_model == "power_law"


def test_strong_lens_cuts_name_the_first_failed_criterion():
    seeing = 0.17
    assert simulate.resolution_rejection(seeing, 3.0, 0.1, 10.0, 0.5) == "counter_image_unresolved"
    assert simulate.resolution_rejection(seeing, 3.0, 2.0, 2.5, 0.5) == "low_magnification"
    assert simulate.resolution_rejection(seeing, 3.0, 2.0, 8.0, 0.02) == "arc_unresolved"  # 8 x 0.02" < seeing
    assert simulate.resolution_rejection(seeing, 3.0, 2.0, 8.0, 0.05) is None


def test_a_compact_real_source_seen_once_is_redrawn_and_flagged_when_no_draw_is_a_strong_lens(setup):
    settings, renderer, survey, stamps = setup
    # R_eff ~ 0.01": even x10 magnified the arcs stay below the 0.17" seeing (P21's tangential-shear cut)
    tiny = {**settings["real_source"], "effective_radius": {"rate": 6.64, "min": 0.008, "max": 0.012}}
    settings = {**settings, "real_source": tiny, "max_attempts": 12}
    out = p21_testsets.testset_image(
        simulate.image_rng(5, "p21_sie_real", 0), "sie_real", settings, renderer, survey, stamps, None
    )
    assert out.flags & SimulationFlag.NO_ACCEPTED_DRAW and not np.isfinite(out.image).any()
    assert out.rejections["arc_unresolved"] + out.rejections["low_magnification"] > 0
    assert sum(out.rejections.values()) == 12  # every draw accounted for


def test_accepted_real_source_images_are_magnified_and_resolved_arcs(setup):
    out = image(setup, "sie_real", index=1)
    assert out.flags == 0
    p = out.params
    assert p["magnification"] > 3.0 and p["magnification"] * p["source_half_light_radius"] > 0.17
    # the magnification is the rendered one: lensed flux over the source's flux
    assert out.model_image.sum() == pytest.approx(p["magnification"] * p["source_flux"], rel=0.05)
