"""Line-of-sight halos for P21's test sets (c), (e), (g): PyAutoLens' own LOS sampler, configured.

P21 took the line of sight from CosmoDC2; here `autolens.lens.los.LOSSampler`
draws truncated-NFW halos (Sheth-Mo-Tormen mass function, Ludlow+16
concentrations) on planes before and behind the lens, plus one negative mass
sheet per plane so the mean convergence of the line of sight is zero. The
multi-plane `al.Tracer` ray-traces them. The per-plane mass-function and
concentration coefficients depend only on the redshifts and plane count, so
they are computed once (`plane_coefficients`) and handed to every draw.
"""

import sys
from dataclasses import dataclass, fields

import numpy as np


def _hmf_compat():
    """autolens' LOS code imports `hmf.fitting_functions`, which hmf 3.5+ keeps at `hmf.mass_function.fitting_functions`."""
    import hmf
    import hmf.mass_function.fitting_functions as fitting_functions

    sys.modules.setdefault("hmf.fitting_functions", fitting_functions)
    if not hasattr(hmf, "fitting_functions"):
        hmf.fitting_functions = fitting_functions


@dataclass(frozen=True)
class LOSSettings:
    """The config's `line_of_sight` block (masses in solar masses, radius in arcsec)."""

    planes_before_lens: int
    planes_after_lens: int
    m_min: float
    m_max: float
    cone_radius_arcsec: float
    c_scatter: float
    truncation_factor: float

    @classmethod
    def from_config(cls, settings):
        return cls(**{f.name: f.type(settings[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class PlaneCoefficients:
    """Per plane: redshift, mass function log10(dn/dm) = a log10 m + b, concentration c = a log10 m + b."""

    redshifts: np.ndarray
    mass_function: np.ndarray  # (n_planes, 2)
    concentration: np.ndarray  # (n_planes, 2)


def plane_coefficients(z_lens, z_source, settings):
    """The fits LOSSampler would otherwise redo for every line of sight (hmf + colossus, a few seconds)."""
    _hmf_compat()
    import autolens as al
    from autolens.lens import los

    from hybridlens.simulation.lenses import COSMOLOGY

    _, centres = los.los_planes_from(
        z_lens=z_lens,
        z_source=z_source,
        planes_before_lens=settings.planes_before_lens,
        planes_after_lens=settings.planes_after_lens,
        cosmology=al.cosmo.Planck15(),
    )
    return PlaneCoefficients(
        np.asarray(centres, float),
        np.array([los.mass_function_ab_from(redshift=z, cosmology_astropy=COSMOLOGY) for z in centres]),
        np.array([los.mass_concentration_ab_from(redshift=z) for z in centres]),
    )


def sample(z_lens, z_source, settings, coefficients, seed):
    """One line of sight: (halo galaxies, negative-sheet mass fields) for `al.Tracer(galaxies=..., fields=...)`."""
    _hmf_compat()
    from autolens.lens.los import LOSSampler

    sampler = LOSSampler(
        z_lens=z_lens,
        z_source=z_source,
        planes_before_lens=settings.planes_before_lens,
        planes_after_lens=settings.planes_after_lens,
        m_min=settings.m_min,
        m_max=settings.m_max,
        cone_radius_arcsec=settings.cone_radius_arcsec,
        c_scatter=settings.c_scatter,
        truncation_factor=settings.truncation_factor,
        mass_function_coefficients=coefficients.mass_function,
        mass_concentration_coefficients=coefficients.concentration,
        seed=int(seed),
    )
    return sampler.galaxies_and_fields_from()
