"""Simulated strong-lens images of both papers.

`slacs_image` follows Maresca, Dye & Li (2021) section 3.1: SLACS-fitted SIE
lenses at the stamp centre, Sersic sources, no lens light, sky + Poisson noise.
`training_image` follows Pearson et al. (2021) section 2.1: uniform SIE or
power-law lenses with lens light (subtracted, leaving its shot noise), three
source morphologies and detection cuts; rejected draws are redrawn and counted.

Every image draws from its own generator, SeedSequence(seed, spawn_key=
(dataset, index)), so an image does not depend on shard size, shard order or
core count.
"""

import zlib
from dataclasses import dataclass, field

import autolens as al
import numpy as np
from scipy.ndimage import map_coordinates
from scipy.signal import fftconvolve

from hybridlens.flags import SimulationFlag
from hybridlens.simulation import distributions as dist
from hybridlens.simulation import lenses, sources
from hybridlens.simulation.survey import NoiseModel, Survey, flux_scale

NOMINAL_REDSHIFTS = (0.5, 1.0)  # M21 quotes angles only; redshifts just order the planes

REJECTION_REASONS = (
    "not_multiply_imaged",
    "counter_image_unresolved",
    "low_magnification",
    "arc_unresolved",
    "low_snr",
)

PARAM_UNITS = {
    "lens_centre_y": "arcsec",
    "lens_centre_x": "arcsec",
    "einstein_radius": "arcsec (PyAutoLens major-axis convention)",
    "einstein_radius_intermediate": "arcsec (intermediate-axis convention of SLACS)",
    "axis_ratio": "",
    "angle": "deg",
    "slope": "",
    "z_lens": "",
    "z_source": "",
    "velocity_dispersion": "km/s",
    "lens_light_magnitude": "AB mag",
    "lens_light_intensity": "e-/s/pixel",
    "lens_light_effective_radius": "arcsec",
    "lens_light_sersic_index": "",
    "source_type": "0 Sersic, 1 Gaussian, 2 multi-Sersic",
    "source_centre_y": "arcsec",
    "source_centre_x": "arcsec",
    "source_magnitude": "AB mag",
    "source_flux": "e-/s",
    "source_half_light_radius": "arcsec",
    "magnification": "",
    "n_point_images": "",
    "image_separation": "arcsec",
    "snr": "",
    "n_attempts": "",
    "stamp": "index into the HDF stamps",
    "stamp_pixel_scale": "arcsec",
    "input_lens_centre_y": "arcsec",
    "input_lens_centre_x": "arcsec",
    "input_einstein_radius": "arcsec",
    "input_axis_ratio": "",
    "input_angle": "deg",
    "input_slope": "",
    "kappa_fit_residual": "",
    "circular_einstein_radius": "arcsec (mean enclosed convergence 1)",
    "n_halos": "",
    "n_subhalos": "",
    "is_double": "1 if the source centre has two images",
}

SOURCE_TYPES = ("sersic", "gaussian", "multi_sersic")


