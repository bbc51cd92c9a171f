"""P21's truth for composite and line-of-sight lenses: the convergence-map fit."""

import autolens as al
import numpy as np
import pytest

from hybridlens.simulation import lens_truth, lenses

GRID = lens_truth.grid_for((80, 80), 0.1)


def tracer_of(*galaxies):
    return al.Tracer(galaxies=[*galaxies, al.Galaxy(redshift=2.0)])


def kappa_of(profile):
    return lens_truth.convergence_map(profile, GRID)


@pytest.mark.parametrize(
    "model, slope, tolerance",
    [("sie", 2.0, 1e-3), ("power_law", 2.3, 1e-2)],
)
def test_the_fit_recovers_a_pure_profile(model, slope, tolerance):
    truth = lenses.mass_profile(model, (0.05, -0.1), 1.6, 0.7, 40.0, slope)
    fit = lens_truth.fit_convergence(kappa_of(truth), GRID, model)
    assert fit.einstein_radius == pytest.approx(1.6, rel=tolerance)
    assert fit.axis_ratio == pytest.approx(0.7, abs=tolerance)
    assert fit.angle == pytest.approx(40.0, abs=100 * tolerance)
    assert fit.centre == pytest.approx((0.05, -0.1), abs=tolerance)
    assert fit.slope == pytest.approx(slope, abs=tolerance)
    assert fit.residual < tolerance


def test_a_mass_sheet_moves_theta_e_out_and_leaves_a_residual():
    sie = lenses.mass_profile("sie", (0.0, 0.0), 1.4, 0.8, 120.0)
    bare = lens_truth.fit_convergence(kappa_of(sie), GRID, "sie")
    sheeted = lens_truth.fit_convergence(kappa_of(sie) + 0.1, GRID, "sie")
    assert sheeted.einstein_radius > bare.einstein_radius + 0.05
    assert sheeted.residual > 10 * bare.residual


def test_effective_convergence_of_one_plane_is_its_convergence():
    sie = lenses.mass_profile("sie", (0.0, 0.0), 1.4, 0.75, 30.0)
    kappa = lens_truth.effective_convergence(tracer_of(al.Galaxy(redshift=0.5, mass=sie)), GRID)
    radius = np.hypot(*np.moveaxis(np.asarray(GRID.native), -1, 0))
    ring = (radius > 0.8) & (radius < 3.0)
    assert np.allclose(kappa[ring], kappa_of(sie)[ring], rtol=0.02)


def test_deflections_of_a_perturber_at_the_lens_redshift_add_to_the_lens():
    sie = lenses.mass_profile("sie", (0.0, 0.0), 1.4, 0.75, 30.0)
    halo = al.mp.NFWTruncatedSph(centre=(0.8, -0.6), kappa_s=0.05, scale_radius=0.5, truncation_radius=3.0)
    both = tracer_of(al.Galaxy(redshift=0.5, mass=sie), al.Galaxy(redshift=0.5, mass=halo))
    summed = sum(np.asarray(p.deflections_yx_2d_from(grid=GRID).native) for p in (sie, halo))
    assert np.allclose(lens_truth.total_deflections(both, GRID), summed, atol=1e-8)
    # ... and a perturber in front of the lens does not simply add (the test can fail)
    front = tracer_of(al.Galaxy(redshift=0.5, mass=sie), al.Galaxy(redshift=0.2, mass=halo))
    assert np.abs(lens_truth.total_deflections(front, GRID) - summed).max() > 1e-3


def test_a_map_with_nothing_to_fit_is_refused():
    with pytest.raises(ValueError, match="nothing to fit"):
        lens_truth.fit_convergence(np.zeros((80, 80)), GRID)
