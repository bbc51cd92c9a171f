"""P21's three PyAutoLens prior sets: blind (ring-fit theta_E), BNN-centred uniform, BNN Gaussian(1 sigma).

Blind (P21 section 3.1): theta_E uniform within `einstein_half_width` of the
radius of a circle fitted, with uniform weights, to the pixels above
`threshold_sigma` times the noise; everything else over its full range.
PyAL + BNN: uniform windows of fixed half-widths centred on the BNN's means
(P21: 0.2", 40 deg, 0.1, slope 0.2). PyAL + BNN(1 sigma): Gaussians with the
BNN's means and 1-sigma uncertainties. Priors are on the model's own (theta_E,
q, phi) parameters: q windows are kept inside the model's q range (shifted, not
shrunk, at its ends), phi windows are not cut at 0/180 degrees because the model
sees phi only through 2 phi (a window across the wrap is one connected range of
ellipses).
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hybridlens.reconstruction import masking
from hybridlens.fitting.modelling import Prior, SIEPriors

MIN_EINSTEIN_RADIUS = 0.01  # arcsec: the lower end of every theta_E prior


@dataclass(frozen=True)
class Ring:
    """A circle fitted to the bright pixels of a lens image."""

    centre: tuple  # (y, x) arcsec
    radius: float  # arcsec
    n_pixels: int


@dataclass(frozen=True)
class Prediction:
    """A network's parameters with 1-sigma uncertainties, in physical units."""

    einstein_radius: float
    einstein_radius_sigma: float
    axis_ratio: float
    axis_ratio_sigma: float
    angle: float
    angle_sigma: float
    slope: float = 2.0
    slope_sigma: float = np.nan


@dataclass(frozen=True)
class PriorSettings:
    """The config's `p21_comparison.priors` block."""

    threshold_sigma: float
    min_region_pixels: int
    einstein_half_width: float  # blind: about the ring radius
    half_widths: dict  # BNN-centred uniform windows: einstein_radius, angle, axis_ratio, slope
    slope_range: tuple
    smooth_pixels: float = 0.0  # > 0: no ring in the image -> fit the image smoothed so (as the masks are)

    @classmethod
    def from_config(cls, settings, smooth_pixels=0.0):
        """`p21_comparison.priors`; `smooth_pixels` is `masking.smooth_pixels` where a fallback ring is wanted."""
        return cls(
            float(settings["threshold_sigma"]),
            int(settings["min_region_pixels"]),
            float(settings["einstein_half_width"]),
            dict(settings["half_widths"]),
            tuple(settings["slope_range"]),
            float(smooth_pixels),
        )


@dataclass(frozen=True)
class ModelPriors:
    """Priors of an SIE fit, and of the slope when the model is a power law."""

    sie: SIEPriors
    slope: Prior | None = None


def fit_ring(image, noise_map, grid, threshold_sigma, min_region_pixels):
    """Least-squares circle (algebraic, uniform weights) through the pixels above threshold x noise.

    Islands of fewer than `min_region_pixels` are dropped first, as the masks do:
    a 3-sigma cut passes ~14 noise pixels per 100 x 100 stamp, scattered far
    from the ring, and an algebraic fit weighs each as much as a ring pixel.
    Returns None when fewer than three pixels remain (no ring to fit).
    """
    coordinates = np.asarray(grid)
    bright = (np.asarray(image) > threshold_sigma * np.asarray(noise_map)) & np.isfinite(image)
    bright = masking.drop_small_islands(bright, min_region_pixels).reshape(-1)
    if bright.sum() < 3:
        return None
    y, x = coordinates.reshape(-1, 2)[bright].T
    # x^2 + y^2 + D x + E y + F = 0, linear in (D, E, F)
    design = np.column_stack([x, y, np.ones_like(x)])
    d, e, f = np.linalg.lstsq(design, -(x**2 + y**2), rcond=None)[0]
    centre_x, centre_y = -d / 2, -e / 2
    radius = float(np.sqrt(max(centre_x**2 + centre_y**2 - f, 0.0)))
    return Ring((float(centre_y), float(centre_x)), radius, int(bright.sum()))


def smoothed(image, noise_map, sigma_pixels):
    """The image smoothed by a Gaussian and its noise map: per-pixel noise falls by the kernel's L2 norm.

    Faint extended arcs (integrated S/N 20 spread over a hundred pixels) have no
    pixel above 3 sigma; smoothed, their S/N per pixel grows ~3x for 1 pixel.
    """
    image = np.where(np.isfinite(image), image, 0.0)
    size = int(8 * sigma_pixels) | 1
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1.0
    norm = float(np.sqrt((ndimage.gaussian_filter(impulse, sigma_pixels) ** 2).sum()))
    return ndimage.gaussian_filter(image, sigma_pixels), ndimage.gaussian_filter(noise_map, sigma_pixels) * norm


