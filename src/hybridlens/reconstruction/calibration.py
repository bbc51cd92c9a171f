"""M21 section 3.2 "full analysis": where do under / over-magnified solutions lie?

For each calibration lens three non-linear fits are run, identical except for the
Einstein-radius prior: U[under] x theta_true forces the under-magnified solution,
a narrow U[correct] x theta_true the correct one, U[over] x theta_true the
over-magnified one. Straight lines theta_U = a theta_E + b and
theta_O = c theta_E + d through the inferred radii are the relations the fast
training set (and the hybrid loop's prior moves) use.
"""

import logging

import numpy as np

from hybridlens.fitting import modelling
from hybridlens.analysis.evaluation import describe
from hybridlens.vocabulary import CLASSES

log = logging.getLogger(__name__)


def stratified_lenses(theta, usable, n):
    """Indices of `n` usable lenses at the (k + 1/2)/n quantiles of their Einstein radii.

    The lines need leverage in theta_E: n lenses spread over the distribution
    constrain a slope far better than the first n drawn, which may bunch up.
    """
    candidates = np.flatnonzero(np.asarray(usable, bool))
    if len(candidates) < n:
        raise ValueError(
            f"calibrate_relations.n_lenses = {n} but only {len(candidates)} usable simulated lenses: "
            "raise simulate_slacs.n_images or lower calibrate_relations.n_lenses"
        )
    order = candidates[np.argsort(np.asarray(theta, float)[candidates], kind="stable")]
    return order[((np.arange(n) + 0.5) * len(order) / n).astype(int)]


def class_range(name, theta_true, settings):
    """Einstein-radius prior range (arcsec) that forces solution class `name`."""
    low, high = settings["class_ratio_ranges"][name]
    return low * theta_true, high * theta_true


def class_priors(name, truth, settings, modelling_settings):
    """M21's full-analysis priors: all uniform over their full ranges, theta_E over the class's range."""
    return modelling.uniform_priors(
        truth.centre, class_range(name, truth.einstein_radius, settings), modelling_settings["priors"]
    )


def search_settings(settings, modelling_settings):
    """The calibration's search: `modelling.search` with `calibrate_relations.search` on top.

    The relations use only each fit's maximum-likelihood theta_E, inside a prior
    that already forces the class, so the calibration may stop earlier (a looser
    f_live, fewer effective samples) than fits whose posteriors are reported.
    """
    return modelling.SearchSettings.from_config(modelling_settings["search"], settings.get("search"))


def calibrate_lens(masked_lens, truth, settings, modelling_settings, seed):
    """The three constrained fits of one lens: one `FitResult` per class."""
    search = search_settings(settings, modelling_settings)
    return [
        modelling.fit_sie(masked_lens, class_priors(name, truth, settings, modelling_settings), search, name, seed + k)
        for k, name in enumerate(CLASSES)
    ]


def linear_relation(theta_true, theta_inferred):
    """Least-squares line theta_inferred = slope * theta_true + intercept.

    Returns slope, intercept, their 1-sigma errors (from the residual scatter)
    and the rms scatter about the line.
    """
    x = np.asarray(theta_true, dtype=float)
    y = np.asarray(theta_inferred, dtype=float)
    good = np.isfinite(x) & np.isfinite(y)
    x, y = x[good], y[good]
    if x.size < 2 or np.ptp(x) == 0:
        return {
            "slope": np.nan,
            "intercept": np.nan,
            "slope_error": np.nan,
            "intercept_error": np.nan,
            "scatter": np.nan,
            "n": int(x.size),
        }
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (slope * x + intercept)
    if x.size == 2:  # a line through two points: exact, with unknown errors
        return {
            "slope": float(slope),
            "intercept": float(intercept),
            "slope_error": np.inf,
            "intercept_error": np.inf,
            "scatter": np.nan,
            "n": 2,
        }
    scatter = float(np.sqrt((residual**2).sum() / (x.size - 2)))
    covariance = scatter**2 * np.linalg.inv(design.T @ design)
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "slope_error": float(np.sqrt(covariance[0, 0])),
        "intercept_error": float(np.sqrt(covariance[1, 1])),
        "scatter": scatter,
        "n": int(x.size),
    }


