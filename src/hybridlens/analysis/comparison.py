"""P21's PyAutoLens methods on one test-set lens: blind, + BNN (uniform), + BNN (Gaussian 1 sigma).

Every method runs the same search (`modelling.search` with `p21_comparison.search`
on top) on the same annular mask
and inversion; only the priors differ (`informed_priors`). A power-law set is
fitted with a power law. A lens that cannot be fitted (flagged simulation, no
mask, no ring above threshold for the blind prior, no BNN prediction, a fit
that raised) gets a flag and a reason; the other lenses and methods go on.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridlens.fitting import informed_priors, modelling
from hybridlens.flags import ComparisonFlag, is_set
from hybridlens.reconstruction import inversion, masking
from hybridlens.simulation.p21_testsets import TRUTH_NAMES
from hybridlens.vocabulary import P21_ESTIMATORS, P21_METHODS


def prediction_from(columns, row):
    """The BNN's prediction of one lens from `predict_bnn` columns, or None if not finite."""
    names = ("einstein_radius", "axis_ratio", "angle", "slope")
    values = {}
    for name in names:
        mean, sigma = f"{name}_mean", f"{name}_sigma"
        if mean in columns:
            values[name], values[f"{name}_sigma"] = float(columns[mean][row]), float(columns[sigma][row])
    if not all(np.isfinite(v) for v in values.values()) or "einstein_radius" not in values:
        return None
    return informed_priors.Prediction(**values)


def priors_for(method, lens, prediction, modelling_settings, prior_settings, power_law):
    """The method's `ModelPriors` and `ComparisonFlag` notes (`RING_CLIPPED`, `RING_SMOOTHED`), or (None, flag)."""
    centre = tuple(lens["annulus"][f"centre_{axis}"] for axis in ("y", "x"))
    if method == "blind":
        grid = np.stack(masking.pixel_coordinates(lens["image"].shape, lens["survey"]["pixel_scale"]), axis=-1)
        cut = (prior_settings.threshold_sigma, prior_settings.min_region_pixels)
        ring, notes = informed_priors.fit_ring(lens["image"], lens["noise_map"], grid, *cut), 0
        if ring is None and prior_settings.smooth_pixels > 0:  # faint arcs: S/N 20 in all, < 3 per pixel
            image, noise_map = informed_priors.smoothed(lens["image"], lens["noise_map"], prior_settings.smooth_pixels)
            ring, notes = informed_priors.fit_ring(image, noise_map, grid, *cut), ComparisonFlag.RING_SMOOTHED
        if ring is None:
            return None, ComparisonFlag.NO_RING
        annulus = lens["annulus"]
        ring, clipped = informed_priors.guarded_ring(ring, annulus["inner_radius"], annulus["outer_radius"])
        priors = informed_priors.blind_priors(ring, centre, modelling_settings["priors"], prior_settings, power_law)
        return priors, notes | (ComparisonFlag.RING_CLIPPED if clipped else 0)
    if prediction is None:
        return None, ComparisonFlag.NO_PREDICTION
    build = informed_priors.bnn_uniform_priors if method == "bnn_uniform" else informed_priors.bnn_gaussian_priors
    return build(prediction, centre, modelling_settings["priors"], prior_settings, power_law), 0


def describe(priors):
    """Flat prior columns, the slope's too when the model is a power law."""
    out = priors.sie.describe()
    if priors.slope is not None:
        out["prior_slope_kind"] = modelling.PRIOR_KIND_CODES[priors.slope.kind]
        out.update(
            {f"prior_slope_{key}": float(getattr(priors.slope, key)) for key in ("low", "high", "mean", "sigma")}
        )
    return out