def guarded_ring(ring, inner_radius, outer_radius):
    """The ring with its radius clipped into the mask's annulus, and whether it was clipped.

    The algebraic fit weighs every bright pixel alike: a bright inner clump or a
    single arc can pull the radius far from the arcs (0.27" for a 2.53" lens). The
    annulus brackets the arcs, so a radius outside it is moved to its nearer edge.
    """
    if not (np.isfinite(inner_radius) and np.isfinite(outer_radius)):
        return ring, False
    radius = float(np.clip(ring.radius, inner_radius, outer_radius))
    return Ring(ring.centre, radius, ring.n_pixels), radius != ring.radius


def window(centre, half_width, bounds=(-np.inf, np.inf)):
    """[centre - half_width, centre + half_width] moved (not shrunk) to lie inside `bounds` where it fits."""
    low, high = centre - half_width, centre + half_width
    if high - low >= bounds[1] - bounds[0]:
        return bounds
    if low < bounds[0]:
        low, high = bounds[0], bounds[0] + 2 * half_width
    if high > bounds[1]:
        low, high = bounds[1] - 2 * half_width, bounds[1]
    return float(low), float(high)


def _common(centre, modelling_priors):
    """Centre and regularisation priors, shared by every method: M21's full ranges."""
    half = modelling_priors["centre_half_width"]
    low, high = modelling_priors["log10_coefficient_range"]
    return {
        "centre_y": Prior.uniform(centre[0] - half, centre[0] + half),
        "centre_x": Prior.uniform(centre[1] - half, centre[1] + half),
        "coefficient": Prior.log_uniform(10.0**low, 10.0**high),
    }


def blind_priors(ring, centre, modelling_priors, settings, power_law=False):
    """P21's blind PyAutoLens priors: theta_E about the ring radius, the rest over full ranges."""
    theta = window(ring.radius, settings.einstein_half_width, (MIN_EINSTEIN_RADIUS, np.inf))
    sie = SIEPriors(
        einstein_radius=Prior.uniform(*theta),
        axis_ratio=Prior.uniform(*modelling_priors["axis_ratio_range"]),
        angle=Prior.uniform(*modelling_priors["angle_range"]),
        **_common(centre, modelling_priors),
    )
    return ModelPriors(sie, Prior.uniform(*settings.slope_range) if power_law else None)


def bnn_uniform_priors(prediction, centre, modelling_priors, settings, power_law=False):
    """PyAL + BNN: uniform windows of the stated half-widths centred on the BNN's means."""
    widths = settings.half_widths
    q_bounds = tuple(modelling_priors["axis_ratio_range"])
    sie = SIEPriors(
        einstein_radius=Prior.uniform(
            *window(prediction.einstein_radius, widths["einstein_radius"], (MIN_EINSTEIN_RADIUS, np.inf))
        ),
        axis_ratio=Prior.uniform(*window(prediction.axis_ratio, widths["axis_ratio"], q_bounds)),
        angle=Prior.uniform(prediction.angle - widths["angle"], prediction.angle + widths["angle"]),
        **_common(centre, modelling_priors),
    )
    slope = Prior.uniform(*window(prediction.slope, widths["slope"], settings.slope_range)) if power_law else None
    return ModelPriors(sie, slope)


def bnn_gaussian_priors(prediction, centre, modelling_priors, settings, power_law=False):
    """PyAL + BNN(1 sigma): Gaussians with the BNN's means and sigmas, cut to each parameter's range."""
    sie = SIEPriors(
        einstein_radius=Prior.gaussian(
            prediction.einstein_radius, prediction.einstein_radius_sigma, MIN_EINSTEIN_RADIUS, np.inf
        ),
        axis_ratio=Prior.gaussian(
            prediction.axis_ratio, prediction.axis_ratio_sigma, *modelling_priors["axis_ratio_range"]
        ),
        angle=Prior.gaussian(prediction.angle, prediction.angle_sigma),
        **_common(centre, modelling_priors),
    )
    slope = Prior.gaussian(prediction.slope, prediction.slope_sigma, *settings.slope_range) if power_law else None
    return ModelPriors(sie, slope)