def relations(table, max_relative_slope_error=np.inf):
    """Under / correct / over relations from a calibration table (columns truth_*, ml_*, label).

    Each line gets `reliable` = its slope is positive and known to better than
    `max_relative_slope_error`; an unreliable line is reported (and logged)
    but must not steer the training set or the prior moves.
    """
    out = {}
    for label, name in enumerate(CLASSES):
        rows = table[table["label"] == label]
        line = linear_relation(rows["truth_einstein_radius"], rows["ml_einstein_radius"])
        relative = line["slope_error"] / abs(line["slope"]) if line["slope"] else np.inf
        line["relative_slope_error"] = float(relative) if np.isfinite(relative) else np.inf
        line["reliable"] = bool(line["slope"] > 0 and line["relative_slope_error"] <= max_relative_slope_error)
        if not line["reliable"]:
            log.warning(
                "%s relation unreliable: slope %.3f +- %.3f (relative error %.2f > %.2f or slope <= 0) from %d lenses; "
                "the training set falls back to the class range",
                name,
                line["slope"],
                line["slope_error"],
                line["relative_slope_error"],
                max_relative_slope_error,
                line["n"],
            )
        out[name] = line
    return out


def is_reliable(relation):
    """A relation (as stored) the training set may use."""
    return relation is not None and bool(relation.get("reliable", False)) and np.isfinite(relation.get("slope", np.nan))


def fit_errors(table):
    """Robust 1-sigma errors of q, phi (deg) and each centre coordinate (") of the calibration fits.

    Every class pooled: how far a real fit strays from the truth besides theta_E
    (the training set's perturbations). Robust (1.4826 x the median absolute
    error), as phi is meaningless for near-round lenses and one such fit would
    dominate an rms.
    """
    from hybridlens.analysis.evaluation import angle_error

    good = table[np.isfinite(table["median_axis_ratio"])] if "median_axis_ratio" in table else table.iloc[:0]
    centre = (
        np.concatenate(
            [
                good["median_centre_y"] - good["truth_lens_centre_y"],
                good["median_centre_x"] - good["truth_lens_centre_x"],
            ]
        )
        if len(good)
        else np.array([])
    )

    def robust(values):
        values = np.asarray(values, float)
        return float(1.4826 * np.median(np.abs(values))) if values.size else float("nan")

    return {
        "axis_ratio": robust(good["median_axis_ratio"] - good["truth_axis_ratio"]),
        "angle": robust(angle_error(good["median_angle"], good["truth_angle"])),
        "centre": robust(centre),
        "n": float(len(good)),
    }


# M21's published lines, drawn beside ours for comparison only (never used as inputs).
M21_PUBLISHED_RELATIONS = {"under": {"slope": 0.46, "intercept": -0.08}, "over": {"slope": 2.11, "intercept": 0.16}}


def full_analysis_pairs(masked_lens, truth, settings, modelling_settings, seed, source_shape, source_extent):
    """M21 section 3.3: U/C/O reconstructions at the maximum-likelihood models of the three fits.

    Returns the `FitResult`s and, per class, the inversion products of its best model.
    """
    results = calibrate_lens(masked_lens, truth, settings, modelling_settings, seed)
    products = [
        masked_lens.products(r.mass(), r.max_likelihood["coefficient"], source_shape, source_extent) for r in results
    ]
    return results, products


def summary(table, lines):
    """What Fig 4's JSON reports: our lines beside M21's, fractional errors, fit cost and call-cap hits."""
    per_class = {name: table[table["label"] == k] for k, name in enumerate(CLASSES)}
    hit = table["hit_call_cap"] > 0 if "hit_call_cap" in table else np.zeros(len(table), bool)
    return {
        "ours": lines,
        "m21_reference": M21_PUBLISHED_RELATIONS,
        "n_lenses": int(table["lens_index"].nunique()),
        "mean_fractional_error": {
            name: float(np.mean(rows["ml_einstein_radius"] / rows["truth_einstein_radius"] - 1))
            for name, rows in per_class.items()
        },
        "ratio_to_truth": {
            name: describe(rows["ml_einstein_radius"] / rows["truth_einstein_radius"])
            for name, rows in per_class.items()
        },
        "fit_seconds_median": float(np.median(table["seconds"])) if len(table) else float("nan"),
        "fit_calls_median": float(np.median(table["n_calls"])) if len(table) else float("nan"),
        "call_cap_hits": int(hit.sum()),
        "call_cap_hit_fits": [
            {"lens_index": int(row.lens_index), "class": CLASSES[int(row.label)]} for row in table[hit].itertuples()
        ],
    }