def fit_lens(lens, method, prediction, settings, seed, log):
    """One method on one lens: a flat row (truths, priors, fit, cost, flags) and a reason."""
    truth = {f"true_{name}": lens["truth"].get(name, np.nan) for name in TRUTH_NAMES}
    row = {"method": float(P21_METHODS.index(method)), "is_double": lens["truth"].get("is_double", np.nan), **truth}
    if not masking.usable(lens["simulation_flags"], lens["mask_flags"]):
        return {**row, "flags": float(ComparisonFlag.UNUSABLE)}, ComparisonFlag.UNUSABLE.meaning
    power_law = settings["power_law"]
    priors, flag = priors_for(method, lens, prediction, settings["modelling"], settings["priors"], power_law)
    if priors is None:
        return {**row, "flags": float(flag)}, flag.meaning
    row.update(describe(priors))
    try:
        masked = inversion.MaskedLens.from_lens(lens, settings["inversion"])
        search = modelling.SearchSettings.from_config(settings["modelling"]["search"], settings.get("search"))
        result = modelling.fit_sie(masked, priors.sie, search, method, seed, slope=priors.slope)
    except Exception as error:  # flag this lens x method; the others go on
        log.exception("%s fit failed", method)
        return {**row, "flags": float(ComparisonFlag.FIT_FAILED)}, f"fit failed: {type(error).__name__}: {error}"
    row.update(result.row())
    row["flags"] = float(flag | (ComparisonFlag.CALL_CAP if result.hit_call_cap else 0))
    return row, ComparisonFlag.CALL_CAP.meaning if result.hit_call_cap else "converged"


# --- the comparison: P21 Tables 1-4, timing (Fig 19), doubles (section 5.3) ---------------------------

FRACTIONAL = ("einstein_radius", "axis_ratio")  # P21 quotes these errors as fractions of the truth
PARAMETERS = ("einstein_radius", "angle", "axis_ratio", "slope")


