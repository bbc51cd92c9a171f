"""The 'true' SIE / power-law parameters of a lens that is neither (P21 section 2.2).

A composite (stellar + dark) lens or a lens seen through line-of-sight halos has
no SIE parameters of its own. P21 define them, and the observed Einstein radius,
by a weighted least-squares fit of an SIE (or power-law) convergence to the
system's convergence map, with weights sqrt(kappa). For a multi-plane system the
map is the *effective* convergence, half the divergence of the total deflection
alpha = theta - beta: the convergence a single-plane lens with the same
deflection field would have. The fit's residual is kept so that systems an SIE
describes badly can be spotted and cut.
"""

from dataclasses import dataclass

import autolens as al
import numpy as np
from scipy import optimize

MODELS = ("sie", "power_law")


def grid_for(shape, pixel_scale):
    """The uniform (y, x) grid, arcsec, that maps and fits share."""
    return al.Grid2D.uniform(shape_native=tuple(shape), pixel_scales=float(pixel_scale))


def pixel_centres(grid):
    """The grid's pixel centres as irregular points: profiles evaluated there are not over-sampled."""
    return al.Grid2DIrregular(values=np.asarray(grid.native).reshape(-1, 2))


def convergence_map(mass, grid):
    """(ny, nx) convergence of a profile or galaxy at the pixel centres (the map the fit compares with)."""
    return np.asarray(mass.convergence_2d_from(grid=pixel_centres(grid))).reshape(grid.shape_native)


def total_deflections(tracer, grid):
    """(ny, nx, 2) deflection theta - beta from the image plane to the last (source) plane."""
    theta = np.asarray(grid.native)
    beta = np.asarray(tracer.traced_grid_2d_list_from(grid=grid)[-1].native)
    return theta - beta


def effective_convergence(tracer, grid):
    """kappa_eff = (d alpha_y / dy + d alpha_x / dx) / 2 of the total deflection, by central differences.

    Equal to the convergence of a single-plane lens; for several planes it is the
    trace of the (non-symmetric) multi-plane deflection Jacobian.
    """
    theta = np.asarray(grid.native)
    alpha = total_deflections(tracer, grid)
    d_y = np.gradient(alpha[..., 0], theta[:, 0, 0], axis=0)
    d_x = np.gradient(alpha[..., 1], theta[0, :, 1], axis=1)
    return 0.5 * (d_y + d_x)


def circular_einstein_radius(kappa, grid, centre):
    """Radius of the circle about `centre` inside which the mean convergence is 1 (NaN if none).

    The Einstein radius of a circular lens; for an elliptical one, close to the
    intermediate-axis radius. It sets the region the SIE / PL fit looks at.
    """
    y, x = np.moveaxis(np.asarray(grid.native), -1, 0)
    radius = np.hypot(y - centre[0], x - centre[1]).ravel()
    order = np.argsort(radius)
    mean = np.cumsum(np.nan_to_num(np.asarray(kappa, float).ravel()[order])) / np.arange(1, order.size + 1)
    below = np.flatnonzero(mean < 1.0)
    return float(radius[order][below[0]]) if below.size and below[0] > 0 else float("nan")


@dataclass(frozen=True)
class ConvergenceFit:
    """Best SIE / PL description of a convergence map (major-axis theta_E, PyAutoLens angles)."""

    model: str
    centre: tuple
    einstein_radius: float
    axis_ratio: float
    angle: float  # degrees counter-clockwise from +x, in [0, 180)
    slope: float  # 2 for the SIE
    residual: float  # weighted rms of (model - map) / weighted rms of the map
    n_pixels: int
    circular_einstein_radius: float  # where the mean enclosed convergence is 1, about the fitted centre

    def row(self):
        return {
            "true_centre_y": self.centre[0],
            "true_centre_x": self.centre[1],
            "true_einstein_radius": self.einstein_radius,
            "true_axis_ratio": self.axis_ratio,
            "true_angle": self.angle,
            "true_slope": self.slope,
            "kappa_fit_residual": self.residual,
            "kappa_fit_pixels": float(self.n_pixels),
            "true_circular_einstein_radius": self.circular_einstein_radius,
        }


