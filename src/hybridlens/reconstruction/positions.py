"""Do a model's multiple images come from one source? The arcs' brightest peaks traced back.

A wrong SIE (theta_E too small or too large) maps the images of one source to
separate source-plane positions, so its pixelised reconstruction holds separate
copies of the source: the classic unphysical solution, which a classifier can call
correct. PyAutoLens' position likelihood fences it off with the same test: the
image-plane positions of the multiple images, traced through the model, must meet
in the source plane. Here the positions are the brightest local peaks of the
smoothed arcs inside the mask, at least a PSF apart; the spread is the source-plane
distance from the brightest to its nearest other peak, in units of the model's theta_E.

A model can also be wrong with one peak in the mask: a theta_E so small that no peak of
the arcs is multiply imaged through it. The lens was chosen because it lenses strongly,
so such a model is under-magnified whatever the classifier says (`multiply_imaged`).
"""

from dataclasses import dataclass
import numpy as np
from scipy import ndimage

from hybridlens.reconstruction.masking import pixel_coordinates
from hybridlens.simulation import lenses


@dataclass(frozen=True)
class PositionSettings:
    """`model_lenses.positions` (the guarded loop's, on own lenses and M21's blind lenses alike)."""

    min_snr: float = 5.0  # a peak's smoothed value over the noise
    min_separation: float = 0.3  # arcsec between kept peaks (about two PSF FWHM)
    max_peaks: int = 4
    max_spread: float = 0.3  # traced spread / theta_E above which the source is split
    # the fits skip split models (no inversion, fitting.modelling.PositionCut); False: judged after a fit only
    cut: bool = True

    @classmethod
    def from_config(cls, settings):
        return None if settings is None else cls(**settings)


def arc_peaks(image, noise_map, mask, pixel_scale, settings=PositionSettings()):
    """(n, 2) arcsec (y, x) of the brightest separated peaks of the smoothed arcs inside `mask`."""
    smoothed = ndimage.gaussian_filter(np.asarray(image, float), 1.0)
    local = (ndimage.maximum_filter(smoothed, size=3) == smoothed) & mask
    local &= smoothed > settings.min_snr * np.asarray(noise_map) / 2.8  # smoothing by 1 pixel cuts the noise ~2.8x
    y, x = pixel_coordinates(image.shape, pixel_scale)
    order = np.argsort(smoothed[local])[::-1]
    candidates = np.column_stack([y[local], x[local]])[order]
    kept = []
    for point in candidates:
        if all(np.hypot(*(point - other)) >= settings.min_separation for other in kept):
            kept.append(point)
        if len(kept) == settings.max_peaks:
            break
    return np.array(kept).reshape(-1, 2)


def pair_einstein_radius(positions, centre):
    """theta_E from a double's images about a known lens centre: the mean radius of the brightest peak
    and the peak most nearly opposite it (NaN: fewer than two peaks, or none beyond 90 degrees of it).

    An SIS images a source at beta to theta_E + beta and theta_E - beta on opposite sides of
    the lens, so the mean is theta_E exactly; ellipticity and shear spread it by a few per cent.
    The estimate needs no network: it checks one on images unlike its training set.
    """
    offsets = np.asarray(positions, float).reshape(-1, 2) - np.asarray(centre, float)
    if len(offsets) < 2:
        return np.nan
    angles = np.arctan2(offsets[:, 0], offsets[:, 1])
    apart = np.abs(np.angle(np.exp(1j * (angles[1:] - angles[0]))))
    other = int(np.argmax(apart))
    if apart[other] < np.pi / 2:
        return np.nan
    radii = np.hypot(offsets[:, 0], offsets[:, 1])
    return float((radii[0] + radii[1 + other]) / 2.0)


def traced_spread(mass, positions):
    """Source-plane distance (arcsec) from the brightest peak to its nearest other peak, traced through `mass`.

    The brightest image's counterpart, not all peaks: a clumpy source's other clumps
    trace to other source positions through the right model too.
    """
    if len(positions) < 2:
        return 0.0
    profile = lenses.mass_profile("sie", mass.centre, mass.einstein_radius, mass.axis_ratio, mass.angle)
    return spread_through(profile, positions)


def spread_through(profile, positions):
    """`traced_spread` through a PyAutoLens mass profile (a fit's model instance): a few deflections, ~0.2 ms."""
    import autolens as al

    if len(positions) < 2:
        return 0.0
    grid = al.Grid2DIrregular(values=[tuple(p) for p in positions])
    source = np.asarray(positions) - np.asarray(profile.deflections_yx_2d_from(grid=grid))
    return float(np.hypot(*(source[1:] - source[0]).T).min())


def image_count(profile, point, grid_pixels=100, magnification_threshold=0.1):
    """How many images `profile` makes of the source position that `point` (arcsec, y x) traces to.

    PyAutoLens' triangle `PointSolver` on a grid about the lens reaching well past both the
    point and the Einstein radius; images fainter than `magnification_threshold` are not counted.
    """
    import autolens as al

    point, centre = np.asarray(point, float), np.asarray(profile.centre, float)
    half = 2.5 * max(np.hypot(*(point - centre)), float(profile.einstein_radius))
    grid = al.Grid2D.uniform(
        shape_native=(grid_pixels, grid_pixels), pixel_scales=2 * half / grid_pixels, origin=tuple(centre)
    )
    solver = al.PointSolver.for_grid(
        grid=grid, pixel_scale_precision=half / 2000, magnification_threshold=magnification_threshold
    )
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=profile), al.Galaxy(redshift=1.0)])
    deflection = np.asarray(profile.deflections_yx_2d_from(grid=al.Grid2DIrregular(values=[tuple(point)])))[0]
    return len(solver.solve(tracer=tracer, source_plane_coordinate=tuple(point - deflection)))


def multiply_imaged(mass, positions):
    """Whether any of the arcs' peaks is one of several images of its source through `mass` (~0.1 s a peak)."""
    profile = lenses.mass_profile("sie", mass.centre, mass.einstein_radius, mass.axis_ratio, mass.angle)
    return any(image_count(profile, point) >= 2 for point in positions)


@dataclass(frozen=True)
class Traced:
    """The arcs' peaks through one model: their spread / theta_E, which way theta_E should move, and
    whether the model lenses any of them strongly. The spread needs two peaks (NaN otherwise)."""

    spread: float
    split: bool
    verdict: str  # under (a larger theta_E brings the images together) or over
    lensed: bool = True  # some peak is multiply imaged; False: under-magnified, whatever the spread

    def row(self):
        two = np.isfinite(self.spread)
        return {
            "position_spread": self.spread,
            "position_split": float(self.split) if two else np.nan,
            "position_verdict": {"under": 0.0, "over": 2.0}[self.verdict] if two else np.nan,  # CLASSES' codes
            "position_lensed": float(self.lensed),
        }


def traced(mass, positions, settings=PositionSettings(), step=0.05):
    """Whether `mass`'s images fail to meet in the source plane, the direction that brings them closer,
    and whether it multiply images any peak at all (one peak is enough for that)."""
    if not len(positions):
        raise ValueError("no arc peaks to trace")
    lensed = multiply_imaged(mass, positions)
    if len(positions) < 2:
        return Traced(np.nan, False, "under", lensed)
    spread = traced_spread(mass, positions) / mass.einstein_radius
    larger = traced_spread(mass.with_einstein_radius(mass.einstein_radius * (1 + step)), positions)
    smaller = traced_spread(mass.with_einstein_radius(mass.einstein_radius * (1 - step)), positions)
    return Traced(spread, bool(spread > settings.max_spread), "under" if larger < smaller else "over", lensed)
