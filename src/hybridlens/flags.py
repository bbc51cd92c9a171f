"""Every flag bit of the pipeline, one `enum.IntFlag` family per kind of artifact.

A `flags` column is a per-row bit field: 0 means nothing to report, each set bit
one reason why a row is missing, unusable or to be read with care. The same word
means different things in different artifacts (a failed fit of the P21
comparison is not a failed round of M21's loop), so every bit is named by its
family: `ComparisonFlag.FIT_FAILED`, `HybridFlag.FIT_FAILED`. The bit values are
those the artifacts have always carried.

Families, by the rows they flag (and the rules that write them):

- `SimulationFlag`   simulated images (simulate, simulate_p21_testset), copied into the BNN's
                     predictions of them (predict_bnn)
- `MaskFlag`         annular masks (mask)
- `CalibrationFlag`  the three constrained fits of a calibration lens (calibrate_lens)
- `TrainingPairFlag` U/C/O (reconstruction, residual) pairs (trainingset, complex_pairs)
- `HybridFlag`       rounds of M21's rerun loop (blind_fit, hybrid_lens, hybrid_summary)
- `GuardedFlag`      rounds and lenses of the guarded loop (guarded_lens, model_lens, lens_catalogue)
- `ComparisonFlag`   P21's PyAutoLens fits of a test-set lens (p21_fit)

A member is declared as ``NAME = bit, "meaning"``; ``member.meaning`` says what the
bit means to whoever reads the artifact. Members whose value has several bits
(``MaskFlag.NO_MASK``) are masks for testing, not bits of their own.

In HDF5 (`write_meanings`), a `flags` dataset carries its family's name in the
attribute ``flag_family`` and one attribute ``bit_<n>`` = ``"NAME: meaning"`` per
bit of the family, whether or not any row has it set.
"""

import enum

import h5py
import numpy as np


class FlagFamily(enum.IntFlag):
    """Base of the families: members are declared as ``NAME = bit, "meaning"``."""

    def __new__(cls, bit, meaning=""):
        member = int.__new__(cls, bit)
        member._value_ = bit
        member._meaning = meaning
        return member

    @property
    def meaning(self):
        """What the member means; for a combination of bits made at run time, `describe()`."""
        return getattr(self, "_meaning", "") or self.describe()

    def describe(self):
        """The meanings of the single bits set, in bit order, joined by "; " ("" for none)."""
        return "; ".join(bit._meaning for bit in self)

    @classmethod
    def meanings(cls):
        """{bit value: meaning} of every single bit of the family."""
        return {int(bit): bit.meaning for bit in cls}


def _same_as(member):
    """Declare a member with the value and meaning of `member` of another family."""
    return int(member), member.meaning


class SimulationFlag(FlagFamily):
    """A simulated image that could not be drawn as asked; its arrays are NaN or its source singly imaged.

    Rows of results/simulate/<data set>/shard-*.h5, copied unchanged into the BNN's
    predictions of those images (results/bnn/<mass model>/predict/...).
    """

    NO_ACCEPTED_DRAW = 1, "no draw passed the detection cuts within max_attempts"
    SINGLY_IMAGED = 2, "no multiply-imaged source centre found within max_attempts"


class MaskFlag(FlagFamily):
    """M21's annular mask of an image (results/mask/<data set>/shard-*.h5)."""

    NONFINITE = 1, "image has NaN/inf pixels: no mask"
    EMPTY = 2, "image is constant or nothing survives the threshold: no mask"
    BEYOND_STAMP = 4, "outer circle extends beyond the stamp (mask is clipped)"
    INPUT_FLAGGED = 8, "the simulation flagged this image"
    ONE_SIDED = (
        16,
        "arcs on one side of the given centre only (a double's counter-image undetected): a disc, not an annulus",
    )
    RECENTRED = (
        32,
        "the lens centre lay outside the annulus about the arcs' centroid: refitted about the lens centre",
    )
    # NONFINITE | EMPTY
    NO_MASK = 3, "no mask: the image has NaN/inf pixels, is constant or nothing survives the threshold"


