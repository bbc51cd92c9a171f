"""Flag families: one definition per bit, each with its meaning, carried by every HDF5 flags column."""

import ast
import inspect
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from hybridlens import flags, io
from hybridlens.flags import (
    ComparisonFlag,
    GuardedFlag,
    HybridFlag,
    MaskFlag,
    SimulationFlag,
    TrainingPairFlag,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "hybridlens"

# The bits each artifact family has always written: changing one changes the pipeline's files.
WRITTEN_BITS = {
    "SimulationFlag": {"NO_ACCEPTED_DRAW": 1, "SINGLY_IMAGED": 2},
    "MaskFlag": {"NONFINITE": 1, "EMPTY": 2, "BEYOND_STAMP": 4, "INPUT_FLAGGED": 8, "ONE_SIDED": 16, "RECENTRED": 32},
    "CalibrationFlag": {"UNUSABLE": 1},
    "TrainingPairFlag": {"NO_MASK": 1, "INVERSION_FAILED": 2},
    "HybridFlag": {"FIT_FAILED": 1, "MANUAL": 2, "CALL_CAP": 4, "UNUSABLE": 8},
    "GuardedFlag": {
        "FIT_FAILED": 1,
        "MANUAL": 2,
        "CALL_CAP": 4,
        "UNUSABLE": 8,
        "BAD_INPUT": 16,
        "NO_LENS": 32,
        "BNN_OFF_MASK": 64,
        "PAIR_PRIOR": 128,
    },
    "ComparisonFlag": {
        "UNUSABLE": 1,
        "NO_RING": 2,
        "NO_PREDICTION": 4,
        "FIT_FAILED": 8,
        "CALL_CAP": 16,
        "RING_CLIPPED": 32,
        "RING_SMOOTHED": 64,
    },
}


def family_classes():
    """Every flag family defined in `hybridlens.flags`, found by scanning the module."""
    return [
        value
        for value in vars(flags).values()
        if inspect.isclass(value) and issubclass(value, flags.FlagFamily) and value is not flags.FlagFamily
    ]


def test_every_family_is_registered_and_writes_its_historic_bits():
    assert set(family_classes()) == set(flags.FAMILIES)
    assert {family.__name__: {bit.name: int(bit) for bit in family} for family in flags.FAMILIES} == WRITTEN_BITS


@pytest.mark.parametrize("family", flags.FAMILIES, ids=lambda family: family.__name__)
def test_members_are_single_bits_with_unique_names_and_a_meaning(family):
    bits = list(family)
    assert bits, "a family without bits"
    names = [bit.name for bit in bits]
    assert len(names) == len(set(names))
    assert len({int(bit) for bit in bits}) == len(bits)  # no two names for one bit
    for bit in bits:
        value = int(bit)
        assert value > 0 and value & (value - 1) == 0, f"{family.__name__}.{bit.name} is not a single bit"
        assert value < 256, "flags columns are uint8"
        assert isinstance(bit.meaning, str) and bit.meaning.strip(), f"{family.__name__}.{bit.name} has no meaning"
    assert family.__doc__ and family.__doc__.strip()
    all_bits = sum(int(bit) for bit in bits)
    for name, member in family.__members__.items():
        if name not in names:  # a mask of several bits
            value = int(member)
            assert value & (value - 1) and not value & ~all_bits, f"{family.__name__}.{name} is no union of bits"
            assert member.meaning.strip()


def test_masks_are_the_unions_they_stand_for():
    assert MaskFlag.NO_MASK == MaskFlag.NONFINITE | MaskFlag.EMPTY
    not_fitted = ComparisonFlag.UNUSABLE | ComparisonFlag.NO_RING | ComparisonFlag.NO_PREDICTION
    assert ComparisonFlag.NOT_FITTED == not_fitted | ComparisonFlag.FIT_FAILED
    failed = GuardedFlag.BAD_INPUT | GuardedFlag.NO_LENS | GuardedFlag.UNUSABLE | GuardedFlag.FIT_FAILED
    assert GuardedFlag.FAILED == failed


def test_a_guarded_lens_reads_its_rounds_hybrid_bits_unchanged():
    for bit in HybridFlag:
        assert int(GuardedFlag[bit.name]) == int(bit) and GuardedFlag[bit.name].meaning == bit.meaning


def test_combinations_describe_their_bits_in_order():
    both = ComparisonFlag.RING_CLIPPED | ComparisonFlag.CALL_CAP
    assert both.describe() == f"{ComparisonFlag.CALL_CAP.meaning}; {ComparisonFlag.RING_CLIPPED.meaning}"
    assert both.meaning == both.describe() and GuardedFlag(0).describe() == ""
    assert GuardedFlag(57).describe().count(";") == 3  # FAILED's four bits, not its own summary
    assert TrainingPairFlag.meanings() == {
        1: TrainingPairFlag.NO_MASK.meaning,
        2: TrainingPairFlag.INVERSION_FAILED.meaning,
    }


def _module_level_flag_names(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and re.search(r"^FLAGS?_|_FLAGS?$|_BITS$", name.id):
                    names.append(f"{path.relative_to(ROOT)}:{node.lineno} {name.id}")
    return names


def test_no_flag_constants_outside_the_flags_module():
    leftovers = [
        name
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "flags.py"
        for name in _module_level_flag_names(path)
    ]
    assert leftovers == []
    old_names = re.compile(r"\.FLAGS?_[A-Z]|\bFAILURE_FLAGS\b|\bflag_bits\b|\bFLAG_BITS\b")
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "workflow").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    sources += [path for path in (ROOT / "tests").glob("*.py") if path.name != Path(__file__).name]
    stale = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if old_names.search(line)
    ]
    assert stale == []


