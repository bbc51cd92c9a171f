"""Automatic annular masks (M21 section 3.2).

Threshold by minimum cross-entropy (Li & Lee 1993), centre on the moments of
the thresholded pixels, then take 0.9 x the largest empty circle and 1.1 x the
smallest enclosing circle about that centre. Three additions to the paper, all
configurable: the image is first smoothed by a Gaussian of `smooth_pixels`
(faint extended arcs are below the per-pixel noise otherwise); the threshold is
floored at `min_threshold_sigma` x the robust noise rms (Li's criterion on a
compact source's few pixels otherwise lands inside the noise); and islands of
fewer than `min_region_pixels` pixels are discarded, so noise spikes cannot
inflate the outer radius. Coordinates follow
PyAutoLens: arcsec, (y, x), y up, origin at the stamp centre.
"""

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_li

from hybridlens.flags import MaskFlag, is_set


@dataclass
class Annulus:
    mask: np.ndarray  # True = pixel inside the annulus (used in the fit)
    inner_radius: float
    outer_radius: float
    centre: tuple
    threshold: float
    flags: int = 0  # MaskFlag bits


def pixel_coordinates(shape, pixel_scale):
    """(y, x) arcsec of pixel centres, PyAutoLens convention."""
    rows, cols = np.indices(shape, dtype=float)
    y = ((shape[0] - 1) / 2.0 - rows) * pixel_scale
    x = (cols - (shape[1] - 1) / 2.0) * pixel_scale
    return y, x


def annular_mask(shape, pixel_scale, inner_radius, outer_radius, centre=(0.0, 0.0)):
    """Pixels whose centres lie between the radii (as `al.Mask2D.circular_annular`)."""
    y, x = pixel_coordinates(shape, pixel_scale)
    radius = np.hypot(y - centre[0], x - centre[1])
    return (radius >= inner_radius) & (radius <= outer_radius)


def drop_small_islands(binary, min_pixels):
    labels, n = ndimage.label(binary)
    if n == 0 or min_pixels <= 1:
        return binary
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def robust_rms(image):
    """Noise rms from the median absolute deviation: the background dominates a stamp."""
    return float(1.4826 * np.median(np.abs(image - np.median(image))))


def one_sided(dy, dx):
    """Whether every point lies within a half-plane through the origin (an angular gap over 180 degrees)."""
    angles = np.sort(np.arctan2(dy, dx))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2.0 * np.pi]))
    return bool(gaps.max() > np.pi)


def fit_annulus(
    image,
    pixel_scale,
    inner_factor=0.9,
    outer_factor=1.1,
    min_region_pixels=8,
    min_threshold_sigma=3.0,
    smooth_pixels=1.0,
    centre=None,
):
    """The M21 annulus of one image; bad images get flags and an empty mask.

    `centre` (y, x) arcsec: the lens centre when it is known better than the
    arcs' centroid (a cutout's stamp or lens-light centre); on a double the
    brighter image pulls the centroid off the lens, and the annulus with it.
    """
    image = np.asarray(image, dtype=float)
    empty = np.zeros(image.shape, dtype=bool)
    if not np.all(np.isfinite(image)):
        return Annulus(empty, np.nan, np.nan, (np.nan, np.nan), np.nan, MaskFlag.NONFINITE)
    if np.ptp(image) == 0:
        return Annulus(empty, np.nan, np.nan, (np.nan, np.nan), np.nan, MaskFlag.EMPTY)
    smoothed = ndimage.gaussian_filter(image, smooth_pixels) if smooth_pixels > 0 else image
    threshold = max(float(threshold_li(smoothed)), min_threshold_sigma * robust_rms(smoothed))
    binary = drop_small_islands(smoothed > threshold, min_region_pixels)
    if not binary.any():
        return Annulus(empty, np.nan, np.nan, (np.nan, np.nan), threshold, MaskFlag.EMPTY)
    y, x = pixel_coordinates(image.shape, pixel_scale)
    if centre is None:
        centre = (float(y[binary].mean()), float(x[binary].mean()))
        inside = binary
    else:
        # about a known centre the annulus also reaches in to fainter islands (a double's
        # counter-image, below the bright image's threshold) inside the arcs' outer radius
        faint = drop_small_islands(smoothed > min_threshold_sigma * robust_rms(smoothed), min_region_pixels)
        radius = np.hypot(y - centre[0], x - centre[1])
        inside = binary | (faint & (radius <= radius[binary].max()))
    centre = (float(centre[0]), float(centre[1]))
    radius = np.hypot(y - centre[0], x - centre[1])
    inner = inner_factor * float(radius[inside].min())
    outer = outer_factor * float(radius[binary].max())
    flags = 0
    if inside is not binary and one_sided(y[inside] - centre[0], x[inside] - centre[1]):
        # a double whose counter-image is lost in the noise: it lies opposite, anywhere inside
        inner, flags = 0.0, MaskFlag.ONE_SIDED
    half_height, half_width = image.shape[0] * pixel_scale / 2.0, image.shape[1] * pixel_scale / 2.0
    if abs(centre[0]) + outer > half_height or abs(centre[1]) + outer > half_width:
        flags |= MaskFlag.BEYOND_STAMP
    mask = annular_mask(image.shape, pixel_scale, inner, outer, centre)
    return Annulus(mask, inner, outer, centre, threshold, flags)


