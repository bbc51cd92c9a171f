import copy
import hashlib

import autolens as al
import numpy as np
import pytest

from hybridlens import config as hlconfig
from hybridlens import io
from hybridlens.flags import SimulationFlag
from hybridlens.simulation import lenses, simulate, sources
from hybridlens.simulation.survey import Survey


@pytest.fixture(scope="module")
def setup(default_config):
    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_slacs"))
    return default_config, survey, simulate.Renderer(survey, 4)


def slacs_shard(cfg, indices, seed=11):
    survey = hlconfig.survey_settings(cfg, "simulate_slacs")
    return simulate.simulate_shard("slacs", cfg["simulate_slacs"], survey, survey, seed, "slacs", indices)


def test_same_seed_gives_identical_bytes(setup, tmp_path):
    cfg, _, _ = setup
    digests = []
    for name in ("a.h5", "b.h5"):
        result = slacs_shard(cfg, range(3))
        path = io.write_shard(
            tmp_path / name,
            io.provenance("simulate_slacs", "x", 11),
            arrays=result["arrays"],
            params=result["params"],
            units=simulate.PARAM_UNITS,
            groups={"components": result["components"]},
            flags=result["flags"],
            flag_family=SimulationFlag,
        )
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    other = slacs_shard(cfg, range(3), seed=12)
    assert not np.array_equal(other["arrays"]["image"], result["arrays"]["image"])


def test_images_do_not_depend_on_sharding(setup):
    cfg, _, _ = setup
    whole = slacs_shard(cfg, range(4))["arrays"]["image"]
    reversed_shards = [slacs_shard(cfg, [3, 2]), slacs_shard(cfg, [1, 0])]
    pieces = {i: img for r in reversed_shards for i, img in zip(r["index"], r["arrays"]["image"])}
    for i in range(4):
        assert np.array_equal(whole[i], pieces[i])


def test_m21_lenses_follow_the_recipe(setup):
    cfg, survey, renderer = setup
    for index in range(4):
        result = simulate.slacs_image(simulate.image_rng(5, "slacs", index), cfg["simulate_slacs"], renderer, survey)
        p, (row,) = result.params, result.components
        assert result.flags == 0 and result.image.shape == (100, 100)
        assert p["lens_centre_y"] == p["lens_centre_x"] == 0.0
        assert np.hypot(row["centre_y"], row["centre_x"]) <= p["einstein_radius"]
        assert 10.0 <= row["intensity"] <= 20.0 and 0.3 <= row["axis_ratio"] <= 1.0
        # Multiply imaged, as M21 requires.
        traced = renderer.traced_image_finding_grid(
            al.Galaxy(
                redshift=0.5, mass=lenses.mass_profile("sie", (0, 0), p["einstein_radius"], p["axis_ratio"], p["angle"])
            )
        )
        _, mus = renderer.point_images(traced, (row["centre_y"], row["centre_x"]), 0.1)
        assert len(mus) >= 2


def test_round_trip_pyautolens_fit_of_the_true_model(setup):
    """Our renderer and PyAutoLens agree, and the true model fits to chi^2/N = 1."""
    cfg, survey, renderer = setup
    psf = al.Convolver(kernel=al.Array2D.no_mask(renderer.psf, pixel_scales=survey.pixel_scale))
    mask = al.Mask2D.circular(shape_native=survey.shape, pixel_scales=survey.pixel_scale, radius=4.5)
    chi2, pixels = 0.0, 0
    for index in range(4):
        sim = simulate.slacs_image(simulate.image_rng(9, "slacs", index), cfg["simulate_slacs"], renderer, survey)
        dataset = al.Imaging(
            data=al.Array2D.no_mask(sim.image, pixel_scales=survey.pixel_scale),
            noise_map=al.Array2D.no_mask(sim.noise_map, pixel_scales=survey.pixel_scale),
            psf=psf,
            over_sample_size_lp=4,
        ).apply_mask(mask)
        p = sim.params
        mass = lenses.mass_profile("sie", (0, 0), p["einstein_radius"], p["axis_ratio"], p["angle"])
        tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), sources.galaxy(sim.components, 1.0)])
        fit = al.FitImaging(dataset=dataset, tracer=tracer)
        inside = ~np.asarray(mask)
        model = np.asarray(fit.model_data.native)
        np.testing.assert_allclose(model[inside], sim.model_image[inside], atol=1e-4 * sim.model_image.max())
        chi2 += fit.chi_squared
        pixels += inside.sum()
    assert chi2 / pixels == pytest.approx(1.0, abs=0.04)


@pytest.mark.parametrize("model", ["sie", "power_law"])
def test_training_images_pass_the_detection_cuts(default_config, model):
    cfg = default_config
    survey = hlconfig.survey_settings(cfg, "simulate_training")
    settings = cfg["simulate_training"]
    result = simulate.simulate_shard("training", settings, survey, survey, 3, f"training_{model}", range(3), model)
    p, cuts = result["params"], settings["detection"]
    assert not result["flags"].any()
    assert np.all(p["magnification"] > cuts["min_magnification"])
    assert np.all(p["snr"] > cuts["min_snr"])
    assert np.all(p["n_point_images"] >= 2)
    assert np.all(p["image_separation"] > survey["psf_fwhm"])
    assert np.all(p["magnification"] * p["source_half_light_radius"] > survey["psf_fwhm"])
    assert np.all(p["z_source"] > p["z_lens"]) and np.all(p["z_lens"] <= 2.0)
    if model == "sie":
        assert np.all(p["slope"] == 2.0)
    else:
        assert np.all((p["slope"] >= 1.5) & (p["slope"] <= 2.5))
    assert sum(result["rejections"].values()) == p["n_attempts"].sum() - 3
    # Lens light was subtracted: the residual is the source plus zero-mean noise.
    z = (result["arrays"]["image"] - result["arrays"]["model_image"]) / result["arrays"]["noise_map"]
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1.0, abs=0.05)


def test_training_source_magnitude_sets_its_flux(default_config):
    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_training"))
    result = simulate.simulate_shard(
        "training",
        default_config["simulate_training"],
        survey.as_dict(),
        survey.as_dict(),
        4,
        "training_sie",
        range(2),
        "sie",
    )
    p = result["params"]
    np.testing.assert_allclose(p["source_flux"], survey.counts_per_second(p["source_magnitude"]), rtol=1e-6)


def test_unreachable_cuts_flag_the_image_and_leave_nan(default_config):
    settings = copy.deepcopy(default_config["simulate_training"])
    settings["detection"]["min_snr"] = 1e9
    settings["max_attempts"] = 2
    survey = hlconfig.survey_settings(default_config, "simulate_training")
    result = simulate.simulate_shard("training", settings, survey, survey, 1, "training_sie", [0], "sie")
    assert result["flags"][0] == SimulationFlag.NO_ACCEPTED_DRAW
    assert np.isnan(result["arrays"]["image"]).all()
