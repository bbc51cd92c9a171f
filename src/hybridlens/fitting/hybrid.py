"""M21 section 3.5: the rerun rules that move a fit's Einstein-radius prior by the CNN's verdict.

`next_action(history, relations, settings)` is pure: it reads the rounds run so
far (each with the CNN's verdict, the inferred Einstein radius and its 68 %
interval) and says what to do next. `priors_for(action, blind, last)` turns
that into the next fit's `SIEPriors`. Nothing here runs a fit, so every rule is
unit-tested on its own.

M21's rules, with the history taken into account from the second round on:

- first verdict UM / OM: theta_E prior from the measured under / over relation
  inverted (their Table 1 form), +- `under_half_width` / `over_half_width`;
  everything else unchanged;
- C after anything (or first): refine, narrowed uniform priors about the
  inferred values and a tighter sampler tolerance; C after C: stop, accepted;
  C on a first fit whose priors a prescan already narrowed about an optimum
  (the guarded loop's): accepted, that fit did what a refinement does;
- a prescanned first fit whose theta_E agrees with the BNN's (within the
  guard's sigma): accepted whatever the classifier says. Under- and over-
  magnified solutions lie >= 10 % from the truth (the class ranges), the BNN's
  calibrated sigma is ~3 %: two independent estimates agreeing rule them out
  better than a classifier trained on simulated scans;
- UM after UM or OM after OM: flag for manual inspection;
- UM after OM or OM after UM: theta_E prior between the two previous values,
  excluding the 68 % intervals of both wrong solutions;
- UM / OM after C (the refinement fell off the solution): moved as a first
  UM / OM would be (M21 does not say; this keeps the loop going).

A relation that `calibration.is_reliable` rejects is not inverted: the move
then uses the class range instead (theta_true lies between
theta / high and theta / low of the class's ratio range), clipped to the mask.
"""

from dataclasses import dataclass, replace

import numpy as np

from hybridlens.fitting import modelling
from hybridlens.flags import HybridFlag, is_set
from hybridlens.reconstruction import calibration, positions
from hybridlens.vocabulary import CLASSES, IMAGE_PLANE_MAPS

VERDICTS = CLASSES  # the CNN's labels: under (UM), correct (C), over (OM)
ABBREVIATIONS = {"under": "UM", "correct": "C", "over": "OM"}

# Action kinds
REFIT = "refit"  # a new fit with a moved theta_E prior
REFINE = "refine"  # a new fit with narrowed priors and a tighter tolerance
ACCEPT = "accept"  # done: the CNN called the last two fits correct
FLAG = "flag"  # done: manual inspection needed
ACTION_CODES = {REFIT: 0, REFINE: 1, ACCEPT: 2, FLAG: 3}


@dataclass(frozen=True)
class HybridSettings:
    """The rerun rules' numbers (config `hybrid_modelling`)."""

    reruns: int  # fits after the blind one, at most
    under_half_width: float  # arcsec, M21 Table 1
    over_half_width: float  # arcsec, M21 Table 1
    refine_half_widths: dict  # per parameter: half-width of the narrowed uniform prior
    refine_f_live: float  # the refinement's tighter evidence tolerance
    min_einstein_radius: float = 0.05  # arcsec: no prior goes below this

    @classmethod
    def from_config(cls, settings):
        return cls(
            reruns=int(settings["reruns"]),
            under_half_width=float(settings["under_half_width"]),
            over_half_width=float(settings["over_half_width"]),
            refine_half_widths={k: float(v) for k, v in settings["refine_half_widths"].items()},
            refine_f_live=float(settings["refine_f_live"]),
        )


@dataclass(frozen=True)
class Round:
    """What the rules need to know about one finished fit."""

    verdict: str  # under | correct | over
    einstein_radius: float  # inferred (posterior median), arcsec
    lower: float  # 16th percentile of theta_E
    upper: float  # 84th percentile of theta_E
    narrowed: bool = False  # its priors were already narrowed about an optimum (a prescan), as a refinement's are
    network_agrees: bool = False  # its theta_E lies within the guard's sigma of an independent network's
    split: bool = False  # the arcs' peaks traced through it do not meet: separate copies of the source
    split_verdict: str = "under"  # then: under when a larger theta_E brings them together, else over
    images_meet: bool = False  # the arcs' peaks were traced back and met (a position check ran and passed)
    lensed: bool = True  # some arc peak is multiply imaged through it; False: under-magnified, never accepted


