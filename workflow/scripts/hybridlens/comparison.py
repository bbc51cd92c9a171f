"""P21's PyAutoLens methods on one test-set lens: blind, + BNN (uniform), + BNN (Gaussian 1 sigma).

Every method runs the same search (`modelling.search`) on the same annular mask
and inversion; only the priors differ (`informed_priors`). A power-law set is
fitted with a power law. A lens that cannot be fitted (flagged simulation, no
mask, no ring above threshold for the blind prior, no BNN prediction, a fit
that raised) gets a flag and a reason; the other lenses and methods go on.
"""

import numpy as np

from hybridlens import informed_priors, inversion, masking, modelling
from hybridlens.p21_testsets import TRUTH_NAMES

METHODS = ("blind", "bnn_uniform", "bnn_gaussian")  # P21: PyAL, PyAL + BNN, PyAL + BNN (1 sigma)

FLAG_UNUSABLE = 1
FLAG_NO_RING = 2
FLAG_NO_PREDICTION = 4
FLAG_FIT_FAILED = 8
FLAG_CALL_CAP = 16
FLAG_BITS = {
    FLAG_UNUSABLE: "simulation or mask flagged: not fitted",
    FLAG_NO_RING: "blind prior: no pixels above the ring-fit threshold",
    FLAG_NO_PREDICTION: "no (finite) BNN prediction for this lens",
    FLAG_FIT_FAILED: "the fit raised",
    FLAG_CALL_CAP: "the fit stopped at the likelihood-call cap",
}


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
    """The method's `ModelPriors`, or (None, flag) when it cannot be built."""
    centre = tuple(lens["annulus"][f"centre_{axis}"] for axis in ("y", "x"))
    if method == "blind":
        grid = masking.pixel_coordinates(lens["image"].shape, lens["survey"]["pixel_scale"])
        ring = informed_priors.fit_ring(
            lens["image"],
            lens["noise_map"],
            np.stack(grid, axis=-1),
            prior_settings.threshold_sigma,
            prior_settings.min_region_pixels,
        )
        if ring is None:
            return None, FLAG_NO_RING
        return informed_priors.blind_priors(ring, centre, modelling_settings["priors"], prior_settings, power_law), 0
    if prediction is None:
        return None, FLAG_NO_PREDICTION
    build = informed_priors.bnn_uniform_priors if method == "bnn_uniform" else informed_priors.bnn_gaussian_priors
    return build(prediction, centre, modelling_settings["priors"], prior_settings, power_law), 0


def describe(priors):
    """Flat prior columns, the slope's too when the model is a power law."""
    out = priors.sie.describe()
    if priors.slope is not None:
        codes = {"uniform": 0.0, "log_uniform": 1.0, "gaussian": 2.0}
        out["prior_slope_kind"] = codes[priors.slope.kind]
        out.update(
            {f"prior_slope_{key}": float(getattr(priors.slope, key)) for key in ("low", "high", "mean", "sigma")}
        )
    return out


def fit_lens(lens, method, prediction, settings, seed, log):
    """One method on one lens: a flat row (truths, priors, fit, cost, flags) and a reason."""
    truth = {f"true_{name}": lens["truth"].get(name, np.nan) for name in TRUTH_NAMES}
    row = {"method": float(METHODS.index(method)), "is_double": lens["truth"].get("is_double", np.nan), **truth}
    if not masking.usable(lens["simulation_flags"], lens["mask_flags"]):
        return {**row, "flags": float(FLAG_UNUSABLE)}, FLAG_BITS[FLAG_UNUSABLE]
    power_law = settings["power_law"]
    priors, flag = priors_for(method, lens, prediction, settings["modelling"], settings["priors"], power_law)
    if priors is None:
        return {**row, "flags": float(flag)}, FLAG_BITS[flag]
    row.update(describe(priors))
    try:
        masked = inversion.MaskedLens.from_lens(lens, settings["inversion"])
        search = modelling.SearchSettings.from_config(settings["modelling"]["search"])
        result = modelling.fit_sie(masked, priors.sie, search, method, seed, slope=priors.slope)
    except Exception as error:  # flag this lens x method; the others go on
        log.exception("%s fit failed", method)
        return {**row, "flags": float(FLAG_FIT_FAILED)}, f"fit failed: {type(error).__name__}: {error}"
    row.update(result.row())
    row["flags"] = float(FLAG_CALL_CAP if result.hit_call_cap else 0)
    return row, FLAG_BITS[FLAG_CALL_CAP] if result.hit_call_cap else "converged"


# --- the comparison: P21 Tables 1-4, timing (Fig 19), doubles (section 5.3) ---------------------------

ALL_METHODS = ("bnn", *METHODS)  # the BNN alone, then the three PyAutoLens methods
FRACTIONAL = ("einstein_radius", "axis_ratio")  # P21 quotes these errors as fractions of the truth


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
        return {
            name: predictions[f"{name}_mean"]
            for name in ("einstein_radius", "axis_ratio", "angle", "slope")
            if f"{name}_mean" in predictions
        }
    out = {}
    for name in ("einstein_radius", "axis_ratio", "angle", "slope"):
        column = fits.get(f"median_{name}")
        if column is not None:
            usable = (fits["flags"] & (FLAG_UNUSABLE | FLAG_NO_RING | FLAG_NO_PREDICTION | FLAG_FIT_FAILED)) == 0
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
            "call_cap_hits": int(((flags & FLAG_CALL_CAP) > 0).sum()),
            "failed_or_not_fitted": int(((flags & ~FLAG_CALL_CAP) > 0).sum()),
        }
    blind = out.get("blind", {}).get("mean_seconds", float("nan"))
    for method in out:
        out[method]["speed_up_over_blind"] = blind / out[method]["mean_seconds"] if out[method]["fits"] else np.nan
    return out
