import autolens as al
import numpy as np
import pytest

from hybridlens.simulation import hudf, lenses, simulate


@pytest.fixture(scope="module")
def stamps():
    settings = {"threshold_sigma": 3.0, "min_area": 40, "max_area": 3000, "padding": 1.3, "n_stamps": 30}
    return hudf.galaxy_stamps(hudf.luminance(), settings)


def test_stamps_are_isolated_unit_flux_galaxies(stamps):
    images, info = stamps
    assert len(images) == 30
    for image, meta in zip(images, info):
        assert image.shape == (meta["size"], meta["size"]) and image.min() >= 0
        assert image.sum() == pytest.approx(1.0)
        # The galaxy sits at the centre and the stamp edges are empty (neighbours removed).
        assert image[0].sum() + image[-1].sum() + image[:, 0].sum() + image[:, -1].sum() < 0.01
        assert 1.0 < hudf.half_light_radius(image) < meta["size"] / 2


def test_pixelised_source_lenses_like_the_analytic_profile(euclid):
    """A Gaussian given as pixels and as a PyAutoLens profile gives the same lensed image."""
    renderer = simulate.Renderer(euclid, 4)
    lens = al.Galaxy(redshift=0.5, mass=lenses.mass_profile("sie", (0, 0), 1.2, 0.8, 30.0))
    centre, scale = (0.1, -0.05), 0.01
    profile = al.lp.Gaussian(centre=centre, ell_comps=(0.1, 0.0), intensity=5.0, sigma=0.15)
    analytic = renderer.unconvolved(al.Tracer(galaxies=[lens, al.Galaxy(redshift=1.0, light=profile)]))
    n = 121
    axis = (np.arange(n) - (n - 1) / 2) * scale
    grid = al.Grid2DIrregular(
        np.column_stack(
            [(-axis[:, None] + centre[0] + 0 * axis).ravel(), (axis[None, :] + centre[1] + 0 * axis[:, None]).ravel()]
        )
    )
    stamp = np.asarray(profile.image_2d_from(grid=grid)).reshape(n, n) * (scale / euclid.pixel_scale) ** 2
    pixelised = renderer.lensed_pixelised(lens, stamp, scale, centre)
    assert pixelised.sum() == pytest.approx(analytic.sum(), rel=0.01)
    assert np.abs(pixelised - analytic).max() < 0.03 * analytic.max()


def test_hudf_lens_simulation(default_config, euclid, stamps):
    images, _ = stamps
    table = {"stamps": images, "half_light_radius": np.array([hudf.half_light_radius(i) for i in images])}
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.hudf_image(
        simulate.image_rng(1, "hudf", 0), default_config["simulate_slacs"], renderer, euclid, table
    )
    assert sim.flags == 0 and np.isfinite(sim.image).all()
    # Lensing magnifies: the stamp's flux reappears, more of it, in the image.
    assert sim.model_image.sum() > sim.params["source_flux"]