@dataclass(frozen=True)
class Action:
    kind: str  # REFIT | REFINE | ACCEPT | FLAG
    reason: str
    einstein_radius_range: tuple = None  # the next fit's theta_E prior (REFIT)

    @property
    def done(self):
        return self.kind in (ACCEPT, FLAG)


def invert_relation(theta, relation):
    """theta_true from an inferred radius and a line theta = slope * theta_true + intercept (M21 Table 1)."""
    return (theta - relation["intercept"]) / relation["slope"]


def moved_range(verdict, theta, relations, settings, class_ratio_ranges, bounds):
    """The theta_E prior after a first UM / OM verdict, and how it was obtained."""
    relation = relations.get(verdict)
    if calibration.is_reliable(relation):
        centre = invert_relation(theta, relation)
        half = settings.under_half_width if verdict == "under" else settings.over_half_width
        low, high, how = centre - half, centre + half, f"{verdict} relation inverted"
    else:
        ratio_low, ratio_high = class_ratio_ranges[verdict]
        low, high, how = theta / ratio_high, theta / ratio_low, f"{verdict} class range (relation unreliable)"
    return clip_range(low, high, settings, bounds), how


def clip_range(low, high, settings, bounds=None):
    """Keep a theta_E prior positive and, when given, inside `bounds` (e.g. the blind prior's)."""
    floor = settings.min_einstein_radius
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    low = max(low, floor)
    if high <= low:  # the move left the allowed range: keep a sliver at the edge it pushed against
        high = low + 0.1 * max(low, floor)
    return (float(low), float(high))


def between(under, over, settings):
    """UM and OM in turn: theta_E between the two, excluding both solutions' 68 % intervals."""
    low, high = under.upper, over.lower
    if high <= low:  # the intervals touch: fall back to the gap between the two radii
        low, high = under.einstein_radius, over.einstein_radius
    if high <= low:  # UM above OM: the verdicts contradict the radii
        return None
    return clip_range(low, high, settings)


def next_action(history, relations, settings, class_ratio_ranges, bounds=None):
    """What to do after the rounds in `history` (oldest first); see the module docstring.

    `relations`: {under, over: line dicts as stored by calibrate_relations};
    `bounds`: the blind theta_E prior (the mask's radii), moves are clipped to it.
    """
    if not history:
        raise ValueError("next_action needs at least the blind fit's round")
    last = history[-1]
    if last.verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {last.verdict!r}")
    previous = history[-2] if len(history) > 1 else None
    reruns_done = len(history) - 1
    if not last.lensed:  # a strong lens explained without multiple images: theta_E is too small
        moved = replace(last, verdict="under", network_agrees=False, split=False, images_meet=False, lensed=True)
        action = next_action([*history[:-1], moved], relations, settings, class_ratio_ranges, bounds)
        reason = f"no arc peak is multiply imaged through this model ({ABBREVIATIONS[last.verdict]} overruled): "
        return replace(action, reason=reason + action.reason)
    if last.split:  # never accepted: the images' own geometry says which way theta_E is off
        moved = replace(last, verdict=last.split_verdict, network_agrees=False, split=False)
        action = next_action([*history[:-1], moved], relations, settings, class_ratio_ranges, bounds)
        reason = f"the arcs' peaks do not meet in the source plane (images of one source split; {ABBREVIATIONS[last.verdict]} overruled): "
        return replace(action, reason=reason + action.reason)
    if previous is None and last.narrowed and last.network_agrees:
        return Action(
            ACCEPT,
            f"first fit's theta_E agrees with the BNN's (the evidence and the network agree; "
            f"classifier {ABBREVIATIONS[last.verdict]}): accepted",
        )
    if previous is None and last.narrowed and last.images_meet:
        return Action(
            ACCEPT,
            f"first fit's images meet in the source plane (the evidence's optimum and the arcs' geometry agree; "
            f"classifier {ABBREVIATIONS[last.verdict]}): accepted",
        )
    if last.verdict == "correct":
        if previous is not None and previous.verdict == "correct":
            return Action(ACCEPT, "C after C: accepted")
        if previous is None and last.narrowed:
            return Action(ACCEPT, "C on a first fit with priors narrowed about the prescan's optimum: accepted")
        if reruns_done >= settings.reruns:
            return Action(ACCEPT, f"C at the last allowed round ({settings.reruns} reruns): accepted unrefined")
        after = "first fit" if previous is None else f"after {ABBREVIATIONS[previous.verdict]}"
        return Action(REFINE, f"C {after}: refine with narrowed priors")
    name = ABBREVIATIONS[last.verdict]
    if reruns_done >= settings.reruns:
        return Action(FLAG, f"{name} after {settings.reruns} reruns: manual inspection")
    if previous is not None and previous.verdict == last.verdict:
        return Action(FLAG, f"{name} after {name}: the prior move did not leave this solution; manual inspection")
    if previous is not None and previous.verdict != "correct":
        under, over = (last, previous) if last.verdict == "under" else (previous, last)
        theta_range = between(under, over, settings)
        if theta_range is None:
            return Action(FLAG, f"{name} after {ABBREVIATIONS[previous.verdict]} with UM above OM: manual inspection")
        return Action(REFIT, f"{name} after {ABBREVIATIONS[previous.verdict]}: theta_E between the two", theta_range)
    theta_range, how = moved_range(last.verdict, last.einstein_radius, relations, settings, class_ratio_ranges, bounds)
    after = "" if previous is None else " after C"
    return Action(REFIT, f"{name}{after}: theta_E from the {how}", theta_range)


