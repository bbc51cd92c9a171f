"""P21 training images in batches: PyAutoLens' images at ray-tracing speed, on a CPU or a GPU.

`simulate.training_image` renders one candidate at a time through PyAutoLens
(~0.5 s per accepted image). Here every image in flight draws its next candidate
from its own generator through the same `simulate.draw_training`, and the
candidates are judged together, cheapest cut first:

1. multiple imaging and the counter image's separation, by triangle mapping on
   the same half-pixel grid as `training_image` (`raytrace.point_images`);
2. magnification and arc size, after rendering the lensed source with
   over-sampling only where it is bright (PyAutoLens over-samples every pixel);
3. the integrated S/N, after the PSF (an FFT over the batch) and the lens light.

An accepted image draws its noise from its generator exactly as
`training_image` does, so both paths make the same images from the same seed,
to the precision of the rendering (tests/test_simulation_batched.py).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hybridlens.flags import SimulationFlag
from hybridlens.simulation import raytrace, sources
from hybridlens.simulation.simulate import (
    REJECTION_REASONS,
    Simulated,
    draw_training,
    integrated_snr,
    resolution_rejection,
    training_params,
)
from hybridlens.simulation.survey import NoiseModel

BRIGHT_FRACTION = 1e-3  # pixels brighter than this x the image's peak (and their neighbours) are over-sampled
LENS_LIGHT_CORE = 0.6  # arcsec: the lens light is over-sampled within this radius of its centre (its cusp)
POWER_LAW_Q_GROUPS = (0.5, 0.6, 0.7, 0.8)  # axis-ratio bins sharing one power-law series length
COMPONENT_FIELDS = ("centre_y", "centre_x", "axis_ratio", "angle", "intensity")


@dataclass(frozen=True)
class BatchRenderer:
    """A survey's grids and PSF as tensors, built once: the padded stamp and the image-finding grid."""

    survey: object
    over_sample: int
    padded_shape: tuple
    pixel_y: torch.Tensor  # (P,) pixel centres of the padded stamp
    pixel_x: torch.Tensor
    offset_y: torch.Tensor  # (s^2,) sub-pixel offsets from a pixel centre
    offset_x: torch.Tensor
    finding_y: torch.Tensor  # (ny, nx) the half-pixel grid of point-image finding
    finding_x: torch.Tensor
    psf: torch.Tensor
    inner: tuple

    @classmethod
    def for_survey(cls, survey, over_sample, device=None, dtype=torch.float32, finding_dtype=torch.float32):
        psf = survey.psf_kernel()
        pad = psf.shape[0] - 1
        padded = (survey.shape[0] + pad, survey.shape[1] + pad)
        pixel_y, pixel_x = raytrace.pixel_grid(padded, survey.pixel_scale, 1, dtype, device)
        sub_y, sub_x = raytrace.pixel_grid((1, 1), survey.pixel_scale, over_sample, dtype, device)
        finding = (survey.shape[0] * 2, survey.shape[1] * 2)
        finding_y, finding_x = raytrace.pixel_grid(finding, survey.pixel_scale / 2, 1, finding_dtype, device)
        inner = (slice(pad // 2, pad // 2 + survey.shape[0]), slice(pad // 2, pad // 2 + survey.shape[1]))
        return cls(
            survey,
            int(over_sample),
            padded,
            pixel_y,
            pixel_x,
            sub_y,
            sub_x,
            finding_y.reshape(finding),
            finding_x.reshape(finding),
            torch.as_tensor(psf, dtype=dtype, device=device),
            inner,
        )


def mass_parameters(draws):
    """(centre_y, centre_x, theta_E, q, angle, slope) as (B,) float64 arrays."""
    return np.array([[*d.centre, d.theta_e, d.axis_ratio, d.angle, d.slope] for d in draws], float).T


def deflections(y, x, mass_model, params):
    """Deflections of the batch's lenses at (B, N) or (N,) points; `params` from `mass_parameters` (rows per point)."""
    centre_y, centre_x, theta, q, angle, slope = params
    if mass_model == "sie":
        return raytrace.sie_deflections(y, x, centre_y, centre_x, theta, q, angle)
    # The power law's series needs more terms the flatter the lens, and a call sums as many as its
    # flattest lens needs: lenses of similar q go together.
    out_y, out_x = (y.new_empty(len(q), y.shape[-1]) for _ in range(2))
    group = torch.bucketize(q.contiguous(), torch.tensor(POWER_LAW_Q_GROUPS, dtype=q.dtype, device=q.device))
    for g in torch.unique(group):
        rows = torch.nonzero(group == g, as_tuple=True)[0]
        grid_y, grid_x = (y[rows], x[rows]) if y.dim() > 1 else (y, x)
        out_y[rows], out_x[rows] = raytrace.power_law_deflections(
            grid_y, grid_x, centre_y[rows], centre_x[rows], theta[rows], q[rows], angle[rows], slope[rows]
        )
    return out_y, out_x


@dataclass(frozen=True)
class ComponentTable:
    """Light components of a batch as (B, K) tensors, one per field; `kind` -1 marks an empty slot."""

    fields: dict

    @classmethod
    def from_rows(cls, tables, dtype, device=None):
        width = max(len(t) for t in tables)
        out = {name: np.zeros((len(tables), width)) for name in sources.COMPONENT_FIELDS}
        out["kind"][:] = -1
        for b, table in enumerate(tables):
            for k, row in enumerate(table):
                for name in sources.COMPONENT_FIELDS:
                    out[name][b, k] = row[name]
        return cls({name: torch.as_tensor(np.nan_to_num(v), dtype=dtype, device=device) for name, v in out.items()})

    def take(self, rows):
        return ComponentTable({name: value[rows] for name, value in self.fields.items()})


PROFILES = (
    (sources.SERSIC, raytrace.sersic, ("effective_radius", "sersic_index")),
    (sources.GAUSSIAN, raytrace.gaussian, ("sigma",)),
)


def light(y, x, table):
    """Summed surface brightness at (B, N) points of a `ComponentTable` of B rows."""
    out = torch.zeros_like(y)
    kinds = table.fields["kind"]
    for k in range(kinds.shape[1]):
        for kind, profile, extra in PROFILES:
            rows = torch.nonzero(kinds[:, k] == kind, as_tuple=True)[0]
            if len(rows) == 0:
                continue
            values = [table.fields[name][rows, k] for name in (*COMPONENT_FIELDS, *extra)]
            out[rows] += profile(y[rows], x[rows], *values)
    return out


def render(renderer, tables, deflect=None):
    """Padded, unconvolved images (B, Py, Px) of light `tables` (through `deflect(y, x, rows)` when lensed).

    Pixel centres first; then pixels brighter than BRIGHT_FRACTION of the peak,
    grown by one pixel, or within LENS_LIGHT_CORE of an unlensed profile's
    centre, are replaced by the mean over their s x s sub-pixels, as
    PyAutoLens' uniform over-sampling would give them.
    """
    n, shape = len(tables), renderer.padded_shape
    table = ComponentTable.from_rows(tables, renderer.pixel_y.dtype, renderer.pixel_y.device)
    y = renderer.pixel_y.expand(n, -1)
    x = renderer.pixel_x.expand(n, -1)
    image = light(*_traced(y, x, deflect, slice(None)), table)
    bright = image > BRIGHT_FRACTION * image.amax(dim=1, keepdim=True)
    bright = F.max_pool2d(bright.reshape(n, 1, *shape).to(image.dtype), 3, 1, 1).reshape(n, -1) > 0
    if deflect is None:
        centre_y, centre_x = table.fields["centre_y"][:, :1], table.fields["centre_x"][:, :1]
        bright &= torch.hypot(y - centre_y, x - centre_x) < LENS_LIGHT_CORE
    rows, pixels = torch.nonzero(bright, as_tuple=True)
    if len(rows):
        sub_y = renderer.pixel_y[pixels][:, None] + renderer.offset_y[None]
        sub_x = renderer.pixel_x[pixels][:, None] + renderer.offset_x[None]
        values = light(*_traced(sub_y, sub_x, deflect, rows), table.take(rows))
        image[rows, pixels] = values.mean(dim=1)
    return image.reshape(n, *shape)


def _traced(y, x, deflect, rows):
    if deflect is None:
        return y, x
    alpha_y, alpha_x = deflect(y, x, rows)
    return y - alpha_y, x - alpha_x


@dataclass
class Slot:
    """An image in flight: its generator, attempts so far and rejections per reason."""

    index: int
    rng: np.random.Generator
    attempts: int = 0
    rejections: dict = None
    result: Simulated = None


def training_images(rngs, settings, renderer, mass_model, batch_size=64):
    """P21 training images, one per generator in `rngs`, each as `simulate.training_image` makes it.

    Returns a list of `Simulated` in the order of `rngs`; an image whose every
    draw failed the cuts is flagged NO_ACCEPTED_DRAW with NaN arrays.
    """
    slots = [Slot(i, rng, 0, dict.fromkeys(REJECTION_REASONS, 0)) for i, rng in enumerate(rngs)]
    pending = list(slots)
    while pending:
        for start in range(0, len(pending), batch_size):
            _attempt(pending[start : start + batch_size], settings, renderer, mass_model)
        for slot in pending:
            if slot.result is None and slot.attempts >= settings["max_attempts"]:
                blank = np.full(renderer.survey.shape, np.nan)
                slot.result = Simulated(
                    blank,
                    blank,
                    blank,
                    {"n_attempts": slot.attempts},
                    [],
                    SimulationFlag.NO_ACCEPTED_DRAW,
                    slot.rejections,
                )
        pending = [slot for slot in pending if slot.result is None]
    return [slot.result for slot in slots]


def _attempt(slots, settings, renderer, mass_model):
    """One draw per slot, judged as a batch; accepted slots get their image."""
    survey, cuts = renderer.survey, settings["detection"]
    draws = [draw_training(slot.rng, settings, survey, mass_model) for slot in slots]
    for slot in slots:
        slot.attempts += 1
    # 1. point images on the half-pixel grid (float64: the same triangles as PyAutoLens' path)
    params = torch.as_tensor(mass_parameters(draws), dtype=renderer.finding_y.dtype, device=renderer.finding_y.device)
    alpha_y, alpha_x = deflections(renderer.finding_y.reshape(-1), renderer.finding_x.reshape(-1), mass_model, params)
    shape = renderer.finding_y.shape
    traced_y = (renderer.finding_y.reshape(-1) - alpha_y).reshape(len(draws), *shape)
    traced_x = (renderer.finding_x.reshape(-1) - alpha_x).reshape(len(draws), *shape)
    source = np.array([d.source_centre for d in draws], float)
    found = raytrace.point_images(
        renderer.finding_y,
        renderer.finding_x,
        traced_y,
        traced_x,
        source[:, 0],
        source[:, 1],
        cuts["min_image_magnification"],
    )
    survivors, separations = [], []
    for b, (positions, mus) in enumerate(found):
        if len(mus) < 2:
            slots[b].rejections["not_multiply_imaged"] += 1
            continue
        separation = float(np.hypot(*(positions[0] - positions[1])))
        if separation <= survey.psf_fwhm:
            slots[b].rejections["counter_image_unresolved"] += 1
            continue
        survivors.append(b)
        separations.append((separation, len(mus)))
    if not survivors:
        return
    # 2. the lensed source: magnification and arc size
    tables = [
        sources.normalised(
            draws[b].rows, draws[b].weights, survey.counts_per_second(draws[b].source_magnitude), survey.pixel_scale
        )
        for b in survivors
    ]
    survivor_params = params[:, survivors].to(renderer.pixel_y.dtype)

    def deflect(y, x, rows):
        return deflections(y, x, mass_model, survivor_params[:, rows])

    lensed = render(renderer, tables, deflect)
    stamp_flux = lensed[:, renderer.inner[0], renderer.inner[1]].sum(dim=(1, 2)).cpu().numpy()
    kept = []
    for i, b in enumerate(survivors):
        draw = draws[b]
        flux = survey.counts_per_second(draw.source_magnitude)
        magnification = float(stamp_flux[i] / flux)
        # the arc-size cut is the last: the half-light radius is measured only for magnified sources
        half_light = (
            sources.half_light_radius(tables[i], draw.source_centre)
            if magnification > cuts["min_magnification"]
            else np.nan
        )
        reason = resolution_rejection(
            survey.psf_fwhm, cuts["min_magnification"], separations[i][0], magnification, half_light
        )
        if reason is not None:
            slots[b].rejections[reason] += 1
            continue
        kept.append((i, b, flux, half_light, magnification))
    if not kept:
        return
    # 3. PSF, lens light and S/N
    rows = [i for i, *_ in kept]
    light_rows = [
        sources.normalised(
            [draws[b].light_row], [1.0], survey.counts_per_second(draws[b].light_magnitude), survey.pixel_scale
        )
        for _, b, *_ in kept
    ]
    model = raytrace.convolve(lensed[rows], renderer.psf).double().cpu().numpy()
    lens_light = raytrace.convolve(render(renderer, light_rows), renderer.psf).double().cpu().numpy()
    noise = NoiseModel(**settings["noise"])
    for k, (i, b, flux, half_light, magnification) in enumerate(kept):
        slot, draw = slots[b], draws[b]
        noise_map = np.sqrt(noise.variance(survey, model[k] + lens_light[k]))
        snr = integrated_snr(model[k], noise_map)
        if snr <= cuts["min_snr"]:
            slot.rejections["low_snr"] += 1
            continue
        image, noise_map = noise.realise(slot.rng, survey, model[k] + lens_light[k])
        (light_row,) = light_rows[k]
        params_out = training_params(draw, light_row, flux, half_light, magnification, separations[i], snr)
        params_out["n_attempts"] = slot.attempts
        slot.result = Simulated(image - lens_light[k], noise_map, model[k], params_out, tables[i], 0, slot.rejections)