def errors(name, predicted, true):
    """pred - true per lens: fractional for theta_E and q, wrapped to (-90, 90] degrees for phi."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if name == "angle":
        return (predicted - true + 90.0) % 180.0 - 90.0
    if name in FRACTIONAL:
        return (predicted - true) / true
    return predicted - true


def interval68(values):
    """Half the central 68.27 % range of the finite values (P21's error measure); NaN if fewer than 2."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan")
    low, high = np.percentile(values, [15.865, 84.135])
    return float(0.5 * (high - low))


def method_estimates(method, fits, predictions):
    """{parameter: estimates per lens} of one method: BNN means, or the fits' posterior medians (NaN if flagged)."""
    if method == "bnn":
        return {name: predictions[f"{name}_mean"] for name in PARAMETERS if f"{name}_mean" in predictions}
    out = {}
    for name in PARAMETERS:
        column = fits.get(f"median_{name}")
        if column is not None:
            usable = ~is_set(fits["flags"], ComparisonFlag.NOT_FITTED)
            out[name] = np.where(usable, column, np.nan)
    return out


def table_rows(testset, truth, estimates_by_method, subset=None):
    """One row per method: n used, and the 68 % interval of each parameter's error."""
    rows = []
    for method, estimates in estimates_by_method.items():
        keep = np.ones(len(truth["einstein_radius"]), bool) if subset is None else subset
        row = {"testset": testset, "method": method}
        for name, values in estimates.items():
            if name == "slope" and not np.isfinite(truth.get("slope", np.array([np.nan]))).any():
                continue
            error = errors(name, np.asarray(values)[keep], np.asarray(truth[name])[keep])
            row[name] = interval68(error)
            row[f"n_{name}"] = int(np.isfinite(error).sum())
        rows.append(row)
    return rows


def _ratio(value, baseline):
    """value / baseline, NaN where the baseline's interval is zero (one lens, or identical errors)."""
    return value / baseline if baseline else np.nan


def error_ratios(rows, baseline="blind"):
    """{testset: {parameter: {method: error / baseline's error}}} from `table_rows` rows (P21 quotes these)."""
    out = {}
    for testset in dict.fromkeys(row["testset"] for row in rows):
        mine = {row["method"]: row for row in rows if row["testset"] == testset}
        if baseline not in mine:
            continue
        out[testset] = {
            name: {method: _ratio(row.get(name, np.nan), mine[baseline][name]) for method, row in mine.items()}
            for name in PARAMETERS
            if name in mine[baseline]
        }
    return out


# P21 Tables 1-3 (68 % intervals over 1,000 images; fractional for theta_E and q, degrees for phi) and
# section 4.5's mean speed-ups over blind: the paper's numbers, beside ours in the summary, never an input.
# Table 4 (EAGLE lenses, sets f and g) is not legible in the paper's text and is left out. (P21's tables
# head the theta_E column "arcsec" while its text calls the differences fractional; we follow the text.)
_P21_COLUMNS = {
    "sie_parametric": {"einstein_radius": (0.0090, 0.0089, 0.0065, 0.0055), "angle": (4.92, 4.44, 2.81, 2.47),
                       "axis_ratio": (0.018, 0.027, 0.021, 0.017)},
    "sie_real": {"einstein_radius": (0.013, 0.013, 0.010, 0.009), "angle": (6.10, 4.22, 3.02, 2.57),
                 "axis_ratio": (0.029, 0.038, 0.030, 0.026)},
    "sie_real_los": {"einstein_radius": (0.021, 0.029, 0.026, 0.023), "angle": (30.7, 33.8, 28.0, 27.1),
                     "axis_ratio": (0.067, 0.077, 0.068, 0.065)},
    "power_law_real": {"einstein_radius": (0.050, 0.065, 0.049, 0.029), "angle": (7.37, 6.53, 2.63, 2.50),
                       "axis_ratio": (0.083, 0.106, 0.080, 0.062), "slope": (0.27, 0.29, 0.25, 0.20)},
    "power_law_real_los": {"einstein_radius": (0.070, 0.091, 0.068, 0.060), "angle": (32.2, 44.1, 34.1, 32.1),
                           "axis_ratio": (0.093, 0.143, 0.096, 0.091), "slope": (0.19, 0.26, 0.19, 0.18)},
}  # fmt: skip
P21_REFERENCE = {
    "tables": {
        testset: {
            method: {name: values[i] for name, values in columns.items()} for i, method in enumerate(P21_ESTIMATORS)
        }
        for testset, columns in _P21_COLUMNS.items()
    },
    "speed_up_over_blind": {  # Fig 19 sets: SIE + HUDF, the same with LOS, EAGLE + HUDF with LOS
        "bnn_uniform": {"sie_real": 1.34, "sie_real_los": 1.08, "complex_real_los": 1.14, "mean": 1.19},
        "bnn_gaussian": {"sie_real": 1.56, "sie_real_los": 1.37, "complex_real_los": 2.25, "mean": 1.73},
    },
}


def timing(fits_by_method):
    """Per PyAutoLens method: mean seconds and calls per fit, cap hits, failures; speed-up over blind."""
    out = {}
    for method, fits in fits_by_method.items():
        flags = np.asarray(fits["flags"], int)
        fitted = np.isfinite(fits.get("seconds", np.full(flags.shape, np.nan)))
        seconds = np.asarray(fits.get("seconds", np.full(flags.shape, np.nan)), float)
        calls = np.asarray(fits.get("n_calls", np.full(flags.shape, np.nan)), float)
        out[method] = {
            "fits": int(fitted.sum()),
            "mean_seconds": float(np.nanmean(seconds)) if fitted.any() else float("nan"),
            "mean_calls": float(np.nanmean(calls)) if fitted.any() else float("nan"),
            "call_cap_hits": int(is_set(flags, ComparisonFlag.CALL_CAP).sum()),
            "failed_or_not_fitted": int(is_set(flags, ComparisonFlag.NOT_FITTED).sum()),
        }
    blind = out.get("blind", {}).get("mean_seconds", float("nan"))
    for method in out:
        out[method]["speed_up_over_blind"] = blind / out[method]["mean_seconds"] if out[method]["fits"] else np.nan
    return out


@dataclass
class Comparison:
    """P21 Tables 1-4 and the timing of Fig 19 over the test sets, as `compare` gathers them."""

    rows: list  # `table_rows` of each set, every lens
    double_rows: list  # the same for the doubles and the other lenses ("images": "doubles" / "non_doubles")
    errors_by_set: dict  # {set: {method: {parameter: error per lens}}}: the error distributions' figure
    seconds_by_method: dict  # {PyAutoLens method: wall seconds per fit, every set}: the timing figure
    timing_by_set: dict  # {set: `timing` of its fits}
    timing: dict  # `timing` of every set's fits together

    def table(self):
        """One row per set and method: the 68 % intervals and how many lenses each used."""
        return pd.DataFrame(self.rows)

    def summary(self, n_images):
        """The JSON beside the error distributions: our tables, doubles, timing, ratios, P21's numbers."""
        return {
            "tables": self.rows,
            "doubles": self.double_rows,
            "timing": self.timing,
            "timing_by_set": self.timing_by_set,
            "error_ratios_to_blind": error_ratios(self.rows),
            "n_images_per_set": n_images,
            "p21_reference": P21_REFERENCE,
        }

    def timing_summary(self):
        """The JSON beside the timing figure: per method over every set, per set, and P21's speed-ups."""
        return {**self.timing, "by_set": self.timing_by_set, "p21_reference": P21_REFERENCE["speed_up_over_blind"]}

    def markdown(self, n_images):
        """Our tables, then P21 Tables 1-3 for reference."""
        reference = pd.DataFrame(
            [
                {"testset": testset, "method": method, **values}
                for testset, by_method in P21_REFERENCE["tables"].items()
                for method, values in by_method.items()
            ]
        )
        return (
            f"68 % intervals of prediction - truth (fractional for theta_E and q; degrees for phi), "
            f"{n_images} images per set\n\n"
            + self.table().to_markdown(index=False, floatfmt=".4f")
            + "\n\nP21 Tables 1-3 (1,000 images per set), for reference\n\n"
            + reference.to_markdown(index=False, floatfmt=".4f")
            + "\n"
        )


def compare(sets, truths, predictions, fits):
    """Every set's tables (all lenses, doubles, the other lenses), errors and timing: a `Comparison`.

    `truths[set]`: the test set's parameter table (the truths, `is_double`);
    `predictions[set]`: `predict_bnn`'s columns (<name>_mean, <name>_sigma);
    `fits[set][method]`: `p21_fit`'s rows for each of `P21_METHODS` (flags,
    median_<name>, seconds, n_calls). Flagged fits count as not estimated.
    """
    rows, double_rows, errors_by_set, seconds_by_method, fits_by_method_all, timing_by_set = [], [], {}, {}, {}, {}
    for testset in sets:
        truth_table = truths[testset]
        truth = {name: truth_table[name].to_numpy(float) for name in (*PARAMETERS, "is_double") if name in truth_table}
        columns = {k: predictions[testset][k].to_numpy(float) for k in predictions[testset]}
        estimates = {"bnn": method_estimates("bnn", None, columns)}
        fits_by_method = {}
        for method in P21_METHODS:
            table = fits[testset][method]
            method_fits = {column: table[column].to_numpy(float) for column in table}
            method_fits["flags"] = table["flags"].to_numpy(int)
            fits_by_method[method] = method_fits
            fits_by_method_all.setdefault(method, []).append(method_fits)
            estimates[method] = method_estimates(method, method_fits, None)
            seconds_by_method.setdefault(method, []).extend(method_fits.get("seconds", []))
        rows += table_rows(testset, truth, estimates)
        doubles = truth.get("is_double", np.zeros(len(truth["einstein_radius"]))) == 1
        for label, subset in (("doubles", doubles), ("non_doubles", ~doubles)):
            for row in table_rows(testset, truth, estimates, subset):
                double_rows.append({**row, "images": label})
        errors_by_set[testset] = {
            method: {name: errors(name, values, truth[name]) for name, values in est.items() if name in truth}
            for method, est in estimates.items()
        }
        timing_by_set[testset] = timing(fits_by_method)
        for method, method_fits in fits_by_method.items():  # which lenses of the set: listed, not only counted
            hit = is_set(method_fits["flags"], ComparisonFlag.CALL_CAP)
            timing_by_set[testset][method]["call_cap_hit_fits"] = [{"lens_index": int(k)} for k in np.flatnonzero(hit)]
    merged = {
        method: {
            key: np.concatenate([f.get(key, np.full(len(f["flags"]), np.nan)) for f in parts])
            for key in ("seconds", "n_calls", "flags")
        }
        for method, parts in fits_by_method_all.items()
    }
    return Comparison(rows, double_rows, errors_by_set, seconds_by_method, timing_by_set, timing(merged))
