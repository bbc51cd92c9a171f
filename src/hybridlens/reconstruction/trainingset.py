"""The fast M21 training set: under / correct / over reconstructions by theta_E scans.

M21 keeps position, axis ratio and angle at the truth. Real wrong fits are wrong
in all of them at once, and a classifier that only saw theta_E shifts calls
such fits correct; so with `trainingset.perturbation` each class's model starts
from the truth with q, phi and the centre displaced by Gaussian errors of the
size measured on the pipeline's real first fits (docs/m21.md); the label stays
the class of theta_E, as real fits are judged. (The calibration's own fits,
`calibration.fit_errors`, are too loose at default scale to set them: phi off
by 40-90 degrees.)
theta_E is then searched inside a window
around the value each class is expected at (the measured relations of
`calibration`, intersected with that class's defining range), first on a coarse
grid, then by a bounded 1-D refinement around the best grid point. The
highest-evidence inversion of each class gives one (source reconstruction,
residual) pair. The regularisation coefficient is evidence-maximised at the
true model and re-maximised at each class's best theta_E.
"""

import logging
from pathlib import Path
from dataclasses import dataclass

import h5py
import numpy as np
from scipy.optimize import minimize_scalar

from hybridlens.flags import TrainingPairFlag
from hybridlens.reconstruction import calibration, inversion
from hybridlens.vocabulary import CLASSES, IMAGE_PLANE_MAPS

LABELS = {name: label for label, name in enumerate(CLASSES)}
log = logging.getLogger(__name__)
AXIS_RATIO_RANGE = (0.25, 0.999)  # the blind fits' q prior (modelling.priors.axis_ratio_range's default)


def scan_window(name, theta_true, relation, settings):
    """theta_E interval to search for class `name` (arcsec).

    Without a reliable measured relation (see `calibration.relations`) the
    whole class range is searched: a noisy line would pin the window, and with
    it every U or O row, wherever the line happens to point.
    """
    low, high = calibration.class_range(name, theta_true, settings)
    if name == "correct" or not calibration.is_reliable(relation):
        return low, high
    predicted = relation["slope"] * theta_true + relation["intercept"]
    half = max(settings["window_sigma"] * relation["scatter"], settings["min_window_fraction"] * theta_true)
    window = (max(low, predicted - half), min(high, predicted + half))
    return window if window[0] < window[1] else (low, high)


def maximise_in_window(evidence, window, n_coarse, rtol):
    """Coarse grid then bounded refinement of a 1-D evidence; returns (theta, evidence)."""
    grid = np.linspace(window[0], window[1], n_coarse)
    values = np.array([evidence(theta) for theta in grid])
    best = int(np.argmax(values))
    lower, upper = grid[max(best - 1, 0)], grid[min(best + 1, n_coarse - 1)]
    if upper > lower:
        result = minimize_scalar(
            lambda t: -evidence(t), bounds=(lower, upper), method="bounded", options={"xatol": rtol * grid[best]}
        )
        if -result.fun > values[best]:
            return float(result.x), float(-result.fun)
    return float(grid[best]), float(values[best])


@dataclass
class Pair:
    """One labelled reconstruction: the class, the model inverted, its scan window and the products."""

    label: int
    mass: object  # inversion.Mass; None for a flagged lens
    window: tuple
    products: object  # inversion.Products; None for a flagged lens

    @property
    def einstein_radius(self):
        return self.mass.einstein_radius if self.mass is not None else np.nan


def perturbed(truth, errors, rng, axis_ratio_range=AXIS_RATIO_RANGE):
    """`truth` with q, phi and the centre displaced by N(0, errors[...]) (`calibration.fit_errors`' keys)."""
    if not errors:
        return truth
    dq, dphi, dy, dx = rng.normal(0.0, 1.0, 4) * [
        errors["axis_ratio"],
        errors["angle"],
        errors["centre"],
        errors["centre"],
    ]
    return inversion.Mass(
        truth.einstein_radius,
        float(np.clip(truth.axis_ratio + dq, *axis_ratio_range)),
        float((truth.angle + dphi) % 180.0),
        (truth.centre[0] + float(dy), truth.centre[1] + float(dx)),
    )


def drawn_window(window, rng, fraction):
    """A +-`fraction` window about a theta_E drawn uniformly in `window` (clipped to it).

    M21's U and O rows are each class's highest evidence, which over a whole class
    range sits at its edge (0.1 or 3 x theta_E) whenever the relations are too
    uncertain to narrow it; real wrong fits stop anywhere in the range, at the
    evidence's best nearby. So a wrong class's row is the best theta_E near a drawn one.
    """
    centre = rng.uniform(*window)
    return max(window[0], centre * (1.0 - fraction)), min(window[1], centre * (1.0 + fraction))


