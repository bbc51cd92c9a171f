"""Semi-linear inversion of a masked lens image for a fixed SIE (M21 section 2).

`MaskedLens` prepares everything that does not depend on the mass model once:
the masked PyAutoLens dataset with 4x4 sub-pixels, its numba sparse PSF operator
(~7x faster per inversion than the default path) and the magnification-adapted
source mesh, an image-plane `Overlay` grid traced to a Delaunay source mesh (the
modern form of M21's magnification Voronoi grid). Each `fit` then costs one
linear solve.

Regularisation: constant, with the coefficient chosen by maximising the
Bayesian evidence (a bounded 1-D search in log10 coefficient). A fixed
coefficient is not safe: 1.0 is far too strong for bright Euclid sources and
makes the evidence jagged in theta_E.

The linear solve is the plain (not positivity-constrained) inversion of the
papers (`use_positive_only_solver=False`).
"""

from dataclasses import dataclass

import autolens as al
import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.ndimage import gaussian_filter
from scipy.optimize import minimize_scalar

from hybridlens.reconstruction import delaunay
from hybridlens.simulation import lenses

REDSHIFTS = (0.5, 1.0)
# Source meshes (the inversion settings' `mesh`, delaunay unless a benchmark sets it). delaunay: M21's magnification-adapted mesh, an
# image-plane Overlay grid traced to the source plane; its triangulation changes topology as
# the mass moves, so ln Z jumps by tens within 0.1 % of theta_E. rectangular: a source-plane
# rectangle whose pixels follow the traced grid's density (also magnification-adapted) with
# bilinear interpolation, so ln Z moves smoothly with the mass. Its pixels where no data map
# float with the regularisation, so a rasterised source is not flux-true: a benchmark lever
# (benchmarks/fit_cost.py), not a config choice (docs/m21.md).
MESHES = {
    "delaunay": lambda lens: delaunay.ConstantDelaunay(pixels=len(lens.mesh_grid)),
    "rectangular": lambda lens: al.mesh.RectangularBilinearAdaptDensity(shape=lens.mesh_shape),
}
DEFAULT_MESH = "delaunay"
# The lens galaxy's light is fitted on the annulus only, where its profile is smooth on a pixel's
# scale (its core is masked): one sample per pixel; 4x4 doubled an inversion's cost. Without lens
# light no light profile is evaluated, but PyAutoLens still traces the light profiles' grid on every
# fit: one sample per pixel there too (the evidence is identical, an inversion ~5 % cheaper).
LENS_LIGHT_OVER_SAMPLE = 1


@dataclass(frozen=True)
class Mass:
    """SIE parameters (PyAutoLens conventions: arcsec, degrees)."""

    einstein_radius: float
    axis_ratio: float
    angle: float
    centre: tuple = (0.0, 0.0)

    @classmethod
    def from_truth(cls, truth):
        """The true SIE of a simulated lens from its stored parameters (a dict or a table row)."""
        get = truth.get if isinstance(truth, dict) else lambda key: getattr(truth, key)
        return cls(
            float(get("einstein_radius")),
            float(get("axis_ratio")),
            float(get("angle")),
            (float(get("lens_centre_y")), float(get("lens_centre_x"))),
        )

    @classmethod
    def from_parameters(cls, values, prefix=""):
        """The SIE in a fit's parameters: `values[prefix + name]` for theta_E, q, phi, centre_y, centre_x."""
        get = lambda name: float(values[f"{prefix}{name}"])
        return cls(get("einstein_radius"), get("axis_ratio"), get("angle"), (get("centre_y"), get("centre_x")))

    def with_einstein_radius(self, value):
        return Mass(float(value), self.axis_ratio, self.angle, self.centre)


@dataclass
class Products:
    """What one inversion hands to the CNN and to the figures."""

    log_evidence: float
    coefficient: float
    source: np.ndarray  # rasterised reconstruction (e-/s per image pixel area)
    residual: np.ndarray  # data - model, image plane, zero outside the mask
    chi_squared_map: np.ndarray
    chi_squared: float
    source_extent: float  # half-width of the source raster, arcsec
    signal_to_noise: np.ndarray = None  # `signal_to_noise_map` of the data: where the arcs are
    critical_curve: np.ndarray = None  # `critical_curve_map` of the model: where its Einstein ring is


