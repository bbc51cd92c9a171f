"""Every non-linear lens-model search of the pipeline: PyAutoFit + Nautilus.

An SIE with a pixelised (Delaunay, constant-regularisation) source is fitted to
a `inversion.MaskedLens`. What differs between the M21 calibration fits (under /
correct / over ranges), the blind fits and the CNN-informed fits of later stages
is only the `SIEPriors` handed in: every prior is a `Prior` on the physical
parameters M21 and P21 state theirs in (centre, theta_E, q, phi, coefficient),
never on `ell_comps`.

A fit runs to Nautilus' own convergence (`f_live`, `n_eff`); `max_calls` is a
safety net, and a fit that reaches it says so (`FitResult.hit_call_cap`).
PyAutoFit's on-disk output goes to a scratch folder that the caller owns; what
the pipeline keeps is the returned `FitResult`, written to HDF5 by the rule.
"""

import functools
import math
import shutil
import time
import uuid
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Optional, Tuple

import autofit as af
import autolens as al
import numpy as np
from autolens.analysis.exceptions import raise_fit_exception

from hybridlens import runlog
from hybridlens.config import CONFIG_DIR
from hybridlens.fitting import bound_networks
from hybridlens.reconstruction import delaunay, positions

runlog.quiet_known_warnings()

AUTOLENS_CONFIG = CONFIG_DIR / "autolens"
PARAMETERS = ("centre_y", "centre_x", "einstein_radius", "axis_ratio", "angle", "coefficient")
FITTED = ("centre_y", "centre_x", "einstein_radius", "axis_ratio", "angle", "slope", "coefficient")  # slope: PL fits
ANGLE_PERIOD = 180.0  # an ellipse's position angle repeats every 180 degrees
NAUTILUS_NETWORK_LAYERS = (100, 50, 20)  # Nautilus' own bound networks
NAUTILUS_NETWORK_TOL = 0.0  # Nautilus' own: train while the loss falls at all
NAUTILUS_NETWORK_MAX_ITER = 10000  # Nautilus' own epoch cap
# A model whose arc peaks do not meet (`PositionCut`): its log likelihood, far below any
# inversion's (|ln L| ~1e3-1e4 on survey stamps), falling with the spread so the sampler
# is led towards models whose images meet
CUT_LOG_LIKELIHOOD = -1.0e8
CUT_SLOPE = 1.0e6  # per theta_E of spread beyond the cut
PRIOR_KIND_CODES = {"uniform": 0.0, "log_uniform": 1.0, "gaussian": 2.0, "fixed": 3.0}  # HDF5 prior_*_kind columns


def configure(output_path):
    """Point PyAutoFit at hybridlens' own config and an output folder (never the cwd)."""
    Path(output_path).mkdir(parents=True, exist_ok=True)
    af.conf.instance.push(new_path=str(AUTOLENS_CONFIG), output_path=str(output_path))


class SIE(al.mp.Isothermal):
    """`al.mp.Isothermal` parametrised by axis ratio and position angle (degrees).

    PyAutoFit builds priors from the constructor's arguments, so M21's
    q ~ U[0.25, 0.999] and phi ~ U[0, 180) hold exactly as stated (a square
    prior on `ell_comps` reaches q ~ 0.08 on its diagonals). phi enters only
    through (sin 2phi, cos 2phi): a Gaussian prior on phi that straddles 0/180
    degrees describes the same ellipses on both sides, i.e. it wraps.
    theta_E is PyAutoLens' major-axis normalisation (see `lenses`).
    """

    def __init__(
        self,
        centre: Tuple[float, float] = (0.0, 0.0),
        einstein_radius: float = 1.0,
        axis_ratio: float = 1.0,
        angle: float = 0.0,
    ):
        super().__init__(
            centre=centre,
            ell_comps=al.convert.ell_comps_from(axis_ratio=axis_ratio, angle=angle),
            einstein_radius=einstein_radius,
        )


class PowerLaw(al.mp.PowerLaw):
    """`al.mp.PowerLaw` parametrised like `SIE`, plus the 3-D density slope (2 = isothermal)."""

    def __init__(
        self,
        centre: Tuple[float, float] = (0.0, 0.0),
        einstein_radius: float = 1.0,
        axis_ratio: float = 1.0,
        angle: float = 0.0,
        slope: float = 2.0,
    ):
        super().__init__(
            centre=centre,
            ell_comps=al.convert.ell_comps_from(axis_ratio=axis_ratio, angle=angle),
            einstein_radius=einstein_radius,
            slope=slope,
        )


