import autolens as al
import numpy as np
import pytest

from hybridlens.simulation import lenses


def traced(mass, shape=(400, 400), pixel_scale=0.025):
    grid = al.Grid2D.uniform(shape_native=shape, pixel_scales=pixel_scale, over_sample_size=1)
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), al.Galaxy(redshift=1.0)])
    return np.asarray(grid.native), np.asarray(tracer.traced_grid_2d_list_from(grid=grid)[-1].native)


def test_sis_images_and_magnifications_match_the_analytic_solution():
    """SIS, source at beta: images at beta + theta_E (mu = 1 + theta_E/beta) and beta - theta_E."""
    theta_e, beta = 1.2, 0.3
    image_grid, source_grid = traced(lenses.mass_profile("sie", (0, 0), theta_e, 1.0, 0.0))
    positions, mus = lenses.point_images(image_grid, source_grid, (0.0, beta), min_magnification=0.05)
    assert len(mus) == 2
    np.testing.assert_allclose(positions[0], (0.0, beta + theta_e), atol=0.02)
    np.testing.assert_allclose(positions[1], (0.0, beta - theta_e), atol=0.02)
    # Triangle mapping on a 0.025" grid: magnifications good to ~10 %.
    assert mus[0] == pytest.approx(1 + theta_e / beta, rel=0.1)
    assert mus[1] == pytest.approx((theta_e - beta) / -beta, rel=0.1)  # parity-flipped


def test_source_outside_the_caustic_is_singly_imaged():
    image_grid, source_grid = traced(lenses.mass_profile("sie", (0, 0), 1.0, 0.8, 30.0))
    _, mus = lenses.point_images(image_grid, source_grid, (0.0, 2.0), min_magnification=0.05)
    assert len(mus) == 1


def test_source_inside_the_sie_diamond_caustic_gives_four_images():
    image_grid, source_grid = traced(lenses.mass_profile("sie", (0, 0), 1.0, 0.6, 0.0))
    _, mus = lenses.point_images(image_grid, source_grid, (0.02, 0.03), min_magnification=0.05)
    assert len(mus) == 4
    assert (mus > 0).sum() == 2 and (mus < 0).sum() == 2


def test_power_law_with_slope_two_is_the_sie():
    grid = al.Grid2DIrregular([(0.3, 0.7), (-1.1, 0.4), (0.9, -0.6)])
    sie = lenses.mass_profile("sie", (0.05, -0.02), 1.3, 0.7, 40.0)
    pl = lenses.mass_profile("power_law", (0.05, -0.02), 1.3, 0.7, 40.0, slope=2.0)
    np.testing.assert_allclose(pl.deflections_yx_2d_from(grid=grid), sie.deflections_yx_2d_from(grid=grid), rtol=1e-3)


def test_velocity_dispersion_scales_as_sqrt_theta_e():
    sigma = lenses.velocity_dispersion(np.array([1.0, 4.0]), 0.5, 2.0)
    assert sigma[1] == pytest.approx(2 * sigma[0])
    assert 200 < sigma[0] < 280  # km/s: an L* elliptical gives a ~1 arcsec ring
    with pytest.raises(ValueError):
        lenses.mass_profile("nfw", (0, 0), 1.0, 1.0, 0.0)


def test_slacs_intermediate_axis_radius_converts_to_pyautolens_major_axis():
    """theta_int (SLACS) -> theta_major gives the same SIE as PyAutoLens' intermediate-axis power law."""
    q, theta_int, angle = 0.55, 1.2, 35.0
    ell = al.convert.ell_comps_from(axis_ratio=q, angle=angle)
    major = al.mp.Isothermal(ell_comps=ell, einstein_radius=lenses.major_axis_einstein_radius(theta_int, q))
    intermediate = al.mp.PowerLawIntermediate(ell_comps=ell, einstein_radius=theta_int, slope=2.0)
    grid = al.Grid2DIrregular([(0.9, 0.3), (-0.4, 1.3), (0.2, -0.7)])
    np.testing.assert_allclose(
        major.deflections_yx_2d_from(grid=grid), intermediate.deflections_yx_2d_from(grid=grid), rtol=1e-6
    )
    assert lenses.intermediate_axis_einstein_radius(lenses.major_axis_einstein_radius(theta_int, q), q) == (
        pytest.approx(theta_int)
    )
    assert lenses.major_axis_einstein_radius(theta_int, q) / theta_int - 1 == pytest.approx(
        0.0450, abs=1e-3
    )  # 1.55 / (2 sqrt 0.55)
