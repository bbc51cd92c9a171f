"""An evidence scan before sampling: the first fit's priors put on the mode the data prefer.

An SIE + pixelised-source posterior has separate modes in theta_E (M21's under-
and over-magnified solutions), and Nautilus spends about n_live likelihood calls
per e-fold of prior volume finding them. A network's (theta_E, q, phi) is close
to the right mode but, at a few per cent in theta_E and ~0.08 in q, not on it;
and a theta_E scan at the network's q and phi alone can prefer a wrong mode
(a 0.08 error in q sank the right peak below the under-magnified one on a
benchmark lens). So before sampling:

1. quasi-random (Sobol) draws of (theta_E, q, phi) from the network's Gaussians,
   cut at +-`draw_sigma`, at the prior's centre, are inverted with the
   regularisation coefficient maximised at the network's model (the evidence,
   not chi-squared, so over-magnified solutions that fit the arcs with a tiny
   source are penalised as in the fit);
2. a Nelder-Mead simplex climbs from the best draw in (theta_E, q, phi,
   centre), the coefficient refitted at the end;
3. the fit's priors become uniform windows about that optimum
   (`priors_about`), as PyAutoLens' SLaM pipelines pass one stage's result on
   as the next stage's priors.

Every step is a plain inversion (`MaskedLens.log_evidence`, ~14–26 ms at the default resolution), so the
scan costs a few hundred of the calls the sampler no longer spends exploring.
"""

import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize

from hybridlens.fitting.modelling import ANGLE_PERIOD, Prior
from hybridlens.reconstruction.inversion import Mass


@dataclass(frozen=True)
class PrescanSettings:
    """The config's `modelling.prescan` block."""

    draws: int  # Sobol draws from the network's Gaussians (a power of 2)
    draw_sigma: float  # ... cut at this many sigma
    max_evaluations: int  # of the simplex
    half_widths: dict  # windows: einstein_radius (fraction), axis_ratio, angle (deg), centre ("), log10_coefficient
    priors: str = "gaussian"  # gaussian: `gaussians_about`; windows: `priors_about`
    search: dict = field(default_factory=dict)  # overrides of the search for the prescanned fit

    @classmethod
    def from_config(cls, settings):
        return cls(
            int(settings["draws"]),
            float(settings["draw_sigma"]),
            int(settings["max_evaluations"]),
            dict(settings["half_widths"]),
            str(settings["priors"]),
            dict(settings["search"]),
        )

    def narrowed(self, prescan, outer, centre_half_width=None):
        """The prescanned fit's priors about `prescan`'s optimum, `outer` (the BNN's) where it still holds.

        `centre_half_width` ("): the centre's window where the start centre is uncertain
        by more than the climb resolves (a stamp centre); None: `half_widths`'.
        """
        build = {"gaussian": gaussians_about, "windows": priors_about}[self.priors]
        settings = self
        if centre_half_width is not None:
            settings = replace(self, half_widths={**self.half_widths, "centre": float(centre_half_width)})
        return build(prescan, outer, settings)


@dataclass(frozen=True)
class CentreSearch:
    """A start centre good to a few pixels only (a stamp's): `model_lenses.stamp_centre`.

    The climb moves a centre little (a pixelised source absorbs much of a centre error),
    and a sampler given a wide centre window on a small or bright lens wanders to far
    modes. So the centre is first scanned on a grid at the network's (theta_E, q, phi),
    and the fit's window is `window` about the prescan's optimum.
    """

    half_width: float  # arcsec: the grid's reach about the start centre ...
    step: float  # ... in steps of this
    window: float  # arcsec: the first fit's centre half-width about the prescan's optimum

    @classmethod
    def from_config(cls, settings):
        return None if settings is None else cls(*(float(settings[k]) for k in ("half_width", "step", "window")))

    def offsets(self):
        """The grid's (dy, dx) offsets, nearest the start first (ties of the evidence keep the start)."""
        n = int(round(self.half_width / self.step))
        axis = self.step * np.arange(-n, n + 1)
        grid = np.array([(dy, dx) for dy in axis for dx in axis])
        return grid[np.argsort(np.hypot(grid[:, 0], grid[:, 1]), kind="stable")]


def best_centre(start, coefficient, search, evidence):
    """The grid centre (`search.offsets` about `start`'s) of highest evidence at `start`'s theta_E, q, phi."""
    centres = [(start.centre[0] + dy, start.centre[1] + dx) for dy, dx in search.offsets()]
    values = [evidence(Mass(start.einstein_radius, start.axis_ratio, start.angle, c), coefficient) for c in centres]
    return tuple(float(v) for v in centres[int(np.argmax(values))])


@dataclass
class Prescan:
    """The optimum the scan reached and what it cost."""

    mass: Mass
    coefficient: float
    log_evidence: float
    draws: np.ndarray  # (n, 3) theta_E, q, phi of step 1 ...
    draw_log_evidence: np.ndarray  # ... and their evidences
    evaluations: int
    seconds: float

    def row(self):
        """Flat columns for a round's HDF5 row."""
        return {
            "prescan_einstein_radius": self.mass.einstein_radius,
            "prescan_axis_ratio": self.mass.axis_ratio,
            "prescan_angle": self.mass.angle,
            "prescan_centre_y": self.mass.centre[0],
            "prescan_centre_x": self.mass.centre[1],
            "prescan_coefficient": self.coefficient,
            "prescan_log_evidence": self.log_evidence,
            "prescan_evaluations": float(self.evaluations),
            "prescan_seconds": self.seconds,
        }


class _Counted:
    """`masked.log_evidence` that counts its calls."""

    def __init__(self, masked):
        self.masked, self.calls = masked, 0

    def __call__(self, mass, coefficient):
        self.calls += 1
        return self.masked.log_evidence(mass, coefficient)