@dataclass(frozen=True)
class Prior:
    """A 1-D prior: uniform or log-uniform on [low, high], or Gaussian (mean, sigma) cut to [low, high]."""

    kind: str
    low: float = -math.inf
    high: float = math.inf
    mean: float = math.nan
    sigma: float = math.nan

    @classmethod
    def uniform(cls, low, high):
        return cls("uniform", float(low), float(high))

    @classmethod
    def log_uniform(cls, low, high):
        return cls("log_uniform", float(low), float(high))

    @classmethod
    def gaussian(cls, mean, sigma, low=-math.inf, high=math.inf):
        return cls("gaussian", float(low), float(high), float(mean), float(sigma))

    @classmethod
    def fixed(cls, value):
        """Not fitted: the parameter held at `value` (e.g. a coefficient a prescan maximised the evidence over)."""
        return cls("fixed", float(value), float(value), float(value), 0.0)

    def to_autofit(self):
        if self.kind == "uniform":
            return af.UniformPrior(lower_limit=self.low, upper_limit=self.high)
        if self.kind == "log_uniform":
            return af.LogUniformPrior(lower_limit=self.low, upper_limit=self.high)
        if self.kind == "gaussian":
            if math.isinf(self.low) and math.isinf(self.high):
                return af.GaussianPrior(mean=self.mean, sigma=self.sigma)
            return af.TruncatedGaussianPrior(
                mean=self.mean, sigma=self.sigma, lower_limit=self.low, upper_limit=self.high
            )
        if self.kind == "fixed":
            return self.mean
        raise ValueError(f"unknown prior kind {self.kind!r}")

    def text(self, digits=3):
        """A short human reading: `U[a, b]`, `logU[a, b]`, `N(m, s) in [a, b]` or `= v`."""
        f = lambda value: f"{value:.{digits}g}"
        if self.kind == "fixed":
            return f"= {f(self.mean)}"
        bounds = f"[{f(self.low)}, {f(self.high)}]"
        if self.kind == "gaussian":
            cut = "" if math.isinf(self.low) and math.isinf(self.high) else f" in {bounds}"
            return f"N({f(self.mean)}, {f(self.sigma)}){cut}"
        return ("logU" if self.kind == "log_uniform" else "U") + bounds


@dataclass(frozen=True)
class SIEPriors:
    """Priors of every free parameter of an SIE + pixelised-source fit."""

    centre_y: Prior
    centre_x: Prior
    einstein_radius: Prior
    axis_ratio: Prior
    angle: Prior
    coefficient: Prior

    def replace(self, **priors):
        return replace(self, **priors)

    def text(self):
        """Every prior on one line, for a lens's account."""
        return ", ".join(f"{name} {getattr(self, name).text()}" for name in PARAMETERS)

    def describe(self):
        """Flat {parameter_field: value} for an HDF5 row (kind coded by `PRIOR_KIND_CODES`)."""
        codes = PRIOR_KIND_CODES
        out = {}
        for name in PARAMETERS:
            prior = getattr(self, name)
            out[f"prior_{name}_kind"] = codes[prior.kind]
            for key in ("low", "high", "mean", "sigma"):
                out[f"prior_{name}_{key}"] = float(getattr(prior, key))
        return out


def uniform_priors(centre, einstein_radius_range, settings):
    """M21's priors: everything uniform over its full range, theta_E over `einstein_radius_range`.

    `settings` is the config's `modelling.priors`: centre half-width (arcsec)
    about `centre`, axis-ratio and angle ranges, log10 coefficient range.
    """
    half = settings["centre_half_width"]
    low, high = settings["log10_coefficient_range"]
    return SIEPriors(
        centre_y=Prior.uniform(centre[0] - half, centre[0] + half),
        centre_x=Prior.uniform(centre[1] - half, centre[1] + half),
        einstein_radius=Prior.uniform(*einstein_radius_range),
        axis_ratio=Prior.uniform(*settings["axis_ratio_range"]),
        angle=Prior.uniform(*settings["angle_range"]),
        coefficient=Prior.log_uniform(10.0**low, 10.0**high),
    )