class MaskedLens:
    """One masked lens image, ready for repeated inversions."""

    def __init__(self, image, noise_map, mask, psf_kernel, pixel_scale, settings, lens_light=None, source_image=None):
        """`lens_light`: PyAutoLens linear light profiles of the lens galaxy (fixed shapes, amplitudes
        solved with the source pixels in one linear inversion); None: the image holds no lens light.
        `source_image`: the lensed source alone (the image less its lens light), which a brightness
        mesh follows; None: the image."""
        self.lens_light = None if not lens_light else al.lp_basis.Basis(profile_list=list(lens_light))
        self.pixel_scale = float(pixel_scale)
        self.settings = settings
        mask2d = al.Mask2D(mask=~np.asarray(mask, dtype=bool), pixel_scales=self.pixel_scale)
        over_sample = over_sample_sizes(image, noise_map, settings, self.pixel_scale)
        dataset = al.Imaging(
            data=al.Array2D.no_mask(np.asarray(image, dtype=float), pixel_scales=self.pixel_scale),
            noise_map=al.Array2D.no_mask(np.asarray(noise_map, dtype=float), pixel_scales=self.pixel_scale),
            psf=al.Convolver(kernel=al.Array2D.no_mask(np.asarray(psf_kernel), pixel_scales=self.pixel_scale)),
            over_sample_size_lp=LENS_LIGHT_OVER_SAMPLE,
            over_sample_size_pixelization=over_sample,
        )
        self.mask = np.asarray(mask, dtype=bool)
        self.signal_to_noise = signal_to_noise_map(image if source_image is None else source_image, noise_map, mask)
        self.dataset = dataset.apply_mask(mask2d).apply_sparse_operator_cpu()
        shape = tuple(settings["overlay_shape"])
        self.mesh_kind = settings.get("mesh", DEFAULT_MESH)
        if self.mesh_kind not in MESHES:
            raise ValueError(f"inversion.mesh: {self.mesh_kind!r} is none of {sorted(MESHES)}")
        # delaunay: an image-plane grid traced to the source plane; rectangular: no image-plane grid
        self.mesh_grid = (
            image_plane_mesh_grid(image if source_image is None else source_image, mask2d, settings)
            if self.mesh_kind == "delaunay"
            else None
        )
        self.mesh_shape = shape
        self.solver = al.Settings(use_positive_only_solver=settings["positive_only"])
        # the evidence without PyAutoLens' per-call objects, where its shortcut holds (delaunay.Evidence)
        fast = self.mesh_kind == "delaunay" and self.lens_light is None and not settings["positive_only"]
        self.evidence = delaunay.Evidence(self.dataset, self.mesh_grid) if fast else None

    @classmethod
    def from_lens(cls, lens, settings):
        """A lens as `io.read_lens` returns it, with its survey's PSF and pixel scale."""
        from hybridlens.simulation.survey import Survey

        survey = Survey.from_settings(lens["survey"])
        return cls(lens["image"], lens["noise_map"], lens["mask"], survey.psf_kernel(), survey.pixel_scale, settings)

    def mesh(self):
        """The source mesh PyAutoLens inverts on (`MESHES`)."""
        return MESHES[self.mesh_kind](self)

    @property
    def n_source_pixels(self):
        return len(self.mesh_grid) if self.mesh_grid is not None else int(np.prod(self.mesh_shape))

    @staticmethod
    def profile(mass):
        """The PyAutoLens SIE of `mass`."""
        return lenses.mass_profile("sie", mass.centre, mass.einstein_radius, mass.axis_ratio, mass.angle)

    def fit(self, mass, coefficient):
        """PyAutoLens fit of the SIE `mass` with a pixelised source."""
        profile = self.profile(mass)
        pixelization = al.Pixelization(mesh=self.mesh(), regularization=delaunay.Constant(coefficient=coefficient))
        source = al.Galaxy(redshift=REDSHIFTS[1], pixelization=pixelization)
        light = {} if self.lens_light is None else {"bulge": self.lens_light}
        tracer = al.Tracer(galaxies=[al.Galaxy(redshift=REDSHIFTS[0], mass=profile, **light), source])
        adapt = None
        if self.mesh_grid is not None:
            adapt = al.AdaptImages(galaxy_image_plane_mesh_grid_dict={source: self.mesh_grid})
        return al.FitImaging(dataset=self.dataset, tracer=tracer, adapt_images=adapt, settings=self.solver)

    def log_evidence(self, mass, coefficient):
        """Log evidence, or -inf where the inversion is singular (e.g. a degenerate mesh)."""
        try:
            if self.evidence is not None:
                value = float(self.evidence(self.profile(mass), coefficient))
            else:
                value = float(self.fit(mass, coefficient).log_evidence)
        except (np.linalg.LinAlgError, ValueError, al.exc.InversionException):
            return -np.inf
        return value if np.isfinite(value) else -np.inf

    def best_coefficient(self, mass, evidence=None):
        """Evidence-maximising regularisation coefficient for `mass` and its evidence.

        `evidence(mass, coefficient)`: `log_evidence` or a wrapper of it (e.g. one counting calls).
        """
        evidence = evidence or self.log_evidence
        low, high = self.settings["log10_coefficient_range"]
        result = minimize_scalar(
            lambda log_c: -evidence(mass, 10.0**log_c),
            bounds=(low, high),
            method="bounded",
            options={"xatol": self.settings["log10_coefficient_tolerance"]},
        )
        return float(10.0**result.x), float(-result.fun)

    def source_mesh(self, mass, coefficient, fit=None):
        """(points (n, 2) as (y, x) arcsec, values) of the source's Delaunay mesh through `mass`.

        The mapper's own share of the solution: with lens light its amplitudes are solved too.
        """
        fit = fit or self.fit(mass, coefficient)
        mapper = next(obj for obj in fit.inversion.linear_obj_list if hasattr(obj, "source_plane_mesh_grid"))
        return np.asarray(mapper.source_plane_mesh_grid), np.asarray(fit.inversion.reconstruction_dict[mapper])

    def lens_light_intensities(self, mass, coefficient, fit=None):
        """The lens light's amplitudes solved in the inversion, in its basis' order (None without light)."""
        if self.lens_light is None:
            return None
        solved = (fit or self.fit(mass, coefficient)).linear_light_profile_intensity_dict
        return np.array([float(solved[profile]) for profile in self.lens_light.profile_list])

    def products(self, mass, coefficient, source_shape, source_extent):
        """Evidence, rasterised source, residual and chi-squared maps of one inversion."""
        fit = self.fit(mass, coefficient)
        points, values = self.source_mesh(mass, coefficient, fit)
        source = rasterise(points, values, source_shape, source_extent, mass.centre)
        return Products(
            log_evidence=float(fit.log_evidence),
            coefficient=float(coefficient),
            source=source,
            residual=np.where(self.mask, np.asarray(fit.residual_map.native), 0.0),
            chi_squared_map=np.where(self.mask, np.asarray(fit.chi_squared_map.native), 0.0),
            chi_squared=float(fit.chi_squared),
            source_extent=float(source_extent),
            signal_to_noise=self.signal_to_noise,
            critical_curve=critical_curve_map(self.profile(mass), self.mask.shape, self.pixel_scale),
        )