def priors_for(action, blind, medians, settings):
    """The next fit's `SIEPriors`: `blind` with theta_E moved (REFIT) or narrowed about `medians` (REFINE).

    `medians` are the last fit's posterior medians. Narrowed priors are uniform,
    centred on them, never wider than the blind ones; the angle may wrap
    through 0/180 degrees (the SIE model reads it modulo 180).
    """
    if action.kind == REFIT:
        return blind.replace(einstein_radius=modelling.Prior.uniform(*action.einstein_radius_range))
    if action.kind != REFINE:
        raise ValueError(f"no next fit after a {action.kind!r} action")
    narrowed = {}
    for name, half in settings.refine_half_widths.items():
        wide = getattr(blind, name)
        centre = medians[name]
        if name == "angle":
            narrowed[name] = modelling.Prior.uniform(centre - half, centre + half)
            continue
        low, high = max(centre - half, wide.low), min(centre + half, wide.high)
        narrowed[name] = modelling.Prior.uniform(low, high) if high > low else wide
    return blind.replace(**narrowed)


# --- judging a fit against the truth ------------------------------------------------------------

TRUTH_CLASSES = ("under", "correct", "over", "between")  # "between": in no class range


def truth_class(theta, theta_true, class_ratio_ranges):
    """The calibration's class of a fit by its theta_E alone: the range theta / theta_true falls in."""
    ratio = theta / theta_true
    for name in CLASSES:
        low, high = class_ratio_ranges[name]
        if name == "under" and ratio <= high or name == "over" and ratio >= low or low <= ratio <= high:
            return name
    return "between"


def axis_ratio_off(q, q_true, tolerance):
    """A 'correct' theta_E with a wrong ellipse: judged separately, as theta_E alone is crude then."""
    return abs(q - q_true) > tolerance


# --- the loop -------------------------------------------------------------------------------------

ACTION_KINDS = {code: kind for kind, code in ACTION_CODES.items()}


@dataclass
class LensProblem:
    """One lens ready for the loop: its inversion, blind priors and the search settings."""

    masked: object  # inversion.MaskedLens
    blind_priors: modelling.SIEPriors
    search: modelling.SearchSettings
    class_ratio_ranges: dict
    bounds: tuple  # the blind theta_E prior (the annulus' radii): moves stay inside
    source_shape: tuple
    source_extent: float
    seed: int
    peaks: np.ndarray = None  # (n, 2) arcsec: the arcs' brightest peaks (None: no position check)
    positions: object = None  # reconstruction.positions.PositionSettings

    def search_for(self, action, settings):
        """The refinement's tighter evidence tolerance; the blind settings otherwise."""
        if action is not None and action.kind == REFINE:
            return replace(self.search, f_live=min(self.search.f_live, settings.refine_f_live))
        return self.search


