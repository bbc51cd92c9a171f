"""P21's seven test sets of growing realism (P21 section 2.2), Euclid VIS, z_l 0.5, z_s 2.0, no lens light.

(a) SIE + parametric sources (half Sersic, half Gaussian); (b) SIE + real-morphology
sources (the HDF stamps, sized and scaled as M21's); (c) = (b) behind a line of
sight; (d) power law + real sources; (e) = (d) + LOS; (f) composite lenses + real
sources; (g) = (f) + LOS. For (a), (b), (d) the truth is the drawn profile; for
the others it is the SIE (power law for (e)) fitted to the effective convergence
(`lens_truth`), with its residual, and the drawn lens is kept as `input_*`.
Every image records its number of point images of the source centre (doubles are
analysed apart, P21 section 5.3).
"""

import autolens as al
import numpy as np

from hybridlens.flags import SimulationFlag
from hybridlens.simulation import composite, lens_truth, lenses, line_of_sight, sources
from hybridlens.simulation import distributions as dist
from hybridlens.simulation.simulate import (
    EXPONENTIAL_FLUX,
    REJECTION_REASONS,
    Renderer,
    Simulated,
    _normalise,
    _training_source,
    collate,
    image_rng,
    integrated_snr,
    resolution_rejection,
)
from hybridlens.simulation.survey import NoiseModel, Survey, flux_scale
from hybridlens.vocabulary import TESTSETS


def _lens(rng, testset, settings, survey, grid):
    """Lens galaxies, their drawn parameters and a theta_E scale for the source draw."""
    z_lens = settings["redshifts"]["lens"]
    if testset.lens == "composite":
        lens, fit, _ = composite.composite_in_range(
            rng, settings["composite"], z_lens, grid, settings["kappa_fit"], settings["composite"]["max_attempts"]
        )
        if lens is None:
            return None, {}, np.nan
        return lens.galaxies, {"n_subhalos": lens.params["n_subhalos"]}, fit.einstein_radius
    cfg = settings["lens"]
    theta_e = dist.uniform(rng, cfg["einstein_radius"])
    q = dist.uniform(rng, cfg["axis_ratio"])
    angle = rng.uniform(0.0, 180.0)
    slope = dist.uniform(rng, cfg["slope"]) if testset.lens == "power_law" else 2.0
    centre = rng.normal(0.0, cfg["centre_sd_pixels"] * survey.pixel_scale, 2)
    mass = lenses.mass_profile(testset.lens, centre, theta_e, q, angle, slope)
    params = {
        "lens_centre_y": centre[0],
        "lens_centre_x": centre[1],
        "einstein_radius": theta_e,
        "axis_ratio": q,
        "angle": angle,
        "slope": slope,
    }
    return [al.Galaxy(redshift=z_lens, mass=mass)], params, theta_e


def _real_source(rng, settings, survey, reference, stamps):
    """An HDF stamp with M21's size and brightness (as `simulate.hudf_image`): (stamp x flux, scale, params)."""
    src = settings["real_source"]
    pick = int(rng.integers(len(stamps["stamps"])))
    stamp = np.rot90(stamps["stamps"][pick], int(rng.integers(4)))
    stamp = stamp[:, ::-1] if rng.uniform() < 0.5 else stamp
    radius = dist.truncated_exponential(rng, src["effective_radius"])
    scale = radius / stamps["half_light_radius"][pick]
    intensity = dist.uniform(rng, src["intensity"]) * flux_scale(survey, reference)
    flux = EXPONENTIAL_FLUX * intensity * (radius / survey.pixel_scale) ** 2
    params = {"stamp": pick, "stamp_pixel_scale": scale, "source_half_light_radius": radius, "source_flux": flux}
    return stamp * flux, scale, params