CRITICAL_CURVE_CLIP = 3.0  # the map's range, in octaves of 2 kappa


def signal_to_noise_map(image, noise_map, mask):
    """asinh(data / noise) inside the mask, 0 outside: the arcs on the noise-scaled residual's scale."""
    return np.where(mask, np.arcsinh(np.asarray(image, float) / np.asarray(noise_map, float)), 0.0)


def critical_curve_map(profile, shape, pixel_scale, clip=CRITICAL_CURVE_CLIP):
    """log2(2 kappa) of a mass profile on the image's pixel grid, clipped to +-`clip`.

    Zero on an isothermal lens's tangential critical curve (there kappa = gamma = 1/2),
    positive inside it, negative outside. Beside the data it shows the classifier whether
    a model's Einstein ring runs through the arcs, which its reconstruction and residual
    hide when a wrong model fits the data as well as the truth (docs/m21.md).
    """
    grid = al.Grid2D.uniform(shape_native=tuple(shape), pixel_scales=pixel_scale)
    kappa = np.asarray(profile.convergence_2d_from(grid=grid).native).reshape(shape)
    return np.clip(np.log2(np.clip(2.0 * kappa, 2.0**-clip, None)), -clip, clip)


def image_plane_mesh_grid(image, mask2d, settings):
    """The image-plane points traced to the source plane as the Delaunay mesh's vertices.

    overlay (M21): a uniform `overlay_shape` grid, so source pixels follow the
    magnification alone; a bright compact source then gets as few pixels as the
    empty sky beside it, and a demagnified model can out-score the truth.
    brightness: as many points (or `brightness_mesh.pixels`), placed by
    PyAutoLens' weighted KMeans on the smoothed data, denser where the arcs are
    bright (SLaM's adapt-image meshes, with the data standing in for a model
    image: it needs no earlier fit, and every model of the lens shares the mesh).
    """
    overlay = lambda: al.image_mesh.Overlay(shape=tuple(settings["overlay_shape"])).image_plane_mesh_grid_from(
        mask=mask2d
    )
    kind = settings.get("image_mesh", "overlay")
    if kind == "overlay":
        return overlay()
    if kind != "brightness":
        raise ValueError(f"inversion.image_mesh: {kind!r} is none of ['brightness', 'overlay']")
    spec = settings["brightness_mesh"]
    weights = brightness_weights(image, ~np.asarray(mask2d, dtype=bool), spec["smooth_pixels"])
    pixels = int(spec["pixels"] or len(overlay()))
    # KMeans exits the interpreter when asked for more centres than pixels
    pixels = min(pixels, len(weights) - 1)
    mesh = al.image_mesh.KMeans(pixels=pixels, weight_floor=spec["weight_floor"], weight_power=spec["weight_power"])
    return mesh.image_plane_mesh_grid_from(mask=mask2d, adapt_data=weights)