def encloses(annulus, point):
    """Whether `point` (y, x) arcsec lies within the annulus' outer circle (an empty annulus encloses nothing)."""
    distance = np.hypot(point[0] - annulus.centre[0], point[1] - annulus.centre[1])
    return bool(distance <= annulus.outer_radius)


def lens_annulus(image, pixel_scale, settings, mask_centre=None, lens_centre=None):
    """The annulus about `mask_centre` (None: the arcs' centroid, M21), refitted about `lens_centre` if it misses it.

    An Einstein ring encloses its lens. When the arcs' centroid sits on one bright image
    (a double whose counter-image is faint), M21's annulus is a small disc about that image
    with the lens outside it, and no theta_E near the truth fits inside; about the lens
    centre the annulus reaches from the counter-image to the bright image. Flagged RECENTRED.
    """
    annulus = fit_annulus(image, pixel_scale, **settings, centre=mask_centre)
    if mask_centre is not None or lens_centre is None or annulus.flags & MaskFlag.NO_MASK:
        return annulus
    if encloses(annulus, lens_centre):
        return annulus
    recentred = fit_annulus(image, pixel_scale, **settings, centre=tuple(lens_centre))
    return replace(recentred, flags=recentred.flags | MaskFlag.RECENTRED)


def mask_shard(images, pixel_scale, settings, input_flags=None, model_images=None):
    """Annuli for a stack of images: arrays and 1-D columns ready for a shard.

    With the noiseless `model_images` of a simulation, also records the
    fraction of the true lensed flux that each annulus keeps.
    """
    results = [fit_annulus(image, pixel_scale, **settings) for image in images]
    flags = np.array([r.flags for r in results], dtype=np.uint8)
    if input_flags is not None:
        flags |= np.where(np.asarray(input_flags) != 0, MaskFlag.INPUT_FLAGGED, 0).astype(np.uint8)
    return {
        "mask": np.stack([r.mask for r in results]) if results else np.zeros((0, 0, 0), bool),
        "params": {
            "inner_radius": np.array([r.inner_radius for r in results]),
            "outer_radius": np.array([r.outer_radius for r in results]),
            "centre_y": np.array([r.centre[0] for r in results]),
            "centre_x": np.array([r.centre[1] for r in results]),
            "threshold": np.array([r.threshold for r in results]),
            "n_pixels": np.array([r.mask.sum() for r in results], dtype=float),
            **({} if model_images is None else {"model_flux_fraction": flux_fraction(model_images, results)}),
        },
        "flags": flags,
    }


def usable(simulation_flags, mask_flags):
    """A lens can be modelled when its simulation is clean and it has a mask."""
    return (np.asarray(simulation_flags) == 0) & ~is_set(mask_flags, MaskFlag.NO_MASK)


def flux_fraction(model_images, results):
    """Fraction of each noiseless image's flux inside its annulus (NaN if unmasked)."""
    fractions = np.full(len(results), np.nan)
    for i, (model, result) in enumerate(zip(model_images, results)):
        total = np.nansum(model)
        if result.mask.any() and total > 0:
            fractions[i] = float(model[result.mask].sum() / total)
    return fractions


UNITS = {
    "inner_radius": "arcsec",
    "outer_radius": "arcsec",
    "centre_y": "arcsec",
    "centre_x": "arcsec",
    "threshold": "e-/s/pixel",
    "n_pixels": "pixels",
    "model_flux_fraction": "",
}
