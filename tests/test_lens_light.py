"""The lens galaxy's MGE: PyAutoLens' Gaussian, a Sérsic lens recovered under arcs, a cutout without one."""

import numpy as np
import pytest

from hybridlens import config as hlconfig
from hybridlens.own_lenses import lens_light
from inversion_helpers import INVERSION


@pytest.fixture(scope="module")
def renderer(default_config):
    from hybridlens.simulation import simulate
    from hybridlens.simulation.survey import Survey

    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_training"))
    return simulate.Renderer(survey, default_config["simulate_training"]["over_sample"])


def test_the_basis_is_pyautolens_elliptical_gaussian():
    import autolens as al

    grid = lens_light.pixel_grid((40, 50), 0.1)
    mine = lens_light.gaussian_images(grid, (0.13, -0.2), 0.6, 35.0, [0.3])[0]
    profile = al.lp.Gaussian(
        centre=(0.13, -0.2), ell_comps=al.convert.ell_comps_from(axis_ratio=0.6, angle=35.0), intensity=1.0, sigma=0.3
    )
    theirs = profile.image_2d_from(grid=al.Grid2D.uniform(shape_native=(40, 50), pixel_scales=0.1, over_sample_size=1))
    np.testing.assert_allclose(mine, np.asarray(theirs.native), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("seed, kind", [(104, "double")])
def test_a_sersic_lens_under_its_arcs_is_found_at_its_centre_and_leaves_noise(default_config, renderer, seed, kind):
    from hybridlens.simulation import survey_cutouts

    cutout = survey_cutouts.survey_cutout(
        np.random.default_rng(seed), default_config["simulate_training"], renderer, kind
    )
    truth = cutout.truth
    light = lens_light.fit_lens_light(cutout.image, cutout.noise_map, renderer.psf, renderer.survey.pixel_scale)
    assert light.found and light.clipped.sum() > 20  # the arcs were left out
    offset = np.hypot(light.centre[0] - truth["lens_centre_y"], light.centre[1] - truth["lens_centre_x"])
    assert offset < 0.02  # arcsec: a fifth of a pixel
    # what is left once the true arcs are removed too is noise where the galaxy is bright
    left = (cutout.image - light.image - cutout.lensed) / cutout.noise_map
    bright = cutout.lens_light > cutout.noise_map
    assert abs(left[bright].mean()) < 0.3 and 0.8 < left[bright].std() < 1.3


def test_a_faint_extended_galaxy_outshone_by_its_arcs_is_not_taken_for_one_on_an_arc(default_config, renderer):
    """Mag 20.9, R_eff 2.8", theta_E 3.1": unbounded, the MGE sat on an arc 0.77" from the lens at S/N 30."""
    from hybridlens.simulation import survey_cutouts

    settings = default_config["simulate_training"]
    cutout = survey_cutouts.survey_cutout(np.random.default_rng(106), settings, renderer, "double")
    assert cutout.truth["lens_light"] and cutout.truth["lens_light_effective_radius"] > 2.0
    light = lens_light.fit_lens_light(cutout.image, cutout.noise_map, renderer.psf, renderer.survey.pixel_scale)
    assert not light.found and not light.image.any() and "edge of its search" in light.notes[0]


def test_a_cutout_without_lens_light_is_left_as_it_is(default_config, renderer):
    from hybridlens.simulation import survey_cutouts

    settings = default_config["simulate_training"]
    cutout = survey_cutouts.survey_cutout(np.random.default_rng(102), settings, renderer, "double", with_light=False)
    light = lens_light.fit_lens_light(cutout.image, cutout.noise_map, renderer.psf, renderer.survey.pixel_scale)
    assert not light.found and not light.image.any() and "no lens light" in light.notes[0]


def test_the_light_rendered_from_its_shapes_is_the_fitted_image(default_config, renderer):
    from hybridlens.simulation import survey_cutouts

    cutout = survey_cutouts.survey_cutout(
        np.random.default_rng(104), default_config["simulate_training"], renderer, "double"
    )
    light = lens_light.fit_lens_light(cutout.image, cutout.noise_map, renderer.psf, renderer.survey.pixel_scale)
    used = light.intensities[light.intensities > 0]
    image = lens_light.light_image(light.shapes(), used, cutout.image.shape, renderer.psf, renderer.survey.pixel_scale)
    np.testing.assert_allclose(image, light.image, rtol=1e-6, atol=1e-9 * light.image.max())


def test_the_light_fitted_with_the_source_leaves_noise_on_the_arcs_and_recovers_the_galaxy(default_config, renderer):
    """At the true mass, the lit cutout's inversion with the MGE's Gaussians as linear light profiles fits
    as well as the light-free image does, and far better than one that leaves the light to the source."""
    from hybridlens.reconstruction import inversion, masking
    from hybridlens.simulation import survey_cutouts

    cutout = survey_cutouts.survey_cutout(
        np.random.default_rng(104), default_config["simulate_training"], renderer, "double"
    )
    scale, truth = renderer.survey.pixel_scale, cutout.truth
    light = lens_light.fit_lens_light(cutout.image, cutout.noise_map, renderer.psf, scale)
    mask = masking.fit_annulus(cutout.image - light.image, scale, centre=light.centre).mask
    mass = inversion.Mass(
        truth["einstein_radius"], truth["axis_ratio"], truth["angle"], (truth["lens_centre_y"], truth["lens_centre_x"])
    )
    args = (cutout.noise_map, mask, renderer.psf, scale, INVERSION)
    joint = inversion.MaskedLens(cutout.image, *args, lens_light=lens_light.linear_gaussians(light.shapes()))
    free = inversion.MaskedLens(cutout.image - cutout.lens_light, *args)  # the light removed perfectly
    left_in = inversion.MaskedLens(cutout.image, *args)
    fits = {}
    for name, masked in (("joint", joint), ("free", free), ("left_in", left_in)):
        coefficient, evidence = masked.best_coefficient(mass)
        fits[name] = (evidence, float(masked.fit(mass, coefficient).chi_squared) / mask.sum(), coefficient)
    assert fits["joint"][1] < 1.2 * fits["free"][1] and fits["joint"][1] < 1.3
    assert fits["joint"][0] > fits["left_in"][0] + 10
    intensities = joint.lens_light_intensities(mass, fits["joint"][2])
    solved = lens_light.light_image(light.shapes(), intensities, cutout.image.shape, renderer.psf, scale)
    residual = (solved - cutout.lens_light)[mask] / cutout.noise_map[mask]
    assert np.sqrt(np.mean(residual**2)) < 0.5  # the galaxy under the arcs to half the noise