def testset_image(rng, name, settings, renderer, reference, stamps, coefficients):
    """One image of test set `name`; flagged (not raised) when no draw qualifies.

    Sources are redrawn until the centre is multiply imaged and the lensed source
    passes P21's strong-lens cuts of its training set: counter image resolved,
    magnification > `min_magnification`, arc stretched beyond the seeing and
    integrated SNR >= `min_snr`. Without them a compact real source (R_eff ~0.01")
    with one visible image passes the SNR cut alone, and no annulus can be fitted.
    """
    testset, survey = TESTSETS[name], renderer.survey
    z_lens, z_source = settings["redshifts"]["lens"], settings["redshifts"]["source"]
    grid = lens_truth.grid_for(survey.shape, survey.pixel_scale)
    galaxies, params, theta_scale = _lens(rng, testset, settings, survey, grid)
    blank = np.full(survey.shape, np.nan)
    if galaxies is None:  # no composite draw in the theta_E range
        return Simulated(blank, blank, blank, {}, [], SimulationFlag.NO_ACCEPTED_DRAW)
    fields = []
    if testset.los:
        los = line_of_sight.LOSSettings.from_config(settings["line_of_sight"])
        halos, fields = line_of_sight.sample(z_lens, z_source, los, coefficients, rng.integers(2**31))
        galaxies = [*galaxies, *halos]
        params["n_halos"] = len(halos)
    deflector = al.Tracer(galaxies=[*galaxies, al.Galaxy(redshift=z_source)], fields=fields or None)
    traced = np.asarray(deflector.traced_grid_2d_list_from(grid=renderer.image_finding)[-1].native)
    noise = NoiseModel(**settings["noise"])
    rejections = dict.fromkeys(REJECTION_REASONS, 0)
    for attempt in range(1, settings["max_attempts"] + 1):
        sy, sx = dist.uniform_disc(rng, theta_scale)
        centre = (float(sy), float(sx))
        positions, mus = renderer.point_images(traced, centre, settings["min_image_magnification"])
        if len(mus) < 2:
            rejections["not_multiply_imaged"] += 1
            continue
        rows, source_params = [], {}
        if testset.source == "parametric":
            rows, source_type = _training_source(rng, settings["parametric_source"], survey, centre)
            magnitude = dist.uniform(rng, settings["parametric_source"]["magnitude"])
            weights = rng.dirichlet(np.ones(len(rows)))
            rows = _normalise(rows, weights, survey.counts_per_second(magnitude), renderer, z_source)
            tracer = al.Tracer(galaxies=[*galaxies, sources.galaxy(rows, z_source)], fields=fields or None)
            lensed = renderer.unconvolved(tracer)
            flux, half_light = renderer.flux_and_half_light_radius(sources.galaxy(rows, z_source), centre)
            source_params = {"source_type": source_type, "source_magnitude": magnitude}
        else:
            pixelised, scale, source_params = _real_source(rng, settings, survey, reference, stamps)
            lensed = renderer.lensed_pixelised(deflector, pixelised, scale, centre)
            flux, half_light = source_params["source_flux"], source_params["source_half_light_radius"]
        magnification = renderer.stamp_flux(lensed) / flux
        separation = float(np.hypot(*(positions[0] - positions[1])))
        reason = resolution_rejection(
            survey.psf_fwhm, settings["min_magnification"], separation, magnification, half_light
        )
        if reason is not None:
            rejections[reason] += 1
            continue
        model = renderer.convolve(lensed)
        snr = integrated_snr(model, np.sqrt(noise.variance(survey, model)))
        if snr >= settings["min_snr"]:
            break
        rejections["low_snr"] += 1
    else:
        return Simulated(blank, blank, blank, {"n_attempts": attempt}, [], SimulationFlag.NO_ACCEPTED_DRAW, rejections)
    params.update({**source_params, "snr": snr, "magnification": magnification})
    image, noise_map = noise.realise(rng, survey, model)

    if testset.los or testset.lens == "composite":
        kappa = lens_truth.effective_convergence(deflector, grid)
        fit = lens_truth.fit_convergence(kappa, grid, testset.fitted_model, **settings["kappa_fit"])
        params.update({f"input_{key}": value for key, value in params.items() if key in TRUTH_NAMES})
        params.update(
            {
                "lens_centre_y": fit.centre[0],
                "lens_centre_x": fit.centre[1],
                "einstein_radius": fit.einstein_radius,
                "axis_ratio": fit.axis_ratio,
                "angle": fit.angle,
                "slope": fit.slope,
                "kappa_fit_residual": fit.residual,
                "circular_einstein_radius": fit.circular_einstein_radius,
            }
        )
    params.update(
        {
            "source_centre_y": centre[0],
            "source_centre_x": centre[1],
            "n_point_images": len(mus),
            "is_double": float(len(mus) == 2),
            "image_separation": separation,
            "n_attempts": attempt,
            "z_lens": z_lens,
            "z_source": z_source,
        }
    )
    return Simulated(image, noise_map, model, params, rows, 0, rejections)


TRUTH_NAMES = ("lens_centre_y", "lens_centre_x", "einstein_radius", "axis_ratio", "angle", "slope")


def simulate_testset_shard(name, settings, survey_settings, reference_settings, seed, indices, stamps):
    """Images `indices` of test set `name`, collated as every simulation shard is."""
    survey = Survey.from_settings(survey_settings)
    renderer = Renderer(survey, settings["over_sample"])
    reference = Survey.from_settings(reference_settings)
    coefficients = None
    if TESTSETS[name].los:
        los = line_of_sight.LOSSettings.from_config(settings["line_of_sight"])
        coefficients = line_of_sight.plane_coefficients(
            settings["redshifts"]["lens"], settings["redshifts"]["source"], los
        )
    results = [
        testset_image(image_rng(seed, f"p21_{name}", index), name, settings, renderer, reference, stamps, coefficients)
        for index in indices
    ]
    return collate(results, indices)
