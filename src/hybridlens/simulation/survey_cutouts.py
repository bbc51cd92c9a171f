"""Survey-style cutouts of known lenses: doubles or quads, with or without the lens galaxy's light.

What a user points the own-lens path at, made with a known truth: P21's training draw
(SIE, lens Sérsic, Sérsic / Gaussian / multi-Sérsic source) with the source placed
to give the asked image multiplicity, the lens off the stamp centre by up to
`max_offset_pixels`, the lens light left in or not, written as a FITS cutout (TAN WCS,
e-/s, a NOISE extension) by `own_lenses.cutouts.write_cutout`. The test config's
cutouts and `benchmarks/own_cutouts.py` are made here.
"""

from dataclasses import dataclass

import autolens as al
import numpy as np

from hybridlens.simulation import lenses, sources
from hybridlens.simulation.simulate import draw_training, integrated_snr
from hybridlens.simulation.survey import NoiseModel

KINDS = {"double": 2, "quad": 4}  # counted images brighter than the detection's min_image_magnification


@dataclass
class SurveyCutout:
    """One cutout and its truth; `lens_light` is the noiseless, PSF-convolved lens galaxy."""

    image: np.ndarray
    noise_map: np.ndarray
    lensed: np.ndarray  # noiseless lensed source
    lens_light: np.ndarray
    truth: dict
    attempts: int


def source_offset(rng, kind, theta_e, axis_ratio):
    """A source offset (arcsec) likely to give `kind`: inside the SIE's diamond caustic for a quad, outside for a double."""
    diamond = theta_e * (1.0 - axis_ratio) / (1.0 + axis_ratio) * 0.9
    if kind == "quad":
        radius = rng.uniform(0.05, 1.0) * max(diamond, 0.02 * theta_e)
    else:
        radius = rng.uniform(max(diamond * 1.2, 0.15 * theta_e), 0.8 * theta_e)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    return radius * np.sin(phase), radius * np.cos(phase)


def survey_cutout(rng, settings, renderer, kind="double", with_light=True, max_offset_pixels=3.0, max_attempts=200):
    """A `SurveyCutout` of `kind` from `settings` (a `simulate_training` block), or None after `max_attempts`."""
    survey = renderer.survey
    cuts = settings["detection"]
    noise_model = NoiseModel(**settings["noise"])
    for attempt in range(1, max_attempts + 1):
        draw = draw_training(rng, settings, survey, "sie")
        offset = rng.uniform(-max_offset_pixels, max_offset_pixels, 2) * survey.pixel_scale
        centre = (float(offset[0]), float(offset[1]))
        sy, sx = source_offset(rng, kind, draw.theta_e, draw.axis_ratio)
        source_centre = (centre[0] + sy, centre[1] + sx)
        shift = (source_centre[0] - draw.source_centre[0], source_centre[1] - draw.source_centre[1])
        rows = [
            dict(row, centre_y=row["centre_y"] + shift[0], centre_x=row["centre_x"] + shift[1]) for row in draw.rows
        ]
        mass = lenses.mass_profile("sie", centre, draw.theta_e, draw.axis_ratio, draw.angle)
        lens = al.Galaxy(redshift=draw.z_lens, mass=mass)
        traced = renderer.traced_image_finding_grid(lens)
        positions, mus = renderer.point_images(traced, source_centre, cuts["min_image_magnification"])
        if len(mus) != KINDS[kind]:
            continue
        flux = survey.counts_per_second(draw.source_magnitude)
        rows = sources.normalised(rows, draw.weights, flux, survey.pixel_scale)
        lensed = renderer.convolve(
            renderer.unconvolved(al.Tracer(galaxies=[lens, sources.galaxy(rows, draw.z_source)]))
        )
        light_row = dict(draw.light_row, centre_y=centre[0], centre_x=centre[1])
        (light_row,) = sources.normalised(
            [light_row], [1.0], survey.counts_per_second(draw.light_magnitude), survey.pixel_scale
        )
        light = renderer.convolve(renderer.unconvolved(sources.galaxy([light_row], draw.z_lens)))
        if not with_light:
            light = np.zeros_like(light)
        snr = integrated_snr(lensed, np.sqrt(noise_model.variance(survey, lensed + light)))
        if snr <= cuts["min_snr"]:
            continue
        image, noise_map = noise_model.realise(rng, survey, lensed + light)
        truth = {
            "lens_centre_y": centre[0],
            "lens_centre_x": centre[1],
            "einstein_radius": draw.theta_e,
            "axis_ratio": draw.axis_ratio,
            "angle": draw.angle,
            "source_centre_y": source_centre[0],
            "source_centre_x": source_centre[1],
            "n_images": float(len(mus)),
            "lens_light": float(with_light),
            "lens_light_magnitude": draw.light_magnitude if with_light else np.nan,
            "lens_light_effective_radius": light_row["effective_radius"],
            "lens_light_sersic_index": light_row["sersic_index"],
            "source_magnitude": draw.source_magnitude,
            "snr": snr,
        }
        return SurveyCutout(image, noise_map, lensed, light, truth, attempt)
    return None


def write(path, cutout, pixel_scale):
    """The cutout as a FITS file the own-lens path reads (e-/s, a NOISE extension, a TAN WCS)."""
    from hybridlens.own_lenses import cutouts

    return cutouts.write_cutout(path, cutout.image, pixel_scale, cutout.noise_map)