def relaxed(masked_lens, mass, coefficient, max_evaluations, axis_ratio_range=AXIS_RATIO_RANGE):
    """`mass` with q, phi and the centre climbed to the evidence's nearby maximum at its theta_E.

    A sampler that ends on a wrong theta_E has fitted everything else to it: the
    source and residual it hands the classifier are those of the best model at that
    theta_E, not of the truth's shape moved to it (M21's pairs). A Nelder-Mead
    simplex from `mass` over (q, phi, y, x), the coefficient held, at most
    `max_evaluations` inversions.
    """
    from scipy.optimize import minimize

    scales = np.array([0.03, 5.0, 0.02, 0.02])  # first simplex steps: q, phi (deg), centre (")

    def unpack(vector):
        q, phi, y, x = vector * scales
        return inversion.Mass(mass.einstein_radius, float(q), float(phi % 180.0), (float(y), float(x)))

    def cost(vector):
        if not axis_ratio_range[0] <= vector[0] * scales[0] <= axis_ratio_range[1]:
            return np.inf
        return -masked_lens.log_evidence(unpack(vector), coefficient)

    x0 = np.array([mass.axis_ratio, mass.angle, *mass.centre]) / scales
    climbed = minimize(
        cost,
        x0,
        method="Nelder-Mead",
        options={"initial_simplex": np.vstack([x0, x0 + np.eye(4)]), "maxfev": int(max_evaluations), "fatol": 0.5},
    )
    return unpack(climbed.x) if np.isfinite(climbed.fun) else mass  # the simplex keeps its best vertex, x0 included


@dataclass(frozen=True)
class WrongSearch:
    """The config's `trainingset.wrong_search`: how a `searched` U / O row is found."""

    draws: int  # uniform Sobol draws of (theta_E, q, phi, centre) (a power of 2)
    max_evaluations: int  # of the Nelder-Mead climb from the best draw
    centre_half_width: float  # arcsec about the true centre (the blind fits' centre prior)

    @classmethod
    def from_config(cls, settings):
        return cls(int(settings["draws"]), int(settings["max_evaluations"]), float(settings["centre_half_width"]))


def searched(masked_lens, truth, window, coefficient, search, rng, axis_ratio_range=AXIS_RATIO_RANGE):
    """The highest evidence with theta_E in `window` and q, phi and the centre free: a wrong fit's model.

    A blind fit that ends wrong has not kept the true shape (M21's rows) nor one near
    it (`relaxed`): it sits where the evidence peaks for its theta_E over the whole
    prior, at q 0.3-0.5 for lenses of true q 0.6-0.9. So, as a sampler's first live
    points do, uniform Sobol draws over the blind priors (theta_E in the class window,
    q in `axis_ratio_range`, phi in [0, 180), centre +-`search.centre_half_width`
    about the truth's), the coefficient held at `coefficient`; then a Nelder-Mead
    climb in all five from the best draw, theta_E kept inside the window.
    """
    from scipy.optimize import minimize
    from scipy.stats import qmc

    half = search.centre_half_width
    low = np.array([window[0], axis_ratio_range[0], 0.0, truth.centre[0] - half, truth.centre[1] - half])
    high = np.array([window[1], axis_ratio_range[1], 180.0, truth.centre[0] + half, truth.centre[1] + half])
    draws = qmc.scale(qmc.Sobol(5, seed=rng).random(search.draws), low, high)

    def mass(vector):
        theta, q, phi, y, x = map(float, vector)
        return inversion.Mass(theta, q, phi % 180.0, (y, x))

    bounded = [0, 1, 3, 4]  # phi is read modulo 180 degrees

    def cost(vector):
        if not ((low <= vector) & (vector <= high))[bounded].all():
            return np.inf
        return -masked_lens.log_evidence(mass(vector), coefficient)

    values = np.array([cost(draw) for draw in draws])
    best = draws[int(np.argmin(values))]
    steps = np.array([0.05 * (high[0] - low[0]), 0.05, 10.0, 0.05, 0.05])  # first simplex: theta_E, q, phi, y, x
    climbed = minimize(
        cost,
        best,
        method="Nelder-Mead",
        options={"initial_simplex": np.vstack([best, best + np.diag(steps)]), "maxfev": search.max_evaluations},
    )
    return mass(climbed.x if climbed.fun <= values.min() else best)


