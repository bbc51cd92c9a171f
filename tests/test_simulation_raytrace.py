"""The batched torch ray-tracer against independent numbers: PyAutoLens, scipy and `lenses.point_images`."""

import autolens as al
import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

import hybridlens.simulation.raytrace as rt
from hybridlens.simulation import lenses

CENTRE = (0.07, -0.04)


def draws(seed, n):
    """`n` random lens geometries plus the edge cases (round, nearly round, flattest) as (B,) columns."""
    rng = np.random.default_rng(seed)
    return {
        "centre_y": np.r_[CENTRE[0], rng.uniform(-0.2, 0.2, n)],
        "centre_x": np.r_[CENTRE[1], rng.uniform(-0.2, 0.2, n)],
        "einstein_radius": np.r_[1.2, rng.uniform(0.5, 2.0, n)],
        "axis_ratio": np.r_[1.0, rng.uniform(0.4, 1.0, n - 2), 1.0 - 1e-9, 0.4],
        "angle": np.r_[30.0, rng.uniform(-90.0, 180.0, n)],
    }


def points(seed, centre_y, centre_x, n=60):
    """Scattered points, with one 1e-4 arcsec from the profile centre and some on its axes."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-2.5, 2.5, (n, 2))
    pts[:4] = [(1e-4, -0.7e-4), (0.0, 0.8), (-1.1, 0.0), (0.3, 0.3)]
    return pts + (centre_y, centre_x)


def autolens_profile(kind, p, b, **extra):
    """The PyAutoLens profile of batch element b (ell_comps converted as the project does)."""
    ell_comps = al.convert.ell_comps_from(axis_ratio=p["axis_ratio"][b], angle=p["angle"][b])
    centre = (p["centre_y"][b], p["centre_x"][b])
    return kind(centre=centre, ell_comps=ell_comps, **extra)


def batch_points(p, seed):
    """(B, N) points, different for every element and clustered around its own centre."""
    pts = np.stack([points(seed + b, p["centre_y"][b], p["centre_x"][b]) for b in range(len(p["angle"]))])
    return pts, torch.tensor(pts[..., 0]), torch.tensor(pts[..., 1])


def as_yx(pair):
    return np.stack([pair[0].numpy(), pair[1].numpy()], axis=-1)


@pytest.mark.parametrize("shape, over_sample", [((7, 9), 1), ((7, 9), 3), ((6, 6), 4)])
def test_pixel_grid_is_autolens_over_sampled_grid_and_bins_to_its_images(shape, over_sample):
    grid = al.Grid2D.uniform(shape_native=shape, pixel_scales=0.1, over_sample_size=over_sample)
    y, x = rt.pixel_grid(shape, 0.1, over_sample)
    sub = np.asarray(grid.over_sampled.array) if over_sample > 1 else np.asarray(grid.array)
    np.testing.assert_allclose(np.stack([y.numpy(), x.numpy()], axis=-1), sub, rtol=0, atol=1e-12)

    sersic = al.lp.Sersic(
        centre=(0.05, -0.1),
        ell_comps=al.convert.ell_comps_from(axis_ratio=0.6, angle=70.0),
        intensity=3.0,
        effective_radius=0.15,
        sersic_index=3.0,
    )
    expected = np.asarray(sersic.image_2d_from(grid=grid).native)
    image = rt.bin_pixels(rt.sersic(y, x, [0.05], [-0.1], [0.6], [70.0], [3.0], [0.15], [3.0]), shape, over_sample)
    assert image.shape == (1, *shape)
    np.testing.assert_allclose(image[0].numpy(), expected, rtol=1e-10)
    if over_sample > 1:  # really averaged sub-pixels, not the pixel centres
        centres = rt.sersic(*rt.pixel_grid(shape, 0.1), [0.05], [-0.1], [0.6], [70.0], [3.0], [0.15], [3.0])
        assert not np.allclose(centres.reshape(shape).numpy(), expected, rtol=1e-3)


def test_sie_deflections_match_autolens_isothermal():
    p = draws(1, 6)
    pts, y, x = batch_points(p, 10)
    got = as_yx(rt.sie_deflections(y, x, **p))
    assert np.all(np.isfinite(got))
    for b in range(len(p["angle"])):
        mass = autolens_profile(al.mp.Isothermal, p, b, einstein_radius=p["einstein_radius"][b])
        expected = np.asarray(mass.deflections_yx_2d_from(grid=al.Grid2DIrregular(pts[b])))
        np.testing.assert_allclose(got[b], expected, rtol=1e-6, atol=1e-12, err_msg=f"element {b}")


def test_shared_grid_broadcasts_over_the_batch_and_keeps_float32():
    """(N,) grids serve every element; float32 in, float32 out, still close to PyAutoLens."""
    p = draws(2, 4)
    pts = points(20, 0.0, 0.0)
    y, x = torch.tensor(pts[:, 0], dtype=torch.float32), torch.tensor(pts[:, 1], dtype=torch.float32)
    sie = rt.sie_deflections(y, x, **p)
    power_law = rt.power_law_deflections(y, x, **p, slope=np.full(5, 2.3))
    assert sie[0].dtype == power_law[0].dtype == torch.float32 and sie[0].shape == (5, len(pts))
    for b in range(5):
        iso = autolens_profile(al.mp.Isothermal, p, b, einstein_radius=p["einstein_radius"][b])
        pl = autolens_profile(al.mp.PowerLaw, p, b, einstein_radius=p["einstein_radius"][b], slope=2.3)
        for ours, mass in ((sie, iso), (power_law, pl)):
            expected = np.asarray(mass.deflections_yx_2d_from(grid=al.Grid2DIrregular(pts)))
            np.testing.assert_allclose(as_yx(ours)[b], expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_power_law_deflections_match_autolens_power_law():
    p = draws(3, 7)
    slopes = np.r_[2.0, 1.5, 2.5, np.random.default_rng(4).uniform(1.5, 2.5, 5)]
    pts, y, x = batch_points(p, 30)
    got = as_yx(rt.power_law_deflections(y, x, **p, slope=slopes))
    assert np.all(np.isfinite(got))
    for b in range(len(slopes)):
        mass = autolens_profile(al.mp.PowerLaw, p, b, einstein_radius=p["einstein_radius"][b], slope=slopes[b])
        expected = np.asarray(mass.deflections_yx_2d_from(grid=al.Grid2DIrregular(pts[b])))
        np.testing.assert_allclose(got[b], expected, rtol=1e-6, atol=1e-12, err_msg=f"element {b}")
    # Slope 2 is the SIE: element 0 against PyAutoLens' Isothermal too.
    iso = autolens_profile(al.mp.Isothermal, p, 0, einstein_radius=p["einstein_radius"][0])
    expected = np.asarray(iso.deflections_yx_2d_from(grid=al.Grid2DIrregular(pts[0])))
    np.testing.assert_allclose(got[0], expected, rtol=1e-6, atol=1e-12)


def test_light_profiles_match_autolens_sersic_and_gaussian():
    rng = np.random.default_rng(5)
    p = draws(6, 6)
    del p["einstein_radius"]
    intensity = rng.uniform(0.1, 5.0, 7)
    effective_radius = rng.uniform(0.05, 1.5, 7)
    sersic_index = np.r_[4.0, 0.5, 6.0, rng.uniform(0.5, 6.0, 4)]
    sigma = rng.uniform(0.05, 1.0, 7)
    pts, y, x = batch_points(p, 40)
    sersic = rt.sersic(y, x, **p, intensity=intensity, effective_radius=effective_radius, sersic_index=sersic_index)
    gaussian = rt.gaussian(y, x, **p, intensity=intensity, sigma=sigma)
    for b in range(7):
        grid = al.Grid2DIrregular(pts[b])
        light = autolens_profile(
            al.lp.Sersic,
            p,
            b,
            intensity=intensity[b],
            effective_radius=effective_radius[b],
            sersic_index=sersic_index[b],
        )
        np.testing.assert_allclose(sersic[b].numpy(), np.asarray(light.image_2d_from(grid=grid)), rtol=1e-6)
        light = autolens_profile(al.lp.Gaussian, p, b, intensity=intensity[b], sigma=sigma[b])
        np.testing.assert_allclose(gaussian[b].numpy(), np.asarray(light.image_2d_from(grid=grid)), rtol=1e-6)


def test_sersic_constant_is_autolens():
    for n in (0.5, 1.0, 2.5, 4.0, 8.0):
        assert rt.sersic_constant(n) == pytest.approx(al.lp.Sersic(sersic_index=n).sersic_constant, rel=1e-14)


def test_convolve_is_scipy_valid_fftconvolve():
    rng = np.random.default_rng(7)
    images = rng.normal(size=(3, 40 + 10, 36 + 10)) + 5.0
    kernel = rng.random((11, 11))
    kernels = rng.random((3, 11, 11))
    got = rt.convolve(torch.tensor(images), torch.tensor(kernel)).numpy()
    got_each = rt.convolve(torch.tensor(images), torch.tensor(kernels)).numpy()
    assert got.shape == got_each.shape == (3, 40, 36)
    for b in range(3):
        expected = fftconvolve(images[b], kernel, mode="valid")
        np.testing.assert_allclose(got[b], expected, rtol=0, atol=1e-10 * np.abs(expected).max())
        expected = fftconvolve(images[b], kernels[b], mode="valid")
        np.testing.assert_allclose(got_each[b], expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    # An asymmetric kernel catches a missing flip (correlation instead of convolution).
    assert not np.allclose(got[0], fftconvolve(images[0], kernel[::-1, ::-1], mode="valid"))


def test_point_images_equal_lenses_point_images_element_by_element():
    shape, pixel_scale = (120, 120), 0.05
    grid = al.Grid2D.uniform(shape_native=shape, pixel_scales=pixel_scale, over_sample_size=1)
    masses = [
        lenses.mass_profile("sie", (0.02, -0.03), 1.1, 1.0, 0.0),
        lenses.mass_profile("sie", (0.0, 0.0), 1.0, 0.6, 0.0),
        lenses.mass_profile("sie", (-0.05, 0.04), 1.3, 0.75, 120.0),
        lenses.mass_profile("power_law", (0.03, 0.01), 1.2, 0.7, 40.0, slope=2.2),
        lenses.mass_profile("sie", (0.0, 0.0), 1.0, 0.8, 30.0),
        lenses.mass_profile("power_law", (0.0, 0.0), 1.0, 0.5, 75.0, slope=1.8),
    ]
    traced = []
    for mass in masses:
        tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), al.Galaxy(redshift=1.0)])
        traced.append(np.asarray(tracer.traced_grid_2d_list_from(grid=grid)[-1].native))
    traced = np.stack(traced)
    image = np.asarray(grid.native)
    # Quads, doubles, one far outside the caustics, and a source exactly on a traced vertex near the critical
    # curve: the six triangles sharing it hit with barycentric weights of exactly 0 and 1.
    sources = np.array([(0.0, 0.3), (0.02, 0.03), (0.1, -0.15), tuple(traced[3, 60, 35]), (0.0, 1.5), (0.05, 0.02)])
    results = rt.point_images(
        torch.tensor(image[..., 0]),
        torch.tensor(image[..., 1]),
        torch.tensor(traced[..., 0]),
        torch.tensor(traced[..., 1]),
        torch.tensor(sources[:, 0]),
        torch.tensor(sources[:, 1]),
        0.05,
    )
    assert len(results) == len(masses)
    counts = []
    for b, (positions, mus) in enumerate(results):
        expected_positions, expected_mus = lenses.point_images(image, traced[b], sources[b], min_magnification=0.05)
        assert positions.shape == expected_positions.shape and mus.shape == expected_mus.shape, f"element {b}"
        np.testing.assert_allclose(positions, expected_positions, rtol=0, atol=1e-8)
        np.testing.assert_allclose(mus, expected_mus, rtol=0, atol=1e-8)
        counts.append(len(mus))
    # The comparison is not vacuous: quads, doubles and the single image are all there.
    assert counts[1] == counts[3] == counts[5] == 4 and counts[4] == 1 and min(counts) >= 1