def image_rng(seed, dataset, index):
    """The generator of image `index` of `dataset`: independent of sharding."""
    key = (zlib.crc32(dataset.encode()), int(index))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class Renderer:
    """Grids and PSF of one survey, built once and reused for every image."""

    def __init__(self, survey, over_sample):
        self.survey = survey
        self.over_sample = over_sample
        self.psf = survey.psf_kernel()
        pad = self.psf.shape[0] - 1
        self.padded = al.Grid2D.uniform(
            shape_native=(survey.shape[0] + pad, survey.shape[1] + pad),
            pixel_scales=survey.pixel_scale,
            over_sample_size=over_sample,
        )
        self.inner = (slice(pad // 2, pad // 2 + survey.shape[0]), slice(pad // 2, pad // 2 + survey.shape[1]))
        self.fine = sources.fine_grid(survey)
        # Point images need only resolve the PSF: half-pixel triangles suffice.
        self.image_finding = sources.fine_grid(survey, refine=2)
        self.image_finding_native = np.asarray(self.image_finding.native)

    def unconvolved(self, light):
        """Padded, over-sampled-then-binned image of a tracer or galaxy (e-/s/pixel)."""
        return np.asarray(light.image_2d_from(grid=self.padded).native)

    def convolve(self, padded_image):
        """PSF-convolve a padded image down to the stamp shape."""
        return fftconvolve(padded_image, self.psf, mode="valid")

    def traced_image_finding_grid(self, lens):
        """The image-finding grid ray-traced to the source plane of `lens` (native (ny, nx, 2))."""
        tracer = al.Tracer(galaxies=[lens, al.Galaxy(redshift=lens.redshift + 1.0)])
        return np.asarray(tracer.traced_grid_2d_list_from(grid=self.image_finding)[-1].native)

    def point_images(self, traced, source_centre, min_magnification):
        return lenses.point_images(self.image_finding_native, traced, source_centre, min_magnification)

    def flux_and_half_light_radius(self, galaxy, centre):
        return sources.flux_and_half_light_radius(galaxy, self.fine, centre, self.survey.pixel_scale)

    def lensed_pixelised(self, lens, source, source_pixel_scale, centre):
        """Padded image of a pixelised source (flux per source pixel) behind `lens` (a galaxy or a tracer).

        Sub-pixel centres are ray-traced and the source surface brightness is
        interpolated bilinearly there, then averaged over each pixel's sub-pixels.
        """
        sub = self.over_sample
        shape = self.padded.shape_native
        step = self.survey.pixel_scale / sub
        ys = (shape[0] * sub - 1) / 2.0 - np.arange(shape[0] * sub)
        xs = np.arange(shape[1] * sub) - (shape[1] * sub - 1) / 2.0
        yy, xx = np.meshgrid(ys * step, xs * step, indexing="ij")
        points = np.column_stack([yy.ravel(), xx.ravel()])
        if isinstance(lens, al.Tracer):  # multi-plane: the last plane's positions
            beta = np.asarray(lens.traced_grid_2d_list_from(grid=al.Grid2DIrregular(points))[-1])
        else:
            beta = points - np.asarray(lens.deflections_yx_2d_from(grid=al.Grid2DIrregular(points)))
        n = source.shape[0]
        rows = (n - 1) / 2.0 - (beta[:, 0] - centre[0]) / source_pixel_scale
        cols = (beta[:, 1] - centre[1]) / source_pixel_scale + (source.shape[1] - 1) / 2.0
        brightness = map_coordinates(source, [rows, cols], order=1, mode="constant", cval=0.0)
        per_pixel = brightness * (self.survey.pixel_scale / source_pixel_scale) ** 2
        return per_pixel.reshape(shape[0], sub, shape[1], sub).mean(axis=(1, 3))

    def stamp_flux(self, padded_image):
        return float(padded_image[self.inner].sum())


@dataclass
class Simulated:
    """One simulated image with its noiseless model, noise map, truths and flags."""

    image: np.ndarray
    noise_map: np.ndarray
    model_image: np.ndarray
    params: dict
    components: list
    flags: int = 0
    rejections: dict = field(default_factory=dict)


def slacs_lens(rng, settings, renderer):
    """M21 lens (SIE at the centre) and a source centre inside theta_E.

    M21 places the source "inside the Einstein radius (i.e. that there are
    multiple images)"; for an elliptical lens the two differ near theta_E, so
    with `require_multiple_images` the centre is redrawn until it is.
    Returns (lens galaxy, params, source centre, number of draws, flags).
    """
    lens_cfg = settings["lens"]
    theta_slacs = dist.truncated_normal(rng, lens_cfg["einstein_radius"])  # SLACS: intermediate axis
    q = dist.truncated_normal(rng, lens_cfg["axis_ratio"])
    theta_e = lenses.major_axis_einstein_radius(theta_slacs, q)
    angle = rng.uniform(0.0, 180.0)
    lens = al.Galaxy(redshift=NOMINAL_REDSHIFTS[0], mass=lenses.mass_profile("sie", (0.0, 0.0), theta_e, q, angle))
    traced = None
    for attempt in range(1, settings["max_attempts"] + 1):
        sy, sx = dist.uniform_disc(rng, theta_e)
        if not settings["require_multiple_images"]:
            break
        if traced is None:
            traced = renderer.traced_image_finding_grid(lens)
        _, mus = renderer.point_images(traced, (sy, sx), settings["min_image_magnification"])
        if len(mus) >= 2:
            break
    flags = SimulationFlag.SINGLY_IMAGED if settings["require_multiple_images"] and len(mus) < 2 else 0
    params = {
        "lens_centre_y": 0.0,
        "lens_centre_x": 0.0,
        "einstein_radius": theta_e,
        "einstein_radius_intermediate": theta_slacs,
        "axis_ratio": q,
        "angle": angle,
        "source_centre_y": sy,
        "source_centre_x": sx,
        "n_attempts": attempt,
    }
    return lens, params, (sy, sx), flags


def slacs_image(rng, settings, renderer, reference):
    """One M21 section 3.1 lens: SIE at the centre, Sersic source inside theta_E."""
    survey = renderer.survey
    src_cfg = settings["source"]
    lens, params, centre, flags = slacs_lens(rng, settings, renderer)
    row = sources.component(
        sources.SERSIC,
        centre,
        axis_ratio=dist.uniform(rng, src_cfg["axis_ratio"]),
        angle=rng.uniform(0.0, 180.0),
        intensity=dist.uniform(rng, src_cfg["intensity"]) * flux_scale(survey, reference),
        effective_radius=dist.truncated_exponential(rng, src_cfg["effective_radius"]),
        sersic_index=dist.truncated_emg(rng, src_cfg["sersic_index"]),
    )
    tracer = al.Tracer(galaxies=[lens, sources.galaxy([row], NOMINAL_REDSHIFTS[1])])
    model = renderer.convolve(renderer.unconvolved(tracer))
    image, noise_map = NoiseModel(**settings["noise"]).realise(rng, survey, model)
    return Simulated(image, noise_map, model, params, [row], flags)


# Total flux of a round exponential (n = 1) profile in units of I(R_eff) R_eff^2.
EXPONENTIAL_FLUX = 2.0 * np.pi * np.exp(1.67835) / 1.67835**2


def hudf_image(rng, settings, renderer, reference, stamps):
    """An M21 lens of a real-morphology HDF galaxy (M21 section 3.3).

    The unit-flux stamp (randomly flipped and turned) is scaled so that its
    half-light radius is an M21 effective radius, and given the flux of an
    exponential source with an M21 intensity; it is ray-traced through the SIE
    on the sub-pixel grid and interpolated bilinearly.
    """
    survey = renderer.survey
    src_cfg = settings["source"]
    lens, params, centre, flags = slacs_lens(rng, settings, renderer)
    pick = int(rng.integers(len(stamps["stamps"])))
    stamp = np.rot90(stamps["stamps"][pick], int(rng.integers(4)))
    stamp = stamp[:, ::-1] if rng.uniform() < 0.5 else stamp
    radius = dist.truncated_exponential(rng, src_cfg["effective_radius"])
    scale = radius / stamps["half_light_radius"][pick]  # arcsec per stamp pixel
    intensity = dist.uniform(rng, src_cfg["intensity"]) * flux_scale(survey, reference)
    flux = EXPONENTIAL_FLUX * intensity * (radius / survey.pixel_scale) ** 2
    model = renderer.convolve(renderer.lensed_pixelised(lens, stamp * flux, scale, centre))
    image, noise_map = NoiseModel(**settings["noise"]).realise(rng, survey, model)
    params.update({"stamp": pick, "stamp_pixel_scale": scale, "source_half_light_radius": radius, "source_flux": flux})
    return Simulated(image, noise_map, model, params, [], flags)


def _training_source(rng, src_cfg, survey, centre):
    """Components of one P21 source (type drawn by `fractions`) and its type index."""
    fractions = np.array([src_cfg["fractions"][name] for name in SOURCE_TYPES], dtype=float)
    source_type = int(rng.choice(3, p=fractions / fractions.sum()))

    def sersic(c, effective_radius=None):
        return sources.component(
            sources.SERSIC,
            c,
            axis_ratio=dist.uniform(rng, src_cfg["axis_ratio"]),
            angle=rng.uniform(0.0, 180.0),
            intensity=1.0,
            effective_radius=effective_radius or dist.uniform(rng, src_cfg["effective_radius"]),
            sersic_index=dist.uniform(rng, src_cfg["sersic_index"]),
        )

    if source_type == 0:
        rows = [sersic(centre)]
    elif source_type == 1:
        rows = [
            sources.component(
                sources.GAUSSIAN,
                centre,
                axis_ratio=dist.uniform(rng, src_cfg["axis_ratio"]),
                angle=rng.uniform(0.0, 180.0),
                intensity=1.0,
                sigma=dist.uniform(rng, src_cfg["gaussian_sigma"]),
            )
        ]
    else:
        multi = src_cfg["multi_sersic"]
        n = int(rng.integers(multi["n_components"]["min"], multi["n_components"]["max"] + 1))
        rows = [sersic(centre)]
        spread = multi["offset_over_effective_radius"] * rows[0]["effective_radius"]
        for _ in range(n - 1):
            rows.append(sersic((centre[0] + rng.normal(0.0, spread), centre[1] + rng.normal(0.0, spread))))
    return rows, source_type


def _normalise(rows, weights, total_flux, renderer, redshift):
    """Scale unit-intensity components so their fluxes are `weights` x `total_flux`."""
    for row, weight in zip(rows, weights):
        unit_flux, _ = renderer.flux_and_half_light_radius(sources.galaxy([row], redshift), (0.0, 0.0))
        row["intensity"] = weight * total_flux / unit_flux
    return rows


@dataclass
class TrainingDraw:
    """One candidate P21 training lens as drawn, before the cuts: unit-intensity light components.

    Both simulators (PyAutoLens' and the batched one) draw through `draw_training`,
    so the same generator gives the same candidates in the same order.
    """

    theta_e: float
    axis_ratio: float
    angle: float
    slope: float
    centre: tuple
    z_lens: float
    z_source: float
    source_centre: tuple
    rows: list  # source components, intensity 1
    source_type: int
    weights: np.ndarray  # each component's share of the source flux
    source_magnitude: float
    light_magnitude: float
    light_row: dict  # the lens galaxy's Sersic, intensity 1


def draw_training(rng, settings, survey, mass_model):
    """Draw one P21 section 2.1 candidate (lens, lens light, source) from `rng`."""
    lens_cfg, src_cfg = settings["lens"], settings["source"]
    theta_e = dist.uniform(rng, lens_cfg["einstein_radius"])
    q = dist.uniform(rng, lens_cfg["axis_ratio"])
    angle = rng.uniform(0.0, 180.0)
    slope = dist.uniform(rng, lens_cfg["slope"]) if mass_model == "power_law" else 2.0
    centre = rng.normal(0.0, lens_cfg["centre_sd_pixels"] * survey.pixel_scale, 2)
    z_lens = dist.uniform(rng, lens_cfg["redshift"])
    z_source = rng.uniform(z_lens, src_cfg["redshift_max"])
    sy, sx = dist.uniform_disc(rng, theta_e)
    source_centre = (centre[0] + sy, centre[1] + sx)
    rows, source_type = _training_source(rng, src_cfg, survey, source_centre)
    weights = rng.dirichlet(np.ones(len(rows)))
    source_magnitude = dist.uniform(rng, src_cfg["magnitude"])
    light_cfg = lens_cfg["light"]
    light_magnitude = dist.uniform(rng, light_cfg["magnitude"])
    light_row = sources.component(
        sources.SERSIC,
        centre,
        axis_ratio=q,
        angle=angle,
        intensity=1.0,
        effective_radius=theta_e * dist.uniform(rng, light_cfg["effective_radius_over_einstein_radius"]),
        sersic_index=dist.uniform(rng, light_cfg["sersic_index"]),
    )
    return TrainingDraw(
        theta_e,
        q,
        angle,
        slope,
        (float(centre[0]), float(centre[1])),
        z_lens,
        z_source,
        source_centre,
        rows,
        source_type,
        weights,
        source_magnitude,
        light_magnitude,
        light_row,
    )


def training_image(rng, settings, renderer, mass_model):
    """One P21 section 2.1 training image through PyAutoLens; redraws until the detection cuts pass.

    The reference for `batched.training_images`, which makes the same images tens of times faster.
    """
    survey = renderer.survey
    cuts = settings["detection"]
    noise = NoiseModel(**settings["noise"])
    rejections = dict.fromkeys(REJECTION_REASONS, 0)
    for attempt in range(1, settings["max_attempts"] + 1):
        draw = draw_training(rng, settings, survey, mass_model)
        theta_e, q, angle, slope, centre = draw.theta_e, draw.axis_ratio, draw.angle, draw.slope, draw.centre
        z_lens, z_source, source_centre = draw.z_lens, draw.z_source, draw.source_centre
        rows, weights = [dict(row) for row in draw.rows], draw.weights
        source_magnitude, light_magnitude, light_row = draw.source_magnitude, draw.light_magnitude, dict(draw.light_row)

        mass = lenses.mass_profile(mass_model, centre, theta_e, q, angle, slope)
        traced = renderer.traced_image_finding_grid(al.Galaxy(redshift=z_lens, mass=mass))
        positions, mus = renderer.point_images(traced, source_centre, cuts["min_image_magnification"])
        if len(mus) < 2:
            rejections["not_multiply_imaged"] += 1
            continue
        separation = float(np.hypot(*(positions[0] - positions[1])))
        if separation <= survey.psf_fwhm:
            rejections["counter_image_unresolved"] += 1
            continue

        flux = survey.counts_per_second(source_magnitude)  # total, as an AB magnitude is
        rows = sources.normalised(rows, weights, flux, survey.pixel_scale)
        source = sources.galaxy(rows, z_source)
        half_light = sources.half_light_radius(rows, source_centre)
        lensed = renderer.unconvolved(al.Tracer(galaxies=[al.Galaxy(redshift=z_lens, mass=mass), source]))
        magnification = renderer.stamp_flux(lensed) / flux
        reason = resolution_rejection(survey.psf_fwhm, cuts["min_magnification"], separation, magnification, half_light)
        if reason is not None:
            rejections[reason] += 1
            continue

        (light_row,) = sources.normalised(
            [light_row], [1.0], survey.counts_per_second(light_magnitude), survey.pixel_scale
        )
        model = renderer.convolve(lensed)
        lens_light = renderer.convolve(renderer.unconvolved(sources.galaxy([light_row], z_lens)))
        noise_map = np.sqrt(noise.variance(survey, model + lens_light))
        snr = integrated_snr(model, noise_map)
        if snr <= cuts["min_snr"]:
            rejections["low_snr"] += 1
            continue

        image, noise_map = noise.realise(rng, survey, model + lens_light)
        params = training_params(draw, light_row, flux, half_light, magnification, (separation, len(mus)), snr)
        params["n_attempts"] = attempt
        return Simulated(image - lens_light, noise_map, model, params, rows, 0, rejections)
    blank = np.full(survey.shape, np.nan)
    return Simulated(
        blank, blank, blank, {"n_attempts": settings["max_attempts"]}, [], SimulationFlag.NO_ACCEPTED_DRAW, rejections
    )


def training_params(draw, light_row, flux, half_light, magnification, images, snr):
    """The parameter row of an accepted training image, as both simulators store it."""
    separation, n_images = images
    return {
        "lens_centre_y": draw.centre[0],
        "lens_centre_x": draw.centre[1],
        "einstein_radius": draw.theta_e,
        "axis_ratio": draw.axis_ratio,
        "angle": draw.angle,
        "slope": draw.slope,
        "z_lens": draw.z_lens,
        "z_source": draw.z_source,
        "velocity_dispersion": lenses.velocity_dispersion(draw.theta_e, draw.z_lens, draw.z_source),
        "lens_light_magnitude": draw.light_magnitude,
        "lens_light_intensity": light_row["intensity"],
        "lens_light_effective_radius": light_row["effective_radius"],
        "lens_light_sersic_index": light_row["sersic_index"],
        "source_type": draw.source_type,
        "source_centre_y": draw.source_centre[0],
        "source_centre_x": draw.source_centre[1],
        "source_magnitude": draw.source_magnitude,
        "source_flux": flux,
        "source_half_light_radius": half_light,
        "magnification": magnification,
        "n_point_images": n_images,
        "image_separation": separation,
        "snr": snr,
    }


def resolution_rejection(seeing, min_magnification, separation, magnification, half_light_radius):
    """P21 section 2.1's strong-lens cuts on a multiply imaged source: the failed one, or None.

    The counter image must be resolved (separation > seeing), the source magnified
    (total magnification > `min_magnification`) and tangentially stretched beyond
    the seeing (magnification x half-light radius > seeing).
    """
    if separation <= seeing:
        return "counter_image_unresolved"
    if magnification <= min_magnification:
        return "low_magnification"
    if magnification * half_light_radius <= seeing:
        return "arc_unresolved"
    return None


def integrated_snr(model, noise_map):
    """SNR of the lensed source summed over pixels where it exceeds the 1-sigma noise."""
    bright = model > noise_map
    if not bright.any():
        return 0.0
    return float(model[bright].sum() / np.sqrt((noise_map[bright] ** 2).sum()))


def simulate_shard(
    kind, settings, survey_settings, reference_settings, seed, dataset, indices, mass_model=None, stamps=None
):
    """Simulate images `indices` of `dataset`; returns arrays, params and statistics.

    `kind` is `slacs` (M21), `hudf` (M21 with real-morphology `stamps`) or
    `training` (P21, needs `mass_model`).
    """
    survey = Survey.from_settings(survey_settings)
    if kind == "training":  # batched: the same images as `training_image`, tens of times faster
        from hybridlens.simulation import batched

        renderer = batched.BatchRenderer.for_survey(survey, settings["over_sample"])
        rngs = [image_rng(seed, dataset, index) for index in indices]
        return collate(batched.training_images(rngs, settings, renderer, mass_model), indices)
    renderer = Renderer(survey, settings["over_sample"])
    reference = Survey.from_settings(reference_settings)
    results = []
    for index in indices:
        rng = image_rng(seed, dataset, index)
        if kind == "slacs":
            results.append(slacs_image(rng, settings, renderer, reference))
        else:
            results.append(hudf_image(rng, settings, renderer, reference, stamps))
    return collate(results, indices)


def collate(results, indices):
    """Stack per-image results into the arrays and 1-D parameter columns of a shard."""
    n = len(results)
    arrays = {
        name: np.stack([getattr(r, name) for r in results]).astype(np.float32)
        for name in ("image", "noise_map", "model_image")
    }
    names = [name for name in PARAM_UNITS if any(name in r.params for r in results)]
    params = {name: np.array([r.params.get(name, np.nan) for r in results], dtype=float) for name in names}
    width = max(1, max(len(r.components) for r in results))
    components = {name: np.full((n, width), np.nan) for name in sources.COMPONENT_FIELDS}
    for i, r in enumerate(results):
        for j, row in enumerate(r.components):
            for name in sources.COMPONENT_FIELDS:
                components[name][i, j] = row[name]
    rejections = {reason: int(sum(r.rejections.get(reason, 0) for r in results)) for reason in REJECTION_REASONS}
    return {
        "arrays": arrays,
        "params": params,
        "components": components,
        "flags": np.array([r.flags for r in results], dtype=np.uint8),
        "index": np.asarray(indices, dtype=np.int64),
        "rejections": rejections,
    }
