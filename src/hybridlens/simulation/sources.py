"""Source-galaxy light: Sersic, Gaussian and multi-Sersic components.

A source is a table of components (one row each) so that every morphology
shares one storage layout: absent fields are NaN, `kind` is 0 for Sersic and
1 for Gaussian. Intensities follow PyAutoLens: e-/s per image pixel at R_eff
(Sersic) or at the centre (Gaussian).
"""

import autolens as al
import numpy as np

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