@dataclass
class RoundRecord:
    """One finished round: its HDF5 row, the reason for the action taken, its products (None if failed)."""

    row: dict
    reason: str
    products: object = None

    @property
    def action(self):
        low, high = self.row.get("next_low", np.nan), self.row.get("next_high", np.nan)
        theta_range = (low, high) if np.isfinite(low) and np.isfinite(high) else None
        return Action(ACTION_KINDS[int(self.row["action"])], self.reason, theta_range)

    @property
    def medians(self):
        return {name: self.row[f"median_{name}"] for name in modelling.PARAMETERS}

    def round(self):
        # one arc peak (or no check): no pair was traced, the verdict code is NaN and unused
        code = self.row.get("position_verdict", np.nan)
        split_verdict = CLASSES[int(code)] if np.isfinite(code) else Round.split_verdict
        return Round(
            CLASSES[int(self.row["verdict"])],
            self.row["median_einstein_radius"],
            self.row["lower_einstein_radius"],
            self.row["upper_einstein_radius"],
            self.row.get("narrowed", 0.0) == 1.0,  # NaN (a round without the column) is not narrowed
            self.row.get("network_agrees", 0.0) == 1.0,
            self.row.get("position_split", 0.0) == 1.0,
            split_verdict,
            self.row.get("position_split", np.nan) == 0.0,  # NaN: no check ran
            self.row.get("position_lensed", np.nan) != 0.0,  # NaN: no check ran, nothing known
        )


def lens_problem(lens, inversion_settings, modelling_settings, trainingset_settings, class_ratio_ranges, seed):
    """A lens from `io.read_lens` set up for the loop: M21's blind priors, theta_E over the annulus."""
    from hybridlens.reconstruction import inversion

    truth_centre = (lens["truth"]["lens_centre_y"], lens["truth"]["lens_centre_x"])
    annulus = (lens["annulus"]["inner_radius"], lens["annulus"]["outer_radius"])
    return LensProblem(
        masked=inversion.MaskedLens.from_lens(lens, inversion_settings),
        blind_priors=modelling.uniform_priors(truth_centre, annulus, modelling_settings["priors"]),
        search=modelling.SearchSettings.from_config(modelling_settings["search"]),
        class_ratio_ranges=class_ratio_ranges,
        bounds=annulus,
        source_shape=tuple(trainingset_settings["source_shape"]),
        source_extent=trainingset_settings["source_extent"] * annulus[1],
        seed=seed,
    )


def fit_round(problem, priors, search, number):
    """One non-linear fit and its products: the HDF5 row (priors, fit, tolerance) and the `Products`.

    With `problem.positions.cut` the fit skips models whose arcs' peaks do not meet."""
    cut = None
    if problem.positions is not None and problem.positions.cut:
        cut = modelling.PositionCut.from_settings(problem.peaks, problem.positions)
    result = modelling.fit_sie(problem.masked, priors, search, f"round-{number}", problem.seed + number, cut=cut)
    products = problem.masked.products(
        result.mass(), result.max_likelihood["coefficient"], problem.source_shape, problem.source_extent
    )
    row = {"round": float(number), **priors.describe(), **result.row(), "f_live": float(search.f_live)}
    if problem.peaks is not None and len(problem.peaks):
        row.update(positions.traced(result.mass(), problem.peaks, problem.positions).row())
    return row, products


def failed_round(number, priors, error):
    """The record of a fit that raised: the lens is flagged, the loop stops there."""
    row = {
        "round": float(number),
        **priors.describe(),
        "action": float(ACTION_CODES[FLAG]),
        "flags": float(HybridFlag.FIT_FAILED),
    }
    return RoundRecord(row, f"fit failed: {type(error).__name__}: {error}")


def unusable_round():
    """The record of a lens that cannot be modelled (flagged simulation, no mask)."""
    row = {"round": 0.0, "action": float(ACTION_CODES[FLAG]), "flags": float(HybridFlag.UNUSABLE)}
    return RoundRecord(row, "lens unusable: not fitted")