def lens_pairs(masked_lens, truth, relations, settings, outer_radius, errors=None, rng=None):
    """The three labelled `Pair`s (U, C, O) of one lens; each class's model perturbed by `errors`.

    With `settings["wrong_theta"]` "drawn" the U and O rows are searched in a `drawn_window`
    (M21, "best": over the whole window), with "searched" they are `searched` over the blind
    priors in the class window; with `settings["relax_evaluations"]` > 0 each
    class's model is then `relaxed` at its theta_E.
    """
    relax = int(settings["relax_evaluations"])
    drawn = settings["wrong_theta"] == "drawn"
    search = WrongSearch.from_config(settings["wrong_search"]) if settings["wrong_theta"] == "searched" else None
    rng = rng if rng is not None else np.random.default_rng(0)
    coefficient, _ = masked_lens.best_coefficient(truth)
    pairs = []
    for name in CLASSES:
        window = scan_window(name, truth.einstein_radius, relations.get(name), settings)
        if drawn and name != "correct":
            window = drawn_window(window, rng, settings["min_window_fraction"])
        base = perturbed(truth, errors, rng)
        if search is not None and name != "correct":
            mass = searched(masked_lens, truth, window, coefficient, search, rng)
        else:
            theta, _ = maximise_in_window(
                lambda t: masked_lens.log_evidence(base.with_einstein_radius(t), coefficient),
                window,
                settings["scan_points"],
                settings["scan_rtol"],
            )
            mass = base.with_einstein_radius(theta)
        if relax:
            mass = relaxed(masked_lens, mass, coefficient, relax)
        best_coefficient, _ = masked_lens.best_coefficient(mass)
        products = masked_lens.products(
            mass, best_coefficient, tuple(settings["source_shape"]), settings["source_extent"] * outer_radius
        )
        pairs.append(Pair(LABELS[name], mass, window, products))
    return pairs


def perturbation_errors(perturbation):
    """The config's `trainingset.perturbation` as `perturbed`'s errors (None: M21's truth-only models)."""
    if not perturbation:
        return None
    return {key: float(perturbation[key]) for key in ("axis_ratio", "angle", "centre")}


def build_shard(
    images,
    noise_maps,
    masks,
    truths,
    outer_radii,
    usable,
    psf,
    pixel_scale,
    relations,
    settings,
    errors=None,
    seeds=None,
):
    """Training pairs for the lenses of one shard (three rows per lens, U, C, O).

    `errors`: `perturbation_errors`; `seeds`: one per lens (its perturbations' stream).
    """
    rows = []
    for i in range(len(images)):
        flags = 0 if usable[i] else TrainingPairFlag.NO_MASK
        pairs = []
        if not flags:
            try:
                lens = inversion.MaskedLens(images[i], noise_maps[i], masks[i], psf, pixel_scale, settings["inversion"])
                rng = np.random.default_rng(seeds[i] if seeds is not None else i)
                pairs = lens_pairs(lens, truths[i], relations, settings, outer_radii[i], errors, rng)
            except Exception as error:  # noqa: BLE001 - one bad lens must not stop the shard
                log.warning("lens %d: inversion failed (%s); flagged", i, error)
                flags = TrainingPairFlag.INVERSION_FAILED
        if flags:
            pairs = [Pair(label, None, (np.nan, np.nan), None) for label in LABELS.values()]
        rows.extend((i, pair, flags) for pair in pairs)
    return collate(rows, tuple(settings["source_shape"]), images.shape[1:])


def collate(rows, source_shape, image_shape):
    """Stack per-pair results into shard arrays and 1-D columns."""
    n = len(rows)
    source = np.zeros((n, *source_shape), np.float32)
    residual = np.zeros((n, *image_shape), np.float32)
    chi2 = np.zeros((n, *image_shape), np.float32)
    maps = {name: np.zeros((n, *image_shape), np.float32) for name in IMAGE_PLANE_MAPS}
    columns = {
        key: np.full(n, np.nan)
        for key in (
            "lens_row",
            "label",
            "einstein_radius",
            "axis_ratio",
            "angle",
            "centre_y",
            "centre_x",
            "window_low",
            "window_high",
            "log_evidence",
            "coefficient",
            "chi_squared",
            "source_extent",
        )
    }
    flags = np.zeros(n, np.uint8)
    for j, (i, pair, flag) in enumerate(rows):
        columns["lens_row"][j], columns["label"][j] = i, pair.label
        columns["window_low"][j], columns["window_high"][j] = pair.window
        flags[j] = flag
        if pair.mass is not None:
            columns["einstein_radius"][j], columns["axis_ratio"][j] = pair.mass.einstein_radius, pair.mass.axis_ratio
            columns["angle"][j], (columns["centre_y"][j], columns["centre_x"][j]) = pair.mass.angle, pair.mass.centre
        products = pair.products
        if products is not None:
            source[j], residual[j], chi2[j] = products.source, products.residual, products.chi_squared_map
            for name in IMAGE_PLANE_MAPS:
                maps[name][j] = getattr(products, name)
            columns["log_evidence"][j] = products.log_evidence
            columns["coefficient"][j] = products.coefficient
            columns["chi_squared"][j] = products.chi_squared
            columns["source_extent"][j] = products.source_extent
    return {
        "arrays": {"source": source, "residual": residual, "chi_squared_map": chi2, **maps},
        "params": columns,
        "flags": flags,
    }


