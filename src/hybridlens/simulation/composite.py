"""Complex lenses for P21's test sets (f), (g): stellar + dark matter, sheared, with a few subhalos.

P21 took these from EAGLE; here a composite lens stands in: an elliptical
Sersic stellar component with a mass-to-light ratio (`al.lmp.Sersic`) inside an
elliptical NFW halo (`al.mp.NFW`), an optional external shear and a few
truncated-NFW subhalos. Draws are kept when the observed Einstein radius (the
SIE fit to the convergence map, P21's definition) lies in the configured range.
"""

from dataclasses import dataclass

import autolens as al
import numpy as np

from hybridlens.simulation import lens_truth


@dataclass(frozen=True)
class CompositeLens:
    """One drawn lens: its galaxies (all at the lens redshift) and the parameters that made it."""

    galaxies: list
    params: dict


def _uniform(rng, spec):
    return float(rng.uniform(spec["min"], spec["max"]))


def draw_composite(rng, settings, z_lens, centre=(0.0, 0.0)):
    """Stellar Sersic x M/L + elliptical NFW (+ shear, subhalos), parameters uniform over `settings`."""
    stellar_q, dark_q = _uniform(rng, settings["stellar_axis_ratio"]), _uniform(rng, settings["dark_axis_ratio"])
    angle = _uniform(rng, {"min": 0.0, "max": 180.0})
    dark_angle = angle + float(rng.normal(0.0, settings["dark_misalignment_sd"]))
    params = {
        "stellar_effective_radius": _uniform(rng, settings["stellar_effective_radius"]),
        "stellar_sersic_index": _uniform(rng, settings["stellar_sersic_index"]),
        "stellar_kappa_effective": _uniform(rng, settings["stellar_kappa_effective"]),
        "stellar_axis_ratio": stellar_q,
        "stellar_angle": angle,
        "dark_kappa_s": _uniform(rng, settings["dark_kappa_s"]),
        "dark_scale_radius": _uniform(rng, settings["dark_scale_radius"]),
        "dark_axis_ratio": dark_q,
        "dark_angle": dark_angle % 180.0,
        "shear_magnitude": _uniform(rng, settings["shear_magnitude"]),
        "shear_angle": _uniform(rng, {"min": 0.0, "max": 180.0}),
        "n_subhalos": int(rng.integers(settings["subhalos"]["max_number"] + 1)),
    }
    stellar = al.lmp.Sersic(
        centre=centre,
        ell_comps=al.convert.ell_comps_from(axis_ratio=stellar_q, angle=angle),
        intensity=1.0,
        effective_radius=params["stellar_effective_radius"],
        sersic_index=params["stellar_sersic_index"],
        mass_to_light_ratio=params["stellar_kappa_effective"],  # intensity 1: kappa at R_eff
    )
    dark = al.mp.NFW(
        centre=centre,
        ell_comps=al.convert.ell_comps_from(axis_ratio=dark_q, angle=params["dark_angle"]),
        kappa_s=params["dark_kappa_s"],
        scale_radius=params["dark_scale_radius"],
    )
    shear = al.mp.ExternalShear(
        gamma_1=params["shear_magnitude"] * np.cos(2 * np.deg2rad(params["shear_angle"])),
        gamma_2=params["shear_magnitude"] * np.sin(2 * np.deg2rad(params["shear_angle"])),
    )
    galaxies = [al.Galaxy(redshift=z_lens, stellar=stellar, dark=dark, shear=shear)]
    sub = settings["subhalos"]
    for _ in range(params["n_subhalos"]):
        radius, phase = _uniform(rng, sub["radius"]), rng.uniform(0.0, 2.0 * np.pi)
        galaxies.append(
            al.Galaxy(
                redshift=z_lens,
                mass=al.mp.NFWTruncatedSph(
                    centre=(centre[0] + radius * np.sin(phase), centre[1] + radius * np.cos(phase)),
                    kappa_s=_uniform(rng, sub["kappa_s"]),
                    scale_radius=_uniform(rng, sub["scale_radius"]),
                    truncation_radius=_uniform(rng, sub["truncation_radius"]),
                ),
            )
        )
    return CompositeLens(galaxies, params)


def composite_in_range(rng, settings, z_lens, grid, kappa_fit, max_attempts):
    """Draw until the SIE fit to the convergence gives theta_E in `settings['einstein_radius']`.

    Returns (lens, fit, attempts), or (None, None, attempts) when no draw qualified.
    """
    low, high = settings["einstein_radius"]["min"], settings["einstein_radius"]["max"]
    for attempt in range(1, max_attempts + 1):
        lens = draw_composite(rng, settings, z_lens)
        kappa = sum(lens_truth.convergence_map(galaxy, grid) for galaxy in lens.galaxies)
        try:
            fit = lens_truth.fit_convergence(kappa, grid, "sie", **kappa_fit)
        except ValueError:
            continue
        if low <= fit.einstein_radius <= high:
            return lens, fit, attempt
    return None, None, max_attempts
