"""The lens galaxy's light in a survey cutout: a multi-Gaussian expansion, the arcs clipped.

Both papers model images whose lens light was removed perfectly (P21's simulations
subtract the true Sérsic, leaving its shot noise). A survey cutout holds the lens
galaxy, and left in it would be modelled as lensed source light. As PyAutoLens' SLaM
LIGHT stage does, it is fitted with an MGE: `n_gaussians` Gaussians (`al.lp.Gaussian`'s
definition) sharing a centre and an ellipticity, widths log-spaced from half a pixel to
a fraction of the stamp, intensities linear (non-negative least squares), so only
(y, x, q, phi) are searched. Pixels lying above the model by more than `clip_sigma`
(the arcs) are left out and the fit repeated. The model's centre marks the lens centre
to a fraction of a pixel on doubles, where the arcs' centroid is pulled off it.

The centre is sought within `search_radius` of the stamp centre (a cutout is centred on
its lens to a few pixels). A faint, extended galaxy under bright arcs can be outfitted
by Gaussians centred on an arc (S/N 18-30 models found 0.9-3.7" off the lens on
survey-style cutouts); such a fit runs to the edge of the search and is not taken for
the lens: nothing is subtracted and the centre falls back to the stamp's.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize, signal

from hybridlens.reconstruction.masking import pixel_coordinates

MODES = ("model", "subtracted")  # model_lenses.lens_light


@dataclass(frozen=True)
class LightSettings:
    """`model_lenses.lens_light_model`."""

    n_gaussians: int = 15
    min_sigma_pixels: float = 0.5  # narrowest Gaussian, pixels (the PSF widens it)
    max_sigma_fraction: float = 0.5  # widest Gaussian, fraction of the stamp's half-width
    over_sample: int = 3  # sub-pixels per side for the profiles' cores
    search_radius: float = 0.5  # arcsec: the lens galaxy's centre is sought this close to the stamp centre
    clip_sigma: float = 3.0  # pixels above the model by more than this x noise are arcs ...
    clip_dilate: int = 1  # ... grown by this many pixels
    iterations: int = 3  # fit, clip, refit
    max_evaluations: int = 300  # Nelder-Mead evaluations per iteration
    min_snr: float = 10.0  # integrated S/N of the model below this: no lens light found

    @classmethod
    def from_config(cls, settings):
        return cls(**(settings or {}))


@dataclass
class LensLight:
    """The fitted lens light; `image` is the PSF-convolved model in the cutout's units."""

    centre: tuple  # (y, x) arcsec
    axis_ratio: float
    angle: float  # degrees counter-clockwise from +x
    sigmas: np.ndarray  # arcsec, before the axis-ratio scaling al.lp.Gaussian applies
    intensities: np.ndarray
    image: np.ndarray
    clipped: np.ndarray  # pixels left out of the last iteration (the arcs)
    snr: float
    chi_squared_per_pixel: float  # on the pixels fitted
    evaluations: int
    seconds: float
    found: bool
    notes: list = field(default_factory=list)

    def shapes(self):
        """(n, 5) centre_y, centre_x, q, angle, sigma of the Gaussians in use (non-zero intensity)."""
        used = self.sigmas[self.intensities > 0]
        return np.array([[*self.centre, self.axis_ratio, self.angle, sigma] for sigma in used], float)

    def row(self):
        """Flat `light_*` columns for the lens's catalogue row."""
        return {
            "light_found": float(self.found),
            "light_centre_y": self.centre[0],
            "light_centre_x": self.centre[1],
            "light_axis_ratio": self.axis_ratio,
            "light_angle": self.angle,
            "light_snr": self.snr,
            "light_chi_squared_per_pixel": self.chi_squared_per_pixel,
            "light_clipped_pixels": float(self.clipped.sum()),
            "light_seconds": self.seconds,
        }


def pixel_grid(shape, pixel_scale, over_sample=1):
    """(y, x) arcsec of pixel (or sub-pixel) centres, y up, origin at the stamp centre (autolens' convention)."""
    fine = (shape[0] * over_sample, shape[1] * over_sample)
    return pixel_coordinates(fine, pixel_scale / over_sample)


