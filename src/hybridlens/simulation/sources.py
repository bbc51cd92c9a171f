"""Source-galaxy light: Sersic, Gaussian and multi-Sersic components.

A source is a table of components (one row each) so that every morphology
shares one storage layout: absent fields are NaN, `kind` is 0 for Sersic and
1 for Gaussian. Intensities follow PyAutoLens: e-/s per image pixel at R_eff
(Sersic) or at the centre (Gaussian).
"""

import math

import autolens as al
import numpy as np
import torch

from hybridlens.simulation import raytrace

SERSIC, GAUSSIAN = 0, 1
COMPONENT_FIELDS = (
    "kind",
    "centre_y",
    "centre_x",
    "axis_ratio",
    "angle",
    "intensity",
    "effective_radius",
    "sersic_index",
    "sigma",
)
COMPONENT_UNITS = {
    "kind": "0 = Sersic, 1 = Gaussian",
    "centre_y": "arcsec",
    "centre_x": "arcsec",
    "axis_ratio": "",
    "angle": "deg",
    "intensity": "e-/s/pixel",
    "effective_radius": "arcsec",
    "sersic_index": "",
    "sigma": "arcsec",
}


def component(kind, centre, axis_ratio, angle, intensity, effective_radius=np.nan, sersic_index=np.nan, sigma=np.nan):
    """One row of a source's component table."""
    return {
        "kind": kind,
        "centre_y": centre[0],
        "centre_x": centre[1],
        "axis_ratio": axis_ratio,
        "angle": angle,
        "intensity": intensity,
        "effective_radius": effective_radius,
        "sersic_index": sersic_index,
        "sigma": sigma,
    }


def light_profile(row):
    """The PyAutoLens light profile of one component row."""
    centre = (float(row["centre_y"]), float(row["centre_x"]))
    ell_comps = al.convert.ell_comps_from(axis_ratio=float(row["axis_ratio"]), angle=float(row["angle"]))
    if int(row["kind"]) == SERSIC:
        return al.lp.Sersic(
            centre=centre,
            ell_comps=ell_comps,
            intensity=float(row["intensity"]),
            effective_radius=float(row["effective_radius"]),
            sersic_index=float(row["sersic_index"]),
        )
    return al.lp.Gaussian(
        centre=centre, ell_comps=ell_comps, intensity=float(row["intensity"]), sigma=float(row["sigma"])
    )


def galaxy(components, redshift):
    """A PyAutoLens galaxy with one light profile per component."""
    return al.Galaxy(redshift=redshift, **{f"light_{i}": light_profile(row) for i, row in enumerate(components)})


def fine_grid(survey, refine=4):
    """A grid `refine` x finer than the survey's over the same field of view.

    Built once per survey and reused: constructing a PyAutoLens grid costs more
    than evaluating a profile on it.
    """
    shape = (survey.shape[0] * refine, survey.shape[1] * refine)
    return al.Grid2D.uniform(shape_native=shape, pixel_scales=survey.pixel_scale / refine, over_sample_size=1)


def flux_and_half_light_radius(source_galaxy, grid, centre, pixel_scale):
    """Unlensed flux (e-/s) and circular half-light radius (arcsec) of a source.

    Measured numerically on a fine `grid` (the stamp's field of view) so that
    every morphology, including multi-component sources, gets one definition;
    flux outside the field of view is not counted.
    """
    refine = pixel_scale / grid.pixel_scales[0]
    values = np.asarray(source_galaxy.image_2d_from(grid=grid)) / refine**2
    radius = np.hypot(*(np.asarray(grid) - np.asarray(centre, dtype=float)).T)
    order = np.argsort(radius)
    cumulative = np.cumsum(values[order])
    total = cumulative[-1]
    half = radius[order][np.searchsorted(cumulative, 0.5 * total)]
    return float(total), float(half)


def unit_flux(row, pixel_scale):
    """Total flux (e-/s) of a component at intensity 1, analytic: an AB magnitude is a total flux.

    Eccentric radii make a Sersic's isophote of radius R enclose the area pi R^2, so
    its flux does not depend on q; a Gaussian's sigma lies along the minor axis, so
    its flux grows as 1/q (both checked against PyAutoLens in tests/test_sources.py).
    """
    if int(row["kind"]) == SERSIC:
        n, r_e = float(row["sersic_index"]), float(row["effective_radius"])
        b = float(raytrace.sersic_constant(torch.tensor(n, dtype=torch.float64)))
        area = 2.0 * np.pi * n * np.exp(b + math.lgamma(2.0 * n) - 2.0 * n * np.log(b)) * r_e**2
    else:
        area = 2.0 * np.pi * float(row["sigma"]) ** 2 / float(row["axis_ratio"])
    return area / pixel_scale**2


def normalised(rows, weights, total_flux, pixel_scale):
    """Copies of unit-intensity `rows` scaled so that their total fluxes are `weights` x `total_flux` (e-/s)."""
    return [dict(row, intensity=w * total_flux / unit_flux(row, pixel_scale)) for row, w in zip(rows, weights)]


def half_light_radius(rows, centre, n_radii=400, n_angles=64):
    """Radius (arcsec) of the circle about `centre` holding half of the components' total flux.

    Integrated numerically on a polar grid with log-spaced radii (cusps and tails
    both resolved) out to 15 sizes beyond the farthest component; the total is
    the analytic one, so flux beyond the grid still counts.
    """
    cy, cx = float(centre[0]), float(centre[1])
    sizes = [
        np.hypot(row["centre_y"] - cy, row["centre_x"] - cx)
        + 15.0 * (row["effective_radius"] if int(row["kind"]) == SERSIC else row["sigma"] / np.sqrt(row["axis_ratio"]))
        for row in rows
    ]
    radii = np.geomspace(1e-4, max(sizes), n_radii)
    angles = (np.arange(n_angles) + 0.5) * 2.0 * np.pi / n_angles
    y = torch.as_tensor((cy + radii[:, None] * np.sin(angles)).ravel())
    x = torch.as_tensor((cx + radii[:, None] * np.cos(angles)).ravel())
    brightness = sum(_profile_values(row, y, x) for row in rows).reshape(n_radii, n_angles).mean(dim=1).numpy()
    ring = 2.0 * np.pi * radii**2 * np.log(radii[1] / radii[0])  # 2 pi r dr with dr = r dln r
    cumulative = np.cumsum(brightness * ring)
    total = sum(row["intensity"] * unit_flux(row, 1.0) for row in rows)
    return float(radii[min(np.searchsorted(cumulative, 0.5 * total), n_radii - 1)])


def _profile_values(row, y, x):
    """One component's surface brightness at points (y, x), through the batched profiles."""
    common = (y[None], x[None], [row["centre_y"]], [row["centre_x"]], [row["axis_ratio"]], [row["angle"]])
    if int(row["kind"]) == SERSIC:
        return raytrace.sersic(*common, [row["intensity"]], [row["effective_radius"]], [row["sersic_index"]])[0]
    return raytrace.gaussian(*common, [row["intensity"]], [row["sigma"]])[0]