def brightness_weights(image, unmasked, smooth_pixels):
    """Smoothed, non-negative data on the unmasked pixels (slim order): the mesh's adapt image.

    Smoothed over the unmasked pixels only (normalised convolution), so the mask's
    edge is not darkened by the zeros beyond it.
    """
    data = np.where(unmasked, np.asarray(image, dtype=float), 0.0)
    if smooth_pixels > 0:
        data = gaussian_filter(data, smooth_pixels) / np.maximum(gaussian_filter(unmasked * 1.0, smooth_pixels), 1e-12)
    return np.clip(data[unmasked], 0.0, None)


def over_sample_sizes(image, noise_map, settings, pixel_scale):
    """Sub-pixels per side for the pixelised source: `over_sample` on the arcs, fewer where the data is noise.

    Sub-pixels matter where the lensed source's brightness changes within a
    pixel, i.e. on the arcs; a pixel whose data is within
    `over_sample_faint_snr` sigma of zero is noise whatever the model does
    there, and `over_sample_faint` (a fraction of the cost: mapping sub-pixels
    to the source mesh is ~a third of an inversion) suffices. Without
    `over_sample_faint` every pixel gets `over_sample`.
    """
    faint = settings.get("over_sample_faint")
    if not faint:
        return settings["over_sample"]
    snr = np.abs(np.asarray(image, float)) / np.asarray(noise_map, float)
    sizes = np.where(snr > settings["over_sample_faint_snr"], settings["over_sample"], faint)
    return al.Array2D.no_mask(sizes.astype(int), pixel_scales=pixel_scale)


def raster_coordinates(shape, half_width, centre=(0.0, 0.0)):
    """(y, x) of the pixel centres of a square raster spanning +-half_width about `centre`."""
    pixel = 2.0 * half_width / np.asarray(shape)
    y = centre[0] + half_width - (np.arange(shape[0]) + 0.5) * pixel[0]
    x = centre[1] - half_width + (np.arange(shape[1]) + 0.5) * pixel[1]
    return np.meshgrid(y, x, indexing="ij")


def rasterise(points, values, shape, half_width, centre=(0.0, 0.0)):
    """Linear (Delaunay barycentric) interpolation of mesh `values` onto a square raster.

    Zero outside the mesh's convex hull: nothing was reconstructed there.
    """
    y, x = raster_coordinates(shape, half_width, centre)
    interpolator = LinearNDInterpolator(points[:, ::-1], values, fill_value=0.0)
    return interpolator(x, y)


def mesh_flux(points, values):
    """Exact integral of the piecewise-linear surface defined on the Delaunay mesh."""
    from scipy.spatial import Delaunay

    triangulation = Delaunay(points)
    corners = points[triangulation.simplices]
    area = 0.5 * np.abs(
        (corners[:, 1, 0] - corners[:, 0, 0]) * (corners[:, 2, 1] - corners[:, 0, 1])
        - (corners[:, 2, 0] - corners[:, 0, 0]) * (corners[:, 1, 1] - corners[:, 0, 1])
    )
    return float((area * values[triangulation.simplices].mean(axis=1)).sum())