class CalibrationFlag(FlagFamily):
    """One of the three constrained (under / correct / over) fits of a calibration lens.

    Rows of results/calibrate/fits/stratum-*.h5; M21 section 3.2.
    """

    UNUSABLE = 1, "lens unusable (no mask or flagged simulation): not fitted"


class TrainingPairFlag(FlagFamily):
    """A labelled (source reconstruction, residual) pair of the classifier's training set (M21 section 3.3).

    Rows of results/trainingset/<data set>/shard-*.h5 and results/complex/pairs/lens-*.h5;
    a flagged row's arrays are zeros and its Einstein radius NaN.
    """

    NO_MASK = 1, "the lens has no usable mask (or its simulation was flagged)"
    INVERSION_FAILED = 2, "the inversion failed for this lens"


class HybridFlag(FlagFamily):
    """A round of M21's rerun loop (section 3.5): the blind fit or a rerun with a moved theta_E prior.

    Rows of results/hybrid/blind/lens-*.h5, results/hybrid/lens-*.h5 (and their progress
    files) and results/hybrid/summary.h5.
    """

    FIT_FAILED = 1, "a fit raised: loop stopped at that round"
    MANUAL = 2, "flagged for manual inspection by the rerun rules"
    CALL_CAP = 4, "a fit stopped at the call cap (not converged)"
    UNUSABLE = 8, "lens unusable (no mask or flagged simulation): not fitted"


class GuardedFlag(FlagFamily):
    """A lens of the guarded loop (BNN priors, classifier guard, M21's reruns) and its rounds.

    A lens's flags are its own (input refused, no lens found, BNN off the mask) or'ed
    with every round's, which are `HybridFlag` bits and keep their values and meanings.
    Rows of results/guarded/lens-*.h5 and results/lenses/<name>.h5 (rounds) and of
    results/lenses/catalogue.h5 (lenses).
    """

    FIT_FAILED = _same_as(HybridFlag.FIT_FAILED)
    MANUAL = _same_as(HybridFlag.MANUAL)
    CALL_CAP = _same_as(HybridFlag.CALL_CAP)
    UNUSABLE = _same_as(HybridFlag.UNUSABLE)
    BAD_INPUT = 16, "input refused (unreadable, missing HDU, NaNs, wrong shape or survey): not modelled"
    NO_LENS = 32, "the mask found no lensed emission: not modelled"
    BNN_OFF_MASK = (
        64,
        "the BNN's theta_E lies outside the annulus (or given range): first fit used M21's uniform priors",
    )
    PAIR_PRIOR = (
        128,
        "the BNN's theta_E strayed from the arcs' opposite peaks (model_lenses.pair_check): first prior centred on theirs",
    )
    # BAD_INPUT | NO_LENS | UNUSABLE | FIT_FAILED
    FAILED = 57, "not modelled, or the loop stopped at a fit that raised"


class ComparisonFlag(FlagFamily):
    """One of P21's PyAutoLens methods on one test-set lens (results/p21/fits/<method>/...).

    The first four bits mean the lens was not fitted by this method; the others are
    notes on a fit that ran.
    """

    UNUSABLE = 1, "simulation or mask flagged: not fitted"
    NO_RING = 2, "blind prior: no pixels above the ring-fit threshold, smoothed or not"
    NO_PREDICTION = 4, "no (finite) BNN prediction for this lens"
    FIT_FAILED = 8, "the fit raised"
    CALL_CAP = 16, "the fit stopped at the likelihood-call cap"
    RING_CLIPPED = 32, "blind prior: the ring-fit radius lay outside the mask's annulus and was clipped into it"
    RING_SMOOTHED = 64, (
        "blind prior: no pixel above the threshold; the ring was fitted to the image smoothed as the masks are"
    )
    # UNUSABLE | NO_RING | NO_PREDICTION | FIT_FAILED
    NOT_FITTED = 15, "not fitted: lens unusable, no ring, no BNN prediction or the fit raised"