def _profile(model, values):
    centre, ell_comps, einstein_radius = (values[0], values[1]), (values[2], values[3]), values[4]
    if model == "sie":
        return al.mp.Isothermal(centre=centre, ell_comps=ell_comps, einstein_radius=einstein_radius)
    return al.mp.PowerLaw(centre=centre, ell_comps=ell_comps, einstein_radius=einstein_radius, slope=values[5])


def fit_convergence(kappa, grid, model="sie", kappa_max=3.0, radius_factor=None):
    """Weighted least-squares SIE / PL fit to a convergence map (weights sqrt(kappa), P21).

    Only pixels with 0 < kappa <= `kappa_max` enter: negative pixels have no
    weight, and the central cusp's pixel values are set by where the grid samples
    it, not by the profile. With `radius_factor`, only pixels within that many
    circular Einstein radii of the peak: a composite lens is not an SIE, and
    over a whole stamp the fit would follow the halo's outskirts (r > 3 theta_E,
    most of the pixels) rather than the region its images probe.
    """
    if model not in MODELS:
        raise ValueError(f"unknown mass model {model!r}; expected one of {MODELS}")
    kappa = np.asarray(kappa, float)
    coordinates = np.asarray(grid.native)
    use = (kappa > 0) & (kappa <= kappa_max) & np.isfinite(kappa)
    peak = np.unravel_index(np.nanargmax(np.where(np.isfinite(kappa), kappa, -np.inf)), kappa.shape)
    if radius_factor is not None:
        circular = circular_einstein_radius(kappa, grid, coordinates[peak])
        if np.isfinite(circular):
            use &= np.hypot(*np.moveaxis(coordinates - coordinates[peak], -1, 0)) <= radius_factor * circular
    if use.sum() < 10:
        raise ValueError(f"only {int(use.sum())} pixels with 0 < kappa <= {kappa_max}: nothing to fit")
    points = al.Grid2DIrregular(values=coordinates[use])
    data, weights = kappa[use], np.sqrt(kappa[use])
    # Start: centre at the peak of the map, theta_E from the area where kappa > 1 (2 sqrt(A / pi) for an SIS).
    pixel_area = abs(coordinates[1, 0, 0] - coordinates[0, 0, 0]) * abs(coordinates[0, 1, 1] - coordinates[0, 0, 1])
    theta_start = max(2.0 * np.sqrt((kappa > 1.0).sum() * pixel_area / np.pi), 0.1)
    start = [*coordinates[peak], 0.0, 0.0, theta_start] + ([2.0] if model == "power_law" else [])
    low = [-np.inf, -np.inf, -0.9, -0.9, 1e-3] + ([1.05] if model == "power_law" else [])
    high = [np.inf, np.inf, 0.9, 0.9, np.inf] + ([2.95] if model == "power_law" else [])

    def residuals(values):
        return weights * (np.asarray(_profile(model, values).convergence_2d_from(grid=points)) - data)

    solution = optimize.least_squares(residuals, start, bounds=(low, high), x_scale="jac")
    values = solution.x
    axis_ratio, angle = al.convert.axis_ratio_and_angle_from(ell_comps=(values[2], values[3]))
    return ConvergenceFit(
        model=model,
        centre=(float(values[0]), float(values[1])),
        einstein_radius=float(values[4]),
        axis_ratio=float(axis_ratio),
        angle=float(angle) % 180.0,
        slope=float(values[5]) if model == "power_law" else 2.0,
        residual=float(np.sqrt(np.mean(solution.fun**2)) / np.sqrt(np.mean((weights * data) ** 2))),
        n_pixels=int(use.sum()),
        circular_einstein_radius=circular_einstein_radius(kappa, grid, (values[0], values[1])),
    )