def judged(row, products, classify, history, relations, settings, problem):
    """The CNN's verdict on a fitted round and the rules' next action, added to its row (and to `history`)."""
    probabilities = np.asarray(classify(products), float)
    row = {
        **row,
        **{f"p_{name}": float(p) for name, p in zip(CLASSES, probabilities)},
        "verdict": float(np.argmax(probabilities)),
    }
    history.append(RoundRecord(row, "").round())
    action = next_action(history, relations, settings, problem.class_ratio_ranges, problem.bounds)
    low, high = action.einstein_radius_range or (np.nan, np.nan)
    row.update(
        action=float(ACTION_CODES[action.kind]),
        next_low=float(low),
        next_high=float(high),
        flags=float(HybridFlag.CALL_CAP * (row["hit_call_cap"] > 0) + HybridFlag.MANUAL * (action.kind == FLAG)),
    )
    return RoundRecord(row, action.reason, products)


def round_text(record):
    """A finished round on one line: the model, its evidence and cost, the CNN's call and what comes next."""
    row = record.row
    number = int(row["round"])
    if not np.isfinite(row.get("verdict", np.nan)):
        return f"round {number}: {ACTION_KINDS[int(row['action'])]}: {record.reason}"
    probabilities = " ".join(f"{row[f'p_{c}']:.2f}" for c in CLASSES)
    text = (
        f"round {number}: theta_E {row['median_einstein_radius']:.3f} "
        f"[{row['lower_einstein_radius']:.3f}, {row['upper_einstein_radius']:.3f}]\", "
        f"q {row['median_axis_ratio']:.2f}, phi {row['median_angle']:.0f} deg, "
        f"centre ({row['median_centre_y']:+.3f}, {row['median_centre_x']:+.3f})\", "
        f"ln Z {row['log_evidence']:.1f}, {row['n_calls']:.0f} calls in {row['seconds']:.0f} s"
        f"{' (CALL CAP HIT)' if row['hit_call_cap'] else ''}; "
        f"CNN {ABBREVIATIONS[CLASSES[int(row['verdict'])]]} "
        f"(p UM/C/OM {probabilities})"
    )
    if np.isfinite(row.get("position_spread", np.nan)):
        text += f"; images traced {row['position_spread']:.2f} theta_E apart"
    if row.get("position_lensed", np.nan) == 0.0:
        text += "; no arc peak multiply imaged"
    return f"{text} -> {record.action.kind}: {record.reason}"


def model_lens(problem, classify, relations, settings, store, log, blind=None):
    """CNN verdicts and reruns by `next_action` until accepted, flagged or out of reruns.

    `blind`: the blind fit's `RoundRecord` when it ran as its own job (fitted here otherwise);
    `classify(products) -> (p_under, p_correct, p_over)`; `store` (load() / save(records))
    keeps finished rounds so that a killed loop resumes at the round it was in.
    Returns the `RoundRecord`s, oldest first; the last one's action ends the loop.
    """
    records = store.load()
    if records:
        log.info("resuming after %d finished rounds", len(records))
        for record in records:
            log.info("%s", round_text(record))
    elif blind is not None:
        first = blind
        if blind.products is not None:
            first = judged(blind.row, blind.products, classify, [], relations, settings, problem)
        records.append(first)
        store.save(records)
        log.info("%s", round_text(first))
    priors, action = problem.blind_priors, None
    history = [record.round() for record in records if record.products is not None]
    for record in records:  # replay the finished rounds' decisions
        action = record.action
        if not action.done:
            priors = priors_for(action, problem.blind_priors, record.medians, settings)
    while action is None or not action.done:
        number = len(records)
        log.info("round %d priors: %s", number, priors.text())
        try:
            row, products = fit_round(problem, priors, problem.search_for(action, settings), number)
        except Exception as error:  # a failed fit flags this lens; the other lenses' jobs go on
            log.exception("round %d: fit failed", number)
            records.append(failed_round(number, priors, error))
            store.save(records)
            break
        record = judged(row, products, classify, history, relations, settings, problem)
        records.append(record)
        store.save(records)
        action = record.action
        log.info("%s", round_text(record))
        if not action.done:
            priors = priors_for(action, problem.blind_priors, record.medians, settings)
    return records


