"""Source light: component rows, their PyAutoLens profiles, and fluxes against the analytic integrals."""

import math

import numpy as np
import pytest
from scipy.special import gamma

from hybridlens.simulation import sources


def sersic_constant(n):
    """b_n of I(R) = I_e exp(-b_n [(R/R_e)^(1/n) - 1]) as PyAutoLens takes it (Ciotti & Bertin 1999)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2) + 131 / (1148175 * n**3) - 2194697 / (30690717750 * n**4)


def sersic_flux(intensity, effective_radius, n):
    """The Sersic profile integrated over the plane: I_e R_e^2 2 pi n e^b Gamma(2n) / b^2n, whatever q.

    PyAutoLens' Sersic R_e is circularised (the isophote through it encloses pi R_e^2
    at any axis ratio), so the axis ratio does not change the flux.
    """
    b = sersic_constant(n)
    return intensity * effective_radius**2 * 2 * math.pi * n * math.exp(b) * gamma(2 * n) / b ** (2 * n)


@pytest.fixture(scope="module")
def grid(euclid):
    return sources.fine_grid(euclid)


def measure(row, grid, survey):
    centre = (row["centre_y"], row["centre_x"])
    return sources.flux_and_half_light_radius(sources.galaxy([row], 1.0), grid, centre, survey.pixel_scale)


@pytest.mark.parametrize(
    "n, effective_radius, axis_ratio, rtol",
    [(1.0, 0.3, 1.0, 1e-3), (1.0, 0.3, 0.5, 1e-3), (2.5, 0.2, 0.7, 1e-2)],  # n = 2.5: its tail leaves the stamp
)
def test_a_sersic_sources_flux_is_the_analytic_integral(grid, euclid, n, effective_radius, axis_ratio, rtol):
    row = sources.component(sources.SERSIC, (0.1, -0.2), axis_ratio, 30.0, 5.0, effective_radius, n)
    flux, _ = measure(row, grid, euclid)
    expected = sersic_flux(5.0, effective_radius, n) / euclid.pixel_scale**2  # e-/s per pixel -> e-/s
    assert flux == pytest.approx(expected, rel=rtol)


def test_a_round_sersic_sources_half_light_radius_is_its_effective_radius(grid, euclid):
    row = sources.component(sources.SERSIC, (0.0, 0.0), 1.0, 0.0, 5.0, effective_radius=0.3, sersic_index=1.0)
    _, half = measure(row, grid, euclid)
    assert half == pytest.approx(0.3, abs=grid.pixel_scales[0] / 2)


def test_a_gaussian_sources_flux_and_half_light_radius(grid, euclid):
    row = sources.component(sources.GAUSSIAN, (0.2, 0.1), 1.0, 0.0, 5.0, sigma=0.2)
    flux, half = measure(row, grid, euclid)
    assert flux == pytest.approx(5.0 * 2 * math.pi * 0.2**2 / euclid.pixel_scale**2, rel=1e-6)
    assert half == pytest.approx(0.2 * math.sqrt(2 * math.log(2)), abs=grid.pixel_scales[0])
    # unlike the Sersic's R_e, the Gaussian's sigma lies along the minor axis: the flux grows as 1/q
    elongated, _ = measure(dict(row, axis_ratio=0.5, angle=40.0), grid, euclid)
    assert elongated == pytest.approx(2 * flux, rel=1e-6)


def test_fluxes_of_components_add_and_scale_with_intensity(grid, euclid):
    a = sources.component(sources.SERSIC, (0.0, 0.0), 0.8, 10.0, 2.0, effective_radius=0.2, sersic_index=1.5)
    b = sources.component(sources.GAUSSIAN, (0.3, -0.3), 0.6, 70.0, 1.0, sigma=0.15)
    both, _ = sources.flux_and_half_light_radius(sources.galaxy([a, b], 1.0), grid, (0.0, 0.0), euclid.pixel_scale)
    assert both == pytest.approx(measure(a, grid, euclid)[0] + measure(b, grid, euclid)[0], rel=1e-9)
    brighter = dict(a, intensity=6.0)
    assert measure(brighter, grid, euclid)[0] == pytest.approx(3 * measure(a, grid, euclid)[0], rel=1e-9)


def test_component_rows_share_one_layout_and_map_to_their_profiles():
    sersic = sources.component(sources.SERSIC, (0.1, 0.2), 0.7, 45.0, 3.0, effective_radius=0.4, sersic_index=2.0)
    gaussian = sources.component(sources.GAUSSIAN, (0.0, -0.1), 0.9, 10.0, 1.5, sigma=0.05)
    assert tuple(sersic) == tuple(gaussian) == sources.COMPONENT_FIELDS
    assert set(sources.COMPONENT_UNITS) == set(sources.COMPONENT_FIELDS)
    assert np.isnan(sersic["sigma"]) and np.isnan(gaussian["effective_radius"]) and np.isnan(gaussian["sersic_index"])
    profile = sources.light_profile(sersic)
    assert type(profile).__name__ == "Sersic"
    assert profile.centre == (0.1, 0.2) and profile.sersic_index == 2.0 and profile.effective_radius == 0.4
    assert profile.axis_ratio() == pytest.approx(0.7)
    assert type(sources.light_profile(gaussian)).__name__ == "Gaussian"
    galaxy = sources.galaxy([sersic, gaussian], 1.5)
    assert galaxy.redshift == 1.5
    assert [type(galaxy.light_0).__name__, type(galaxy.light_1).__name__] == ["Sersic", "Gaussian"]


def test_the_fine_grid_covers_the_stamp_at_a_finer_pitch(euclid):
    grid = sources.fine_grid(euclid, refine=3)
    assert grid.shape_native == (euclid.shape[0] * 3, euclid.shape[1] * 3)
    assert grid.pixel_scales[0] == pytest.approx(euclid.pixel_scale / 3)
    half = euclid.shape[0] * euclid.pixel_scale / 2
    assert np.abs(np.asarray(grid)).max() == pytest.approx(half - euclid.pixel_scale / 6)
