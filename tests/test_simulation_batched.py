"""The batched P21 simulator against PyAutoLens: the same images, the same accepted and rejected draws."""

import autolens as al
import numpy as np
import pytest
import torch

from hybridlens import config as hlconfig
from hybridlens.simulation import batched, lenses, simulate, sources
from hybridlens.simulation.survey import Survey


@pytest.fixture(scope="module")
def setup():
    cfg = hlconfig.load(hlconfig.CONFIG_DIR / "config.yaml")
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_training"))
    settings = cfg["simulate_training"]
    return settings, survey, batched.BatchRenderer.for_survey(survey, settings["over_sample"])


def simulator_image(survey, galaxies, over_sample):
    """Noise-free PyAutoLens `SimulatorImaging` image of `galaxies` (uniformly over-sampled, PSF by autolens)."""
    psf = al.Convolver(kernel=al.Array2D.no_mask(survey.psf_kernel(), pixel_scales=survey.pixel_scale))
    simulator = al.SimulatorImaging(
        exposure_time=survey.exposure_time,
        psf=psf,
        add_poisson_noise_to_data=False,
        include_poisson_noise_in_noise_map=False,
        background_sky_level=1.0,  # it draws Poisson noise even when not adding it: keep its mean positive
    )
    grid = al.Grid2D.uniform(shape_native=survey.shape, pixel_scales=survey.pixel_scale, over_sample_size=over_sample)
    return np.asarray(simulator.via_tracer_from(tracer=al.Tracer(galaxies=galaxies), grid=grid).data.native)


@pytest.mark.parametrize("mass_model", ["sie", "power_law"])
def test_images_agree_with_pyautolens_simulator_within_one_percent_of_the_peak(setup, mass_model):
    """Accepted images of both mass models (all three source types): lensed source and lens light, noise-free."""
    settings, survey, renderer = setup
    rngs = [simulate.image_rng(11, f"check_{mass_model}", i) for i in range(6)]
    results = batched.training_images(rngs, settings, renderer, mass_model)
    assert not any(r.flags for r in results)
    for result in results:
        p = result.params
        mass = lenses.mass_profile(
            mass_model,
            (p["lens_centre_y"], p["lens_centre_x"]),
            p["einstein_radius"],
            p["axis_ratio"],
            p["angle"],
            p["slope"],
        )
        lens = al.Galaxy(redshift=p["z_lens"], mass=mass)
        expected = simulator_image(
            survey, [lens, sources.galaxy(result.components, p["z_source"])], settings["over_sample"]
        )
        assert np.abs(result.model_image - expected).max() < 0.01 * expected.max()
        light = sources.component(
            sources.SERSIC,
            (p["lens_centre_y"], p["lens_centre_x"]),
            p["axis_ratio"],
            p["angle"],
            p["lens_light_intensity"],
            p["lens_light_effective_radius"],
            p["lens_light_sersic_index"],
        )
        lens_light = simulator_image(survey, [sources.galaxy([light], p["z_lens"])], settings["over_sample"])
        # the noise map is the lens light's and the source's shot noise: recover the lens light from it
        noise = simulate.NoiseModel(**settings["noise"])
        variance = result.noise_map.astype(float) ** 2 * survey.exposure_time**2
        recovered = (variance - survey.n_exposures * survey.read_noise**2) / survey.exposure_time
        recovered -= result.model_image + noise.background(survey)
        assert np.abs(recovered - lens_light).max() < 0.01 * lens_light.max()


@pytest.mark.parametrize("mass_model, n_images", [("sie", 30), ("power_law", 15)])
def test_cuts_accept_and_reject_the_same_draws_as_the_pyautolens_path(setup, mass_model, n_images):
    """Both paths draw through `draw_training` from the same generators: every draw must meet the same fate."""
    settings, survey, renderer = setup
    reference = simulate.Renderer(survey, settings["over_sample"])
    old = [
        simulate.training_image(simulate.image_rng(5, mass_model, i), settings, reference, mass_model)
        for i in range(n_images)
    ]
    new = batched.training_images(
        [simulate.image_rng(5, mass_model, i) for i in range(n_images)], settings, renderer, mass_model, batch_size=8
    )
    draws = sum(r.params["n_attempts"] for r in old)
    assert draws > 4 * n_images  # a few hundred draws in all, most of them rejected
    assert sum(sum(r.rejections.values()) for r in old) > 0
    for a, b in zip(old, new):
        assert a.params["n_attempts"] == b.params["n_attempts"]
        assert a.rejections == b.rejections
        for name in ("einstein_radius", "axis_ratio", "angle", "slope", "source_magnitude", "source_half_light_radius"):
            assert a.params[name] == b.params[name]
        for name in ("magnification", "snr"):
            assert b.params[name] == pytest.approx(a.params[name], rel=2e-3)
        assert np.abs(a.model_image - b.model_image).max() < 1e-3 * a.model_image.max()


def test_the_noise_is_the_survey_noise_about_the_model(setup):
    """Image minus model, in units of the noise map: zero mean, unit spread (lens light subtracted, shot noise kept)."""
    settings, survey, renderer = setup
    results = batched.training_images([simulate.image_rng(2, "noise", i) for i in range(4)], settings, renderer, "sie")
    z = np.stack([(r.image - r.model_image) / r.noise_map for r in results])
    assert abs(z.mean()) < 0.02 and z.std() == pytest.approx(1.0, abs=0.02)


def test_unreachable_cuts_flag_every_image_after_its_attempts(setup):
    settings, survey, renderer = setup
    impossible = {**settings, "max_attempts": 3, "detection": {**settings["detection"], "min_snr": 1e9}}
    results = batched.training_images([simulate.image_rng(1, "x", i) for i in range(3)], impossible, renderer, "sie")
    assert all(r.flags == simulate.SimulationFlag.NO_ACCEPTED_DRAW for r in results)
    assert all(r.params["n_attempts"] == 3 and sum(r.rejections.values()) == 3 for r in results)
    assert all(np.isnan(r.image).all() for r in results)


def test_the_same_generators_give_the_same_images_whatever_the_batch(setup):
    settings, survey, renderer = setup
    images = [
        np.stack(
            [
                r.image
                for r in batched.training_images(
                    [simulate.image_rng(3, "b", i) for i in range(5)], settings, renderer, "sie", batch_size=size
                )
            ]
        )
        for size in (2, 5)
    ]
    torch.testing.assert_close(
        torch.from_numpy(images[0]), torch.from_numpy(images[1]), rtol=0, atol=1e-5 * np.abs(images[0]).max()
    )