# --- HDF5: one file per lens, every round ------------------------------------------------------

IMAGE_NAMES = ("source", "residual", "chi_squared_map", *IMAGE_PLANE_MAPS)


def write_rounds(path, records, attrs, extra_columns=None, groups=None, flag_family=HybridFlag):
    """Every round of one lens: a params row, its products (NaN for a failed fit), the actions' reasons.

    `groups`: further HDF5 groups (e.g. the lens's data); `flag_family`: the family of the rounds' flags.
    """
    import json

    from hybridlens import io

    keys = sorted(set().union(*(record.row for record in records))) if records else []
    columns = {key: np.array([record.row.get(key, np.nan) for record in records], float) for key in keys}
    columns.update(extra_columns or {})
    arrays = {}
    for name in IMAGE_NAMES:
        images = [None if r.products is None else getattr(r.products, name) for r in records]
        shape = next((np.shape(image) for image in images if image is not None), (1, 1))
        filled = [np.full(shape, np.nan) if image is None else image for image in images]
        arrays[name] = np.array(filled, float).reshape(len(images), *shape)
    flags = np.array([int(record.row.get("flags", 0)) for record in records], np.uint8)
    attrs = {**attrs, "reasons": json.dumps([record.reason for record in records])}
    io.write_shard(
        path, attrs=attrs, arrays=arrays, params=columns, groups=groups, flags=flags, flag_family=flag_family
    )


def read_rounds(path):
    """The `RoundRecord`s and root attributes of a file `write_rounds` wrote."""
    import json

    import h5py

    from hybridlens.reconstruction.inversion import Products

    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
        columns = {name: h5["params"][name][()] for name in h5["params"]} if "params" in h5 else {}
        images = {name: h5[name][()] for name in IMAGE_NAMES if name in h5}
    reasons = json.loads(attrs.get("reasons", "[]"))
    records = []
    for i, reason in enumerate(reasons):
        row = {name: float(values[i]) for name, values in columns.items() if np.isfinite(values[i])}
        products = None
        if np.isfinite(images["source"][i]).any():  # a failed or skipped round stores NaN images
            products = Products(
                row.get("log_evidence", np.nan),
                row.get("ml_coefficient", np.nan),
                images["source"][i],
                images["residual"][i],
                images["chi_squared_map"][i],
                float(np.nansum(images["chi_squared_map"][i])),
                np.nan,
                *(images[name][i] if name in images else None for name in IMAGE_PLANE_MAPS),
            )
        records.append(RoundRecord(row, reason, products))
    return records, attrs


class RoundStore:
    """Finished rounds of one lens on disk, keyed by a digest of everything that made them.

    A killed job resumes at the round it was in; a store written under other
    settings or inputs is discarded, loudly.
    """

    def __init__(self, path, digest, log):
        self.path, self.digest, self.log = path, digest, log

    def load(self):
        from pathlib import Path

        if not Path(self.path).exists():
            return []
        records, attrs = read_rounds(self.path)
        if attrs.get("loop_digest") != self.digest:
            self.log.warning("%s was written under other settings or inputs: starting this lens afresh", self.path)
            return []
        return records

    def save(self, records):
        write_rounds(self.path, records, {"loop_digest": self.digest, "stage": "hybrid_progress"})


def truth_columns(records, truth, class_ratio_ranges, max_axis_ratio_error):
    """Per round: the truths, the class of its theta_E against the truth, and whether q is far off."""
    columns = {f"truth_{name}": np.full(len(records), value, float) for name, value in truth.items()}
    klass, q_off = np.full(len(records), np.nan), np.full(len(records), np.nan)
    for i, record in enumerate(records):
        if "median_einstein_radius" in record.row:
            name = truth_class(record.row["median_einstein_radius"], truth["einstein_radius"], class_ratio_ranges)
            klass[i] = TRUTH_CLASSES.index(name)
            q_off[i] = float(axis_ratio_off(record.row["median_axis_ratio"], truth["axis_ratio"], max_axis_ratio_error))
    return {**columns, "truth_class": klass, "axis_ratio_off": q_off}