def scan(masked, start, sigmas, bounds, axis_ratio_range, settings, seed=0, centre_search=None):
    """Steps 1 and 2 from `start` (a `Mass`) with 1-sigma `sigmas` (theta_E, q, phi): a `Prescan`.

    `bounds`: the allowed theta_E range; `axis_ratio_range`: q's (the fit's prior range);
    `centre_search`: a `CentreSearch` where `start`'s centre is known to pixels only: the
    centre is scanned on its grid first and the climb steps its grid step in the centre.
    """
    from scipy.stats import norm, qmc

    began = time.perf_counter()
    evidence = _Counted(masked)
    q_low, q_high = axis_ratio_range
    coefficient, _ = masked.best_coefficient(start, evidence)
    centre_step = 0.02
    if centre_search is not None:
        start = Mass(
            start.einstein_radius,
            start.axis_ratio,
            start.angle,
            best_centre(start, coefficient, centre_search, evidence),
        )
        coefficient, _ = masked.best_coefficient(start, evidence)
        centre_step = centre_search.step
    cut = norm.cdf(-settings.draw_sigma)
    unit = qmc.Sobol(3, seed=seed).random(settings.draws)
    offsets = norm.ppf(cut + (1.0 - 2.0 * cut) * unit) * np.asarray(sigmas, float)
    draws = np.column_stack(
        [
            np.clip(start.einstein_radius + offsets[:, 0], *bounds),
            np.clip(start.axis_ratio + offsets[:, 1], q_low, q_high),
            (start.angle + offsets[:, 2]) % ANGLE_PERIOD,
        ]
    )
    values = np.array([evidence(Mass(*map(float, draw), start.centre), coefficient) for draw in draws])
    best = draws[int(np.argmax(values))] if np.isfinite(values).any() else draws[0]
    scales = np.array([0.01 * best[0], 0.03, 5.0, centre_step, centre_step])  # simplex steps: theta_E, q, phi, y, x

    def unpack(vector):
        theta_e, q, phi, y, x = vector * scales
        return Mass(float(theta_e), float(q), float(phi % ANGLE_PERIOD), (float(y), float(x)))

    def cost(vector):
        theta_e, q = vector[0] * scales[0], vector[1] * scales[1]
        if not (bounds[0] <= theta_e <= bounds[1] and q_low <= q <= q_high):
            return np.inf
        return -evidence(unpack(vector), coefficient)

    x0 = np.array([*best, *start.centre]) / scales
    climbed = minimize(
        cost,
        x0,
        method="Nelder-Mead",
        options={
            "initial_simplex": np.vstack([x0, x0 + np.eye(len(x0))]),
            "maxfev": settings.max_evaluations,
            "xatol": 0.05,
            "fatol": 0.5,
        },
    )
    mass = unpack(climbed.x if np.isfinite(climbed.fun) else x0)
    coefficient, log_evidence = masked.best_coefficient(mass, evidence)
    return Prescan(mass, coefficient, log_evidence, draws, values, evidence.calls, time.perf_counter() - began)


def priors_about(prescan, outer, settings):
    """Uniform windows about the prescan's optimum, inside `outer` (an `SIEPriors`) where it is bounded.

    phi's window is not cut at 0/180 degrees (the model reads phi modulo 180). A
    coefficient window of 0 decades holds the coefficient at the prescan's value:
    one parameter fewer for the sampler, the source's regularisation no longer marginalised.
    """
    widths, mass = settings.half_widths, prescan.mass

    def inside(name, centre, half):
        if half == 0:  # held at the optimum
            return Prior.fixed(centre)
        wide = getattr(outer, name)
        low, high = max(centre - half, wide.low), min(centre + half, wide.high)
        return Prior.uniform(low, high) if high > low else wide

    decades = widths["log10_coefficient"]
    coefficient = Prior.fixed(prescan.coefficient)  # 0 decades: held at the prescan's evidence maximum
    if decades > 0:
        coefficient = Prior.log_uniform(
            max(prescan.coefficient / 10.0**decades, outer.coefficient.low),
            min(prescan.coefficient * 10.0**decades, outer.coefficient.high),
        )
    return outer.replace(
        einstein_radius=inside(
            "einstein_radius", mass.einstein_radius, widths["einstein_radius"] * mass.einstein_radius
        ),
        axis_ratio=inside("axis_ratio", mass.axis_ratio, widths["axis_ratio"]),
        angle=Prior.uniform(mass.angle - widths["angle"], mass.angle + widths["angle"]),
        centre_y=inside("centre_y", mass.centre[0], widths["centre"]),
        centre_x=inside("centre_x", mass.centre[1], widths["centre"]),
        coefficient=coefficient,
    )


def gaussians_about(prescan, outer, settings):
    """`outer`'s Gaussian theta_E, q and phi priors recentred on the prescan's optimum, their widths kept.

    Unlike `priors_about`'s windows these never exclude a distant mode of the
    evidence (pixelised-source fits can prefer q far from the truth); only the
    centre (a window) and the coefficient (`priors_about`'s) are narrowed.
    """
    narrowed = priors_about(prescan, outer, settings)
    mass = prescan.mass

    def moved(name, mean):
        prior = getattr(outer, name)
        if prior.kind != "gaussian":
            return getattr(narrowed, name)
        return Prior.gaussian(float(np.clip(mean, prior.low, prior.high)), prior.sigma, prior.low, prior.high)

    return narrowed.replace(
        einstein_radius=moved("einstein_radius", mass.einstein_radius),
        axis_ratio=moved("axis_ratio", mass.axis_ratio),
        angle=moved("angle", mass.angle),
    )