FAMILIES = (
    SimulationFlag,
    MaskFlag,
    CalibrationFlag,
    TrainingPairFlag,
    HybridFlag,
    GuardedFlag,
    ComparisonFlag,
)
FAMILY_ATTR = "flag_family"


def family_named(name):
    """The family called `name` (as stored in a dataset's `flag_family` attribute)."""
    for family in FAMILIES:
        if family.__name__ == name:
            return family
    raise KeyError(f"no flag family {name!r} (known: {', '.join(f.__name__ for f in FAMILIES)})")


def attributes(family):
    """The attributes a `flags` dataset of `family` carries: the family's name and one text per bit."""
    return {FAMILY_ATTR: family.__name__, **{f"bit_{int(bit)}": f"{bit.name}: {bit.meaning}" for bit in family}}


def write_meanings(dataset, family):
    """Attach `family`'s name and bit meanings to the HDF5 `flags` dataset `dataset`."""
    for key, value in attributes(family).items():
        dataset.attrs[key] = value


def read_meanings(dataset):
    """{bit value: (NAME, meaning)} from the attributes of an HDF5 `flags` dataset."""
    out = {}
    for key, text in dataset.attrs.items():
        if key.startswith("bit_"):
            name, _, meaning = str(text).partition(": ")
            out[int(key.removeprefix("bit_"))] = (name, meaning)
    return dict(sorted(out.items()))


def is_set(values, bits):
    """Boolean array: which of `values` (a flags column: array, list or pandas Series) have any of `bits` set.

    The one way to test a column. An `IntFlag` member iterates over its bits, so pandas
    takes it for a list and refuses `series & member`; plain integers on both sides avoid that.
    """
    return (np.asarray(values, dtype=np.int64) & int(bits)) != 0


def decode(value, meanings):
    """Names of the bits set in `value`, given `read_meanings`' mapping; an undocumented bit raises."""
    value, names = int(value), []
    for shift in range(value.bit_length()):
        bit = 1 << shift
        if value & bit:
            if bit not in meanings:
                raise ValueError(f"bit {bit} of flags {value} has no documented meaning")
            names.append(meanings[bit][0])
    return names


def check_file(path):
    """What is wrong with the `flags` datasets of HDF5 file `path`: a list of problems, empty when none.

    Every dataset called `flags`, at any depth, must name a known family, carry
    exactly that family's bit attributes, and have no value with a bit outside it.
    """
    datasets = []
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, item: datasets.append(name) if name.split("/")[-1] == "flags" else None)
        problems = []
        for name in datasets:
            dataset = h5[name]
            where = f"{path}:/{name}"
            if not isinstance(dataset, h5py.Dataset):
                problems.append(f"{where}: a group, not a flags column")
                continue
            if FAMILY_ATTR not in dataset.attrs:
                problems.append(f"{where}: no {FAMILY_ATTR} attribute (bit meanings missing)")
                continue
            try:
                family = family_named(str(dataset.attrs[FAMILY_ATTR]))
            except KeyError as error:
                problems.append(f"{where}: {error.args[0]}")
                continue
            stored = {key: str(value) for key, value in dataset.attrs.items() if key.startswith(("bit_", FAMILY_ATTR))}
            if stored != attributes(family):
                problems.append(f"{where}: attributes differ from {family.__name__}'s bits")
            values = np.asarray(dataset[()], dtype=np.int64)
            stray = int(np.bitwise_or.reduce(values.ravel(), initial=0)) & ~sum(family.meanings())
            if stray:
                problems.append(f"{where}: bits {stray:#x} set but not in {family.__name__}")
    return problems