# --- the loop's judge on any fit: the arcs' geometry where it decides, the classifier elsewhere ------


def lens_peaks(lens, settings):
    """The arcs' brightest peaks of a lens from `io.read_lens`, inside its annulus (`positions.arc_peaks`)."""
    mask = np.asarray(lens["mask"], bool)
    return positions.arc_peaks(lens["image"], lens["noise_map"], mask, lens["survey"]["pixel_scale"], settings)


POSITION_COLUMNS = ("position_spread", "position_split", "position_verdict", "position_lensed")


def traced_columns(table, peaks_by_lens, settings):
    """`POSITION_COLUMNS` of every fit in `table` through its lens's arc peaks.

    The check `next_action` acts on in the guarded loop, run after the fact on fits that
    did not use it (M21's loop): each fit's max-likelihood SIE traces `peaks_by_lens[lens]`
    back. NaN where no peak was found or the fit has no model; spread, split and verdict
    also where only one peak was.
    """
    from hybridlens.reconstruction.inversion import Mass

    columns = {name: np.full(len(table), np.nan) for name in POSITION_COLUMNS}
    for i, row in enumerate(table.to_dict("records")):
        peaks = peaks_by_lens.get(int(row["lens_index"]))
        if peaks is None or not len(peaks) or not np.isfinite(row.get("ml_einstein_radius", np.nan)):
            continue
        for name, value in positions.traced(Mass.from_parameters(row, "ml_"), peaks, settings).row().items():
            columns[name][i] = value
    return columns


def judge_verdicts(table):
    """The verdict the guarded loop's rules act on, per fit (`next_action` overrules the classifier
    in this order): under where no arc peak is multiply imaged, the traced arcs' direction where
    the images split, the classifier's verdict elsewhere."""
    verdict = np.asarray(table["verdict"], float)
    if "position_split" in table:
        split = np.asarray(table["position_split"]) == 1.0
        verdict = np.where(split, np.asarray(table["position_verdict"], float), verdict)
    if "position_lensed" in table:
        verdict = np.where(np.asarray(table["position_lensed"]) == 0.0, float(CLASSES.index("under")), verdict)
    return verdict


def verdicts_on_fits(labelled, verdicts):
    """Accuracy, confusion matrix (rows: truth under / correct / over) and scores of `verdicts` on labelled fits."""
    from hybridlens.analysis.evaluation import confusion_matrix, precision_recall_f1

    counts = confusion_matrix(labelled["truth_class"], verdicts, 3)
    scores = precision_recall_f1(counts)
    right = np.asarray(labelled["truth_class"]) == np.asarray(verdicts)
    q_ok = np.asarray(labelled["axis_ratio_off"] == 0) if "axis_ratio_off" in labelled else np.ones(len(right), bool)
    return {
        "n_fits": int(len(labelled)),
        "accuracy": float(np.trace(counts) / counts.sum()) if counts.sum() else float("nan"),
        "accuracy_q_within_tolerance": float(right[q_ok].mean()) if q_ok.any() else float("nan"),
        "confusion_counts": counts.tolist(),
        **{key: dict(zip(CLASSES, np.asarray(v, float).tolist())) for key, v in scores.items()},
    }


# --- the sample: per round, by the CNN and by the truth ----------------------------------------

# M21 section 4.2 (100 lenses), for comparison only: CNN verdict counts after each round.
M21_PUBLISHED_ROUNDS = {
    "cnn_counts": {
        "blind": {"under": 88, "correct": 1, "over": 11},
        "rerun 1": {"under": 20, "correct": 52},
        "rerun 3": {"under": 17, "correct": 70, "over": 13},
    },
    "reduction_of_unphysical": 0.69,
}


def state_after(table, round_number):
    """Each lens's current model after `round_number`: its latest fitted round up to then."""
    fitted = table[np.isfinite(table["verdict"]) & (table["round"] <= round_number)]
    return fitted.sort_values("round").groupby("lens_index").tail(1)


def round_names(reruns):
    return ["blind", *[f"rerun {k}" for k in range(1, reruns + 1)]]