def gaussian_images(grid, centre, axis_ratio, angle, sigmas):
    """Unit-intensity images of `al.lp.Gaussian`s on `grid` (a `pixel_grid`), one per sigma."""
    y, x = grid[0] - centre[0], grid[1] - centre[1]
    phi = math.radians(angle)
    along = x * math.cos(phi) + y * math.sin(phi)
    across = -x * math.sin(phi) + y * math.cos(phi)
    # al.lp.Gaussian's exponent (tested against it): (q^2 along^2 + across^2) / sigma^2
    radius2 = (axis_ratio * along) ** 2 + across**2
    return np.exp(-0.5 * radius2[None] / np.asarray(sigmas)[:, None, None] ** 2)


def binned(images, over_sample):
    """Mean over each pixel's sub-pixels."""
    if over_sample == 1:
        return images
    n, ny, nx = images.shape
    return images.reshape(n, ny // over_sample, over_sample, nx // over_sample, over_sample).mean(axis=(2, 4))


class LightFit:
    """Repeated MGE fits of one cutout: the basis for a trial (centre, q, phi) and its chi-squared."""

    def __init__(self, image, noise_map, psf_kernel, pixel_scale, settings):
        self.image = np.asarray(image, float)
        self.noise = np.asarray(noise_map, float)
        self.psf = np.asarray(psf_kernel, float) / np.sum(psf_kernel)
        self.pixel_scale = float(pixel_scale)
        self.settings = settings
        self.grid = pixel_grid(self.image.shape, self.pixel_scale, settings.over_sample)
        half_width = 0.5 * min(self.image.shape) * self.pixel_scale
        self.sigmas = np.geomspace(
            settings.min_sigma_pixels * self.pixel_scale, settings.max_sigma_fraction * half_width, settings.n_gaussians
        )
        self.evaluations = 0

    def basis(self, centre, axis_ratio, angle):
        """PSF-convolved unit images, (n_gaussians, ny, nx)."""
        images = binned(gaussian_images(self.grid, centre, axis_ratio, angle, self.sigmas), self.settings.over_sample)
        return signal.fftconvolve(images, self.psf[None], mode="same", axes=(1, 2))

    def solve(self, params, used):
        """Non-negative intensities and chi-squared on the `used` pixels for params (y, x, q, phi)."""
        self.evaluations += 1
        basis = self.basis(params[:2], params[2], params[3])
        weights = 1.0 / self.noise[used]
        design = (basis[:, used] * weights).T
        intensities, norm = optimize.nnls(design, self.image[used] * weights, maxiter=50 * design.shape[1])
        return intensities, norm**2, basis

    def chi_squared(self, params, used):
        y, x, q, angle = params
        if not 0.1 <= q <= 1.0 or math.hypot(y, x) > self.settings.search_radius:
            return np.inf
        return self.solve((y, x, q, angle), used)[1]


def start_guess(image, noise_map, pixel_scale, search_radius, min_snr=5.0):
    """(y, x, q, phi) of the lens galaxy's peak, from the moments about it.

    The peak is the significant local maximum of the smoothed image nearest the stamp
    centre (a cutout is centred on its lens), not the brightest: an arc within
    `search_radius` can outshine a faint galaxy's centre.
    """
    y, x = pixel_grid(image.shape, pixel_scale)
    smoothed = ndimage.gaussian_filter(np.asarray(image, float), 1.0)
    radius = np.hypot(y, x)
    near = radius <= search_radius
    peaks = near & (ndimage.maximum_filter(smoothed, size=3) == smoothed) & (smoothed > min_snr * noise_map / 2.8)
    if peaks.any():
        peak = np.unravel_index(np.argmin(np.where(peaks, radius, np.inf)), image.shape)
    else:
        peak = np.unravel_index(np.argmax(np.where(near, smoothed, -np.inf)), image.shape)
    yc, xc = float(y[peak]), float(x[peak])
    core = (np.hypot(y - yc, x - xc) <= max(3 * pixel_scale, 0.3)) & (smoothed > 0)
    w = smoothed[core]
    if w.sum() <= 0:
        return yc, xc, 0.9, 0.0
    dy, dx = y[core] - yc, x[core] - xc
    cyy, cxx, cxy = (w * dy * dy).sum() / w.sum(), (w * dx * dx).sum() / w.sum(), (w * dx * dy).sum() / w.sum()
    eig = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    q = float(np.clip(np.sqrt(max(eig[0], 1e-12) / max(eig[1], 1e-12)), 0.3, 0.95))
    angle = float(np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180.0)
    return yc, xc, q, angle


def fit_lens_light(image, noise_map, psf_kernel, pixel_scale, settings=LightSettings()):
    """The lens galaxy's MGE, the arcs clipped; `found` False (and a zero image) where the cutout holds none."""
    start = time.perf_counter()
    fit = LightFit(image, noise_map, psf_kernel, pixel_scale, settings)
    finite = np.isfinite(fit.image) & np.isfinite(fit.noise) & (fit.noise > 0)
    used = finite.copy()
    params = np.array(start_guess(np.where(finite, fit.image, 0.0), fit.noise, fit.pixel_scale, settings.search_radius))
    step = np.array([fit.pixel_scale, fit.pixel_scale, 0.1, 20.0])
    for _ in range(settings.iterations):
        simplex = np.vstack([params] + [params + np.diag(step)[k] for k in range(4)])
        result = optimize.minimize(
            fit.chi_squared,
            params,
            args=(used,),
            method="Nelder-Mead",
            options={"initial_simplex": simplex, "maxfev": settings.max_evaluations, "xatol": 1e-3, "fatol": 0.5},
        )
        params = result.x
        intensities, _, basis = fit.solve(params, used)
        model = np.tensordot(intensities, basis, axes=1)
        arcs = (fit.image - model) > settings.clip_sigma * fit.noise
        if settings.clip_dilate:
            arcs = ndimage.binary_dilation(arcs, iterations=settings.clip_dilate)
        used = finite & ~arcs
        step = step / 2.0
    intensities, chi2, basis = fit.solve(params, used)
    model = np.tensordot(intensities, basis, axes=1)
    # S/N of the model over the pixels where it exceeds the noise (the galaxy, not the whole stamp)
    bright = finite & (model > fit.noise)
    snr = float(model[bright].sum() / np.sqrt((fit.noise[bright] ** 2).sum())) if bright.any() else 0.0
    found, notes = snr >= settings.min_snr, []
    if not found:
        notes.append(f"no lens light found (model S/N {snr:.1f} < {settings.min_snr:g})")
    elif at_edge(params, settings.search_radius):
        found = False  # a faint, extended galaxy's MGE drawn onto an arc: subtracting it would remove the arc
        notes.append(
            f"no lens light found: the MGE (S/N {snr:.0f}) ran to the edge of its search, "
            f'{math.hypot(*params[:2]):.2f}" from the stamp centre (search_radius {settings.search_radius:g}"): '
            "an arc, not the lens galaxy; nothing subtracted"
        )
    return LensLight(
        centre=(float(params[0]), float(params[1])),
        axis_ratio=float(params[2]),
        angle=float(params[3] % 180.0),
        sigmas=fit.sigmas,
        intensities=intensities,
        image=model if found else np.zeros_like(model),
        clipped=~used & finite,
        snr=snr,
        chi_squared_per_pixel=float(chi2 / max(used.sum(), 1)),
        evaluations=fit.evaluations,
        seconds=time.perf_counter() - start,
        found=bool(found),
        notes=notes,
    )


def at_edge(params, search_radius, fraction=0.9):
    """Whether the fit's centre sits at the edge of the search: held there by an arc, not by a galaxy's core."""
    return math.hypot(params[0], params[1]) > fraction * search_radius


def linear_gaussians(shapes):
    """PyAutoLens linear Gaussians of `LensLight.shapes()`: fixed shapes, amplitudes left to an inversion."""
    import autolens as al

    return [
        al.lp_linear.Gaussian(
            centre=(float(y), float(x)),
            ell_comps=al.convert.ell_comps_from(axis_ratio=float(q), angle=float(angle)),
            sigma=float(sigma),
        )
        for y, x, q, angle, sigma in np.asarray(shapes, float)
    ]


def light_image(shapes, intensities, shape, psf_kernel, pixel_scale, over_sample=3):
    """The PSF-convolved image over the whole stamp of Gaussians `shapes` (`LensLight.shapes()`) at `intensities`."""
    shapes = np.asarray(shapes, float)
    grid = pixel_grid(shape, pixel_scale, over_sample)
    image = np.zeros(shape)
    for (y, x, q, angle, sigma), intensity in zip(shapes, intensities):
        unit = binned(gaussian_images(grid, (y, x), q, angle, [sigma]), over_sample)[0]
        image += intensity * unit
    psf = np.asarray(psf_kernel, float) / np.sum(psf_kernel)
    return signal.fftconvolve(image, psf, mode="same")
