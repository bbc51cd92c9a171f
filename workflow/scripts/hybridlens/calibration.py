"""M21 section 3.2 "full analysis": where do under / over-magnified solutions lie?

For each calibration lens three non-linear fits are run, identical except for the
Einstein-radius prior: U[under] x theta_true forces the under-magnified solution,
a narrow U[correct] x theta_true the correct one, U[over] x theta_true the
over-magnified one. Straight lines theta_U = a theta_E + b and
theta_O = c theta_E + d through the inferred radii are the relations the fast
training set (and the hybrid loop's prior moves) use.
"""

import numpy as np

from hybridlens import inversion, modelling

CLASSES = ("under", "correct", "over")


def class_range(name, theta_true, settings):
    """Einstein-radius prior range (arcsec) that forces solution class `name`."""
    low, high = settings["class_ratio_ranges"][name]
    return low * theta_true, high * theta_true


def calibrate_lens(masked_lens, theta_true, settings, seed):
    """The three constrained fits of one lens, as one row per class."""
    rows = []
    for label, name in enumerate(CLASSES):
        result = modelling.fit_sie(
            masked_lens, class_range(name, theta_true, settings), settings["search"], f"{name}", seed + label
        )
        rows.append({"label": float(label), **result})
    return rows


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
        return {"slope": np.nan, "intercept": np.nan, "slope_error": np.nan, "intercept_error": np.nan,
                "scatter": np.nan, "n": int(x.size)}  # fmt: skip
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (slope * x + intercept)
    dof = max(x.size - 2, 1)
    scatter = float(np.sqrt((residual**2).sum() / dof))
    covariance = scatter**2 * np.linalg.inv(design.T @ design)
    return {
        "slope": float(slope), "intercept": float(intercept),
        "slope_error": float(np.sqrt(covariance[0, 0])), "intercept_error": float(np.sqrt(covariance[1, 1])),
        "scatter": scatter, "n": int(x.size),
    }  # fmt: skip


def relations(table):
    """Under and over relations from a calibration table (columns truth_*, ml_*, label)."""
    out = {}
    for label, name in enumerate(CLASSES):
        rows = table[table["label"] == label]
        out[name] = linear_relation(rows["truth_einstein_radius"], rows["ml_einstein_radius"])
    return out


# M21's published lines, drawn beside ours for comparison only (never used as inputs).
M21_REFERENCE = {"under": {"slope": 0.46, "intercept": -0.08}, "over": {"slope": 2.11, "intercept": 0.16}}


def full_analysis_pairs(masked_lens, theta_true, settings, seed, source_shape, source_extent):
    """M21 section 3.3: U/C/O reconstructions at the maximum-likelihood models of the three fits.

    Returns the fit rows and, per class, the inversion products of its best model.
    """
    rows = calibrate_lens(masked_lens, theta_true, settings, seed)
    products = []
    for row in rows:
        mass = inversion.Mass(
            row["ml_einstein_radius"], row["ml_axis_ratio"], row["ml_angle"], (row["ml_centre_y"], row["ml_centre_x"])
        )
        products.append(masked_lens.products(mass, row["ml_coefficient"], source_shape, source_extent))
    return rows, products