def test_meanings_round_trip_through_a_shard(tmp_path):
    values = [0, int(ComparisonFlag.CALL_CAP | ComparisonFlag.RING_SMOOTHED), int(ComparisonFlag.NO_RING)]
    path = io.write_shard(
        tmp_path / "fits.h5", {"seed": 0}, params={"x": [1.0, 2.0, 3.0]}, flags=values, flag_family=ComparisonFlag
    )
    with h5py.File(path, "r") as h5:
        meanings = flags.read_meanings(h5["flags"])
        stored = h5["flags"][()]
        assert h5["flags"].attrs["flag_family"] == "ComparisonFlag"
    assert stored.dtype == np.uint8 and stored.tolist() == values
    assert meanings == {int(bit): (bit.name, bit.meaning) for bit in ComparisonFlag}
    assert [flags.decode(value, meanings) for value in stored] == [[], ["CALL_CAP", "RING_SMOOTHED"], ["NO_RING"]]
    with pytest.raises(ValueError, match="bit 128"):
        flags.decode(128, meanings)
    assert flags.check_file(path) == []


def test_check_file_finds_flags_without_or_with_wrong_meanings(tmp_path):
    path = tmp_path / "hand_made.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("flags", data=np.array([0, 1, 2], np.uint8))  # no meanings
        good = h5.create_group("rounds").create_dataset("flags", data=np.array([0, 4], np.uint8))
        flags.write_meanings(good, HybridFlag)
        stray = h5.create_group("masks").create_dataset("flags", data=np.array([64], np.uint8))
        flags.write_meanings(stray, MaskFlag)  # MaskFlag has no bit 64
        unknown = h5.create_group("other").create_dataset("flags", data=np.zeros(1, np.uint8))
        unknown.attrs["flag_family"] = "NoSuchFlag"
        stale = h5.create_group("stale").create_dataset("flags", data=np.zeros(1, np.uint8))
        flags.write_meanings(stale, SimulationFlag)
        stale.attrs["bit_1"] = "an old text"
        h5.create_dataset("not_flags", data=np.array([255], np.uint8))
    problems = flags.check_file(path)
    assert len(problems) == 4, problems
    assert any(p.endswith(":/flags: no flag_family attribute (bit meanings missing)") for p in problems)
    assert any("/masks/flags: bits 0x40 set but not in MaskFlag" in p for p in problems)
    assert any("/other/flags" in p and "NoSuchFlag" in p for p in problems)
    assert any("/stale/flags: attributes differ" in p for p in problems)
    assert not any("/rounds/flags" in p for p in problems)
    clean = tmp_path / "clean.h5"
    with h5py.File(clean, "w") as h5:
        h5.create_dataset("image", data=np.zeros((1, 2, 2)))
    assert flags.check_file(clean) == []


def test_is_set_tests_a_pandas_column_against_a_member():
    """pandas takes an IntFlag member for a list (it iterates over its bits): `is_set` is the safe test."""
    import pandas as pd

    column = pd.Series([0, 1, 4, 5, 8], name="flags")
    with pytest.raises(TypeError):
        column & flags.HybridFlag.FIT_FAILED
    assert flags.is_set(column, flags.HybridFlag.FIT_FAILED).tolist() == [False, True, False, True, False]
    either = flags.HybridFlag.FIT_FAILED | flags.HybridFlag.UNUSABLE
    assert flags.is_set(column.to_numpy(), either).tolist() == [False, True, False, True, True]