@dataclass(frozen=True)
class SearchSettings:
    """Nautilus settings; the fit stops at convergence (`f_live`, `n_eff`) or, as a safety net, `max_calls`."""

    n_live: int
    max_calls: int
    f_live: float
    n_eff: int
    n_batch: int
    # Nautilus' neural bounds (its defaults): at a few tens of ms per likelihood call,
    # training them can cost as much as the likelihood (docs/m21.md, "Non-linear searches").
    n_networks: int = 4
    n_update: Optional[int] = None  # live-set additions per new bound; None: n_live
    network_layers: Tuple[int, ...] = NAUTILUS_NETWORK_LAYERS
    # Each bound network trains (Adam) until its loss stops falling by `network_tol` for
    # 10 epochs or `network_max_iter` epochs pass; Nautilus' own tol 0 trains while the
    # loss falls at all (~30 s of a 200-280 s prescanned fit, docs/m21.md).
    network_tol: float = NAUTILUS_NETWORK_TOL
    network_max_iter: int = NAUTILUS_NETWORK_MAX_ITER
    # "hybridlens": sklearn's networks, bit for bit, trained at about half the cost
    # (fitting.bound_networks); "sklearn": sklearn's own fit, the reference
    network_trainer: str = "hybridlens"

    def network_kwargs(self):
        """Nautilus' `neural_network_kwargs`: the bound networks' shape and training stop."""
        return {"hidden_layer_sizes": self.network_layers, "tol": self.network_tol, "max_iter": self.network_max_iter}

    @classmethod
    def from_config(cls, settings, overrides=None):
        """`modelling.search`, with a stage's own `search:` block (if any) on top."""
        merged = {**settings, **(overrides or {})}
        values = {f.name: merged[f.name] for f in fields(cls) if f.name in merged}
        if "network_layers" in values:
            values["network_layers"] = tuple(values["network_layers"])
        return cls(**values)


@dataclass
class FitResult:
    """What a fit hands to HDF5: max-likelihood and median models, 68 % intervals, evidence, cost."""

    max_likelihood: dict
    median: dict
    lower: dict  # 16th percentile
    upper: dict  # 84th percentile
    log_evidence: float
    max_log_likelihood: float
    n_calls: int
    seconds: float
    hit_call_cap: bool
    cut_calls: int = 0  # calls a `PositionCut` answered without an inversion

    def row(self):
        """Flat columns: ml_*, median_*, lower_*, upper_*, sigma_* (half the 68 % interval) and the scalars."""
        out = {}
        for prefix, values in (
            ("ml_", self.max_likelihood),
            ("median_", self.median),
            ("lower_", self.lower),
            ("upper_", self.upper),
        ):
            out.update({f"{prefix}{name}": float(value) for name, value in values.items()})
        out.update({f"sigma_{name}": 0.5 * (self.upper[name] - self.lower[name]) for name in self.median})
        out.update(
            log_evidence=self.log_evidence,
            max_log_likelihood=self.max_log_likelihood,
            n_calls=float(self.n_calls),
            seconds=self.seconds,
            hit_call_cap=float(self.hit_call_cap),
            cut_calls=float(self.cut_calls),
        )
        return out

    def mass(self, which="max_likelihood"):
        """The SIE of the max-likelihood (or median) model, as an `inversion.Mass`."""
        from hybridlens.reconstruction.inversion import Mass

        return Mass.from_parameters(getattr(self, which))


def sie_model(priors, mesh, slope=None, lens_light=None):
    """PyAutoFit model: `SIE` lens with `priors`, a pixelised source (`mesh`, an autolens mesh)
    with a constant regularisation.

    With a `slope` prior the lens is a `PowerLaw` with the same (q, phi) parameters; with
    `lens_light` (a fixed-shape basis of linear profiles) the lens galaxy shines too.
    """
    mass = af.Model(SIE) if slope is None else af.Model(PowerLaw)
    if slope is not None:
        mass.slope = slope.to_autofit()
    mass.centre.centre_0 = priors.centre_y.to_autofit()
    mass.centre.centre_1 = priors.centre_x.to_autofit()
    mass.einstein_radius = priors.einstein_radius.to_autofit()
    mass.axis_ratio = priors.axis_ratio.to_autofit()
    mass.angle = priors.angle.to_autofit()
    regularization = af.Model(delaunay.Constant)
    regularization.coefficient = priors.coefficient.to_autofit()
    pixelization = af.Model(al.Pixelization, mesh=mesh, regularization=regularization)
    return af.Collection(
        galaxies=af.Collection(
            lens=af.Model(al.Galaxy, redshift=0.5, mass=mass, **({} if lens_light is None else {"bulge": lens_light})),
            source=af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization),
        )
    )


