import numpy as np
import pytest

from hybridlens.simulation.survey import NoiseModel, Survey, flux_scale

ALL_TERMS = NoiseModel(sky=True, poisson=True, read_noise=True, dark_current=True)


def test_noise_variance_matches_the_ccd_model(default_config):
    """Across many realisations, pixel variance = model variance and the mean is unbiased."""
    survey = Survey.from_settings({**default_config["surveys"]["euclid_vis"], "exposure_time": 100.0})
    rng = np.random.default_rng(7)
    expected = np.linspace(0.0, 20.0, 16).reshape(4, 4)
    draws = np.stack([ALL_TERMS.realise(rng, survey, expected)[0] for _ in range(20_000)])
    _, noise_map = ALL_TERMS.realise(rng, survey, expected)
    t = survey.exposure_time
    model = ((expected + survey.sky_level + survey.dark_current) * t + survey.read_noise**2) / t**2
    np.testing.assert_allclose(noise_map**2, model, rtol=1e-12)
    np.testing.assert_allclose(draws.var(axis=0), model, rtol=0.05)
    assert np.all(np.abs(draws.mean(axis=0) - expected) < 4 * np.sqrt(model / draws.shape[0]))


def test_noise_terms_switch_off(default_config):
    survey = Survey.from_settings(default_config["surveys"]["euclid_vis"])
    expected = np.full((3, 3), 5.0)
    quiet = NoiseModel(sky=True, poisson=False, read_noise=False, dark_current=False)
    image, noise_map = quiet.realise(np.random.default_rng(0), survey, expected)
    np.testing.assert_allclose(image, expected)
    assert np.all(noise_map == 0)
    m21 = NoiseModel(sky=True, poisson=True, read_noise=False, dark_current=False)
    _, noise_map = m21.realise(np.random.default_rng(0), survey, expected)
    np.testing.assert_allclose(noise_map**2, (5.0 + 1.0) / survey.exposure_time)


def test_psf_kernel_is_normalised_with_the_stated_fwhm(euclid):
    kernel = euclid.psf_kernel()
    assert kernel.shape[0] % 2 == 1 and kernel.sum() == pytest.approx(1.0)
    # Second moment of the sampled Gaussian gives its sigma back.
    half = kernel.shape[0] // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1] * euclid.pixel_scale
    sigma = np.sqrt((kernel * x**2).sum())
    assert sigma * 2 * np.sqrt(2 * np.log(2)) == pytest.approx(0.17, rel=0.03)


def test_flux_scale_converts_by_pixel_area_and_zero_point(default_config):
    surveys = {name: Survey.from_settings(s) for name, s in default_config["surveys"].items()}
    vis = surveys["euclid_vis"]
    assert flux_scale(vis, vis) == 1.0
    same_band = Survey.from_settings({**default_config["surveys"]["euclid_vis"], "pixel_scale": 0.2})
    assert flux_scale(same_band, vis) == pytest.approx(4.0)
    # A source of fixed magnitude gives the same e-/s in each band's own zero point.
    for survey in surveys.values():
        assert survey.counts_per_second(survey.zero_point) == pytest.approx(1.0)