UNITS = {
    "lens_row": "row in the simulation shard",
    "label": "0 under, 1 correct, 2 over",
    "einstein_radius": "arcsec",
    "axis_ratio": "of the inverted model (the truth's, perturbed)",
    "angle": "deg",
    "centre_y": "arcsec",
    "centre_x": "arcsec",
    "window_low": "arcsec",
    "window_high": "arcsec",
    "log_evidence": "",
    "coefficient": "",
    "chi_squared": "",
    "source_extent": "arcsec (raster half-width)",
}


# M21's rows, Table 2's task: U and O at the class window's best theta_E, every other parameter at the truth.
M21_ROWS = {"wrong_theta": "best", "perturbation": None, "relax_evaluations": 0}


def has_m21_rows(settings):
    """Whether `settings` make M21's rows: then a training set's own test pairs are M21's Table 2 task."""
    return all(settings.get(key) == value for key, value in M21_ROWS.items())


def test_lens_rows(entries, simulations, masks):
    """{(simulation shard, mask shard): lens rows} of the lenses whose pairs `entries` name.

    A pair's shard shares its name with the simulation and mask shards it was made from."""
    by_name = {Path(simulation).name: (simulation, mask) for simulation, mask in zip(simulations, masks)}
    selection = {}
    for entry in entries:
        with h5py.File(entry.path, "r") as h5:
            row = int(h5["params/lens_row"][entry.row])
        selection.setdefault(by_name[Path(entry.path).name], set()).add(row)
    return selection


def shard_pairs(simulation, mask, relations, settings, rows=None, errors=None, seed=None):
    """`build_shard` on lenses of one simulation shard and its masks: (result, their truths, survey).

    `rows`: those lenses (None: all); `seed`: the run's, from which each lens's stream is drawn."""
    import json

    from hybridlens import io
    from hybridlens.reconstruction import masking
    from hybridlens.simulation.survey import Survey

    survey = Survey.from_settings(json.loads(io.read_attrs(simulation)["survey"]))
    rows = slice(None) if rows is None else sorted(rows)
    truths, annuli = io.read_params([simulation]).iloc[rows], io.read_params([mask]).iloc[rows]
    result = build_shard(
        io.read_array([simulation], "image")[rows],
        io.read_array([simulation], "noise_map")[rows],
        io.read_array([mask], "mask")[rows],
        [inversion.Mass.from_truth(row) for row in truths.itertuples()],
        annuli["outer_radius"].to_numpy(),
        masking.usable(truths["flags"], annuli["flags"]),
        survey.psf_kernel(),
        survey.pixel_scale,
        relations,
        settings,
        errors,
        None if seed is None else [seed * 1_000_003 + int(index) for index in truths["index"]],
    )
    return result, truths, survey


def m21_test_shards(selection, relations, settings, directory):
    """M21's rows (`M21_ROWS`) of the selected lenses, one shard per simulation shard in `directory`.

    Table 2 scores the classifier on M21's pairs whatever rows it was trained on (e.g. searched
    wrong models), so the number stays comparable with M21's. `selection`: {(simulation shard,
    mask shard): lens rows}. Returns the written paths (`training.catalogue` reads them).
    """
    from hybridlens import config, io

    m21 = {**settings, **M21_ROWS}
    paths = []
    for (simulation, mask), rows in sorted(selection.items()):
        result, truths, _ = shard_pairs(simulation, mask, relations, m21, rows)
        kept = result["params"]["lens_row"].astype(int)
        path = Path(directory) / Path(simulation).name
        io.write_shard(
            path,
            attrs={"config_sha256": config.digest(m21)},
            arrays={**result["arrays"], "index": truths["index"].to_numpy()[kept]},
            params=result["params"],
            flags=result["flags"],
            flag_family=TrainingPairFlag,
        )
        paths.append(path)
    return paths


def m21_test_pairs(entries, simulations, masks, relations, settings, directory):
    """M21's pairs (`m21_test_shards`) of the lenses whose test pairs `entries` name, as entries.

    None when `settings` already make M21's rows: then `entries` are M21's Table 2 task."""
    from hybridlens.networks import training

    if has_m21_rows(settings):
        return None
    selection = test_lens_rows(entries, simulations, masks)
    return training.catalogue(m21_test_shards(selection, relations, settings, directory))