def analysis_for(masked_lens, cut=None):
    """PyAutoLens' imaging analysis of a prepared lens (numba sparse path; JAX is slower on CPU).

    With a `PositionCut`, models whose images do not meet skip the inversion."""
    adapt = None
    if masked_lens.mesh_grid is not None:  # a Delaunay mesh: its image-plane grid
        adapt = al.AdaptImages(galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": masked_lens.mesh_grid})
    kind = _Analysis if cut is None else functools.partial(_CutAnalysis, cut)
    return kind(
        evidence=masked_lens.evidence,
        dataset=masked_lens.dataset,
        adapt_images=adapt,
        settings=masked_lens.solver,
        raise_inversion_positions_likelihood_exception=False,
        use_jax=False,
    )


@dataclass(frozen=True)
class PositionCut:
    """The arcs' peaks a model must trace back to one source position (`reconstruction.positions`).

    A model that traces the brightest peak more than `max_spread` theta_E from every
    other peak splits the source into copies, M21's unphysical solutions: it gets
    `CUT_LOG_LIKELIHOOD` less a slope in the spread and no inversion, so the sampler
    spends a few deflections (~0.2 ms), not an inversion (~40 ms), on that part of the
    prior, and never ends there. PyAutoLens' `PositionsLH` adds a penalty to the
    inverted likelihood instead, paying the inversion on every call.
    """

    peaks: np.ndarray  # (n, 2) arcsec (y, x), `positions.arc_peaks`
    max_spread: float  # theta_E

    @classmethod
    def from_settings(cls, peaks, settings):
        """A cut from a lens's peaks and `positions.PositionSettings`; None when off or fewer than two peaks."""
        if settings is None or peaks is None or len(peaks) < 2:
            return None
        return cls(np.asarray(peaks, float), float(settings.max_spread))

    def excess(self, mass):
        """Spread / theta_E beyond the cut through a PyAutoLens mass profile (<= 0: the images meet)."""
        return positions.spread_through(mass, self.peaks) / float(mass.einstein_radius) - self.max_spread


class _Analysis(al.AnalysisImaging):
    """`AnalysisImaging` whose likelihood is the lens's `delaunay.Evidence` where it has one: the
    same value as PyAutoLens' fit, without its per-call objects."""

    def __init__(self, evidence=None, **kwargs):
        super().__init__(**kwargs)
        self.evidence = evidence

    def log_likelihood_function(self, instance, shared=None):
        if self.evidence is None:
            return super().log_likelihood_function(instance, shared)
        try:
            coefficient = instance.galaxies.source.pixelization.regularization.coefficient
            return self.evidence(instance.galaxies.lens.mass, coefficient)
        except Exception as error:  # as PyAutoLens' analysis: the sampler resamples a failed model
            raise_fit_exception(error)


class _CutAnalysis(_Analysis):
    """`AnalysisImaging` whose models failing a `PositionCut` skip the inversion; counts them."""

    def __init__(self, cut, **kwargs):
        super().__init__(**kwargs)
        self.cut = cut
        self.cut_calls = 0

    def log_likelihood_function(self, instance, shared=None):
        excess = self.cut.excess(instance.galaxies.lens.mass)
        if excess > 0.0:
            self.cut_calls += 1
            return CUT_LOG_LIKELIHOOD - CUT_SLOPE * excess
        return super().log_likelihood_function(instance, shared)


class _Nautilus(af.Nautilus):
    """PyAutoFit's Nautilus with the bound networks' settings passed (PyAutoFit does not pass them).

    No visualisation after the fit: every PyAutoLens figure is off (config/autolens), yet
    PyAutoFit's post-fit visualisation step still ran for ~3 s of a 45 s fit (docs/m21.md);
    hybridlens draws its figures from HDF5.
    """

    _visualize_fit = False

    def __init__(self, network_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.network_kwargs = dict(network_kwargs or {"hidden_layer_sizes": NAUTILUS_NETWORK_LAYERS})

    @property
    def sampler_cls(self):
        return functools.partial(super().sampler_cls, neural_network_kwargs=self.network_kwargs)


def fit_sie(masked_lens, priors, search, name, seed, checkpoint=False, slope=None, cut=None):
    """Run Nautilus on one lens to convergence (a power law when `slope` has a prior); returns a `FitResult`.

    Nautilus' own checkpoint (an HDF5 file rewritten as the sampler goes) is off
    by default: a killed job reruns its lens, and the write costs time per batch.
    `cut`: a `PositionCut` (None: every model is inverted).
    """
    model = sie_model(priors, masked_lens.mesh(), slope, masked_lens.lens_light)
    # A fresh folder per fit: PyAutoFit would otherwise "resume" a finished fit of the
    # same name and model left by a killed job, returning a result without samples.
    prefix = f"fit-{uuid.uuid4().hex}"
    nautilus = _Nautilus(
        network_kwargs=search.network_kwargs(),
        name=name,
        path_prefix=prefix,
        n_live=search.n_live,
        n_like_max=search.max_calls,
        f_live=search.f_live,
        n_eff=search.n_eff,
        n_batch=search.n_batch,
        n_networks=search.n_networks,
        n_update=search.n_update,
        number_of_cores=1,
        seed=int(seed),
        silence=True,
        verbose=False,
        iterations_per_full_update=10**9,
        checkpoint=checkpoint,
    )
    start = time.perf_counter()
    try:
        analysis = analysis_for(masked_lens, cut)
        with bound_networks.lean_training(search.network_trainer == "hybridlens"):
            result = nautilus.fit(model=model, analysis=analysis)
    finally:
        shutil.rmtree(Path(af.conf.instance.output_path) / prefix, ignore_errors=True)
    seconds = time.perf_counter() - start
    samples = result.samples
    n_calls = int(samples.samples_info["total_samples"])
    values = parameter_table(model, samples.parameter_lists)
    for held in PARAMETERS:  # a fixed prior is no model parameter: a constant column, so rows keep their shape
        if getattr(priors, held).kind == "fixed":
            values[held] = np.full(len(samples.parameter_lists), getattr(priors, held).mean)
    summary = posterior_summary(values, np.asarray(samples.weight_list, float))
    log_likelihood = np.asarray(samples.log_likelihood_list, float)
    best = int(np.argmax(log_likelihood))
    return FitResult(
        max_likelihood={
            name: float(column[best]) % ANGLE_PERIOD if name == "angle" else float(column[best])
            for name, column in values.items()
        },
        **summary,
        log_evidence=float(samples.log_evidence),
        max_log_likelihood=float(log_likelihood[best]),
        n_calls=n_calls,
        seconds=float(seconds),
        hit_call_cap=n_calls >= search.max_calls,
        cut_calls=getattr(analysis, "cut_calls", 0),
    )


def parameter_table(model, parameter_lists):
    """{parameter: samples} from PyAutoFit's sample vectors, by each parameter's path in the model."""
    array = np.asarray(parameter_lists, float)
    names = {"centre_0": "centre_y", "centre_1": "centre_x"}
    table = {}
    for column, path in enumerate(model.paths):
        if path[-1] in FITTED or path[-1] in names:
            table[names.get(path[-1], path[-1])] = array[:, column]
    return {name: table[name] for name in FITTED if name in table}


def weighted_quantiles(values, weights, quantiles):
    """Quantiles of weighted samples (linear interpolation of the weighted CDF)."""
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    cdf = (cdf - 0.5 * weights[order]) / cdf[-1]
    return np.interp(quantiles, cdf, values[order])


def unwrap_angles(angles, weights, period=ANGLE_PERIOD):
    """Angles moved by whole periods to lie within half a period of their circular mean.

    A posterior on phi that straddles 0/180 degrees (e.g. samples at 178 and 2)
    then has its median and interval on one side instead of at 90 degrees.
    """
    phase = 2.0 * np.pi * np.asarray(angles) / period
    centre = period * np.angle(np.sum(weights * np.exp(1j * phase))) / (2.0 * np.pi)
    return centre + (np.asarray(angles) - centre + 0.5 * period) % period - 0.5 * period


def posterior_summary(values, weights):
    """Median and 16/84th percentiles per parameter; angles unwrapped first, medians reported in [0, 180)."""
    out = {"median": {}, "lower": {}, "upper": {}}
    for name, column in values.items():
        column = unwrap_angles(column, weights) if name == "angle" else column
        low, median, high = weighted_quantiles(column, weights, [0.16, 0.5, 0.84])
        if name == "angle":
            shift = median - median % ANGLE_PERIOD
            low, median, high = low - shift, median - shift, high - shift
        out["median"][name], out["lower"][name], out["upper"][name] = float(median), float(low), float(high)
    return out