def call_cap_hit_fits(fitted):
    """Which fits stopped at the call cap ({lens_index, round} each): a summary lists them, not only counts them."""
    hit = fitted[fitted["hit_call_cap"] > 0]
    return [{"lens_index": int(row.lens_index), "round": int(row.round)} for row in hit.itertuples()]


def summarise(table, reruns):
    """Counts per round by CNN verdict and by the truth, the CNN's (and, with `traced_columns`, the
    guarded loop's judge's) confusion matrix on these fits, errors, cost."""
    from hybridlens.analysis.evaluation import angle_error, describe

    if "verdict" not in table:
        table = table.assign(verdict=np.nan)
    fitted = table[np.isfinite(table["verdict"])]
    out = {"n_lenses": int(table["lens_index"].nunique()), "rounds": {}, "m21_reference": M21_PUBLISHED_ROUNDS}
    for number, name in enumerate(round_names(reruns)):
        state = state_after(table, number)
        q_off = state["axis_ratio_off"] > 0
        out["rounds"][name] = {
            "n_models": int(len(state)),
            "fits_this_round": int((fitted["round"] == number).sum()),
            "cnn": {c: int((state["verdict"] == k).sum()) for k, c in enumerate(CLASSES)},
            "truth": {c: int((state["truth_class"] == k).sum()) for k, c in enumerate(TRUTH_CLASSES)},
            "truth_correct_with_q_off": int(((state["truth_class"] == 1) & q_off).sum()),
            "fractional_error_einstein_radius": describe(
                state["median_einstein_radius"] / state["truth_einstein_radius"] - 1
            ),
            "fractional_error_axis_ratio": describe(state["median_axis_ratio"] / state["truth_axis_ratio"] - 1),
            "absolute_error_angle": describe(angle_error(state["median_angle"], state["truth_angle"])),
        }
    # The classifier judged on real fits: truth classes under/correct/over only ("between" has no label).
    labelled = fitted[fitted["truth_class"] < 3]
    out["classifier_on_fits"] = {
        **verdicts_on_fits(labelled, labelled["verdict"]),
        "n_between_classes": int((fitted["truth_class"] == 3).sum()),
    }
    if "position_split" in labelled:  # the guarded loop's judge on the same fits (traced_columns)
        out["judge_on_fits"] = {
            **verdicts_on_fits(labelled, judge_verdicts(labelled)),
            "n_traced": int(np.isfinite(labelled.get("position_lensed", labelled["position_split"])).sum()),
            "n_split": int((labelled["position_split"] == 1.0).sum()),
            "n_not_lensed": int((labelled.get("position_lensed", labelled["position_split"] * np.nan) == 0.0).sum()),
        }
    final_actions = table.sort_values("round").groupby("lens_index").tail(1)["action"]
    out["final"] = {kind: int((final_actions == code).sum()) for kind, code in ACTION_CODES.items()}
    out["fit_seconds"] = describe(fitted["seconds"])
    out["fit_calls"] = describe(fitted["n_calls"])
    for name, rows in (("blind", fitted[fitted["round"] == 0]), ("rerun", fitted[fitted["round"] > 0])):
        out[f"{name}_fit_seconds"], out[f"{name}_fit_calls"] = describe(rows["seconds"]), describe(rows["n_calls"])
    out["fits_per_lens"] = describe(fitted.groupby("lens_index").size())
    out["seconds_per_lens"] = describe(fitted.groupby("lens_index")["seconds"].sum())
    out["call_cap_hits"] = int((fitted["hit_call_cap"] > 0).sum())
    out["call_cap_hit_fits"] = call_cap_hit_fits(fitted)
    out["failed_fits"] = int(is_set(table["flags"].astype(int), HybridFlag.FIT_FAILED).sum())
    first, last = out["rounds"]["blind"], out["rounds"][round_names(reruns)[-1]]
    for judge, wrong_classes in (("truth", ("under", "over", "between")), ("cnn", ("under", "over"))):
        wrong = [sum(state[judge][c] for c in wrong_classes) for state in (first, last)]
        out[f"reduction_of_unphysical_by_{judge}"] = 1 - wrong[1] / wrong[0] if wrong[0] else float("nan")
    return out
