import json

import h5py
import numpy as np
import pytest

from hybridlens import io
from hybridlens.flags import SimulationFlag


def test_shard_layout_units_and_provenance(tmp_path):
    images = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    path = io.write_shard(
        tmp_path / "s" / "shard-00000.h5",
        io.provenance("simulate_slacs", "abc", 5, {"pixel_scale": 0.1}),
        arrays={"image": images, "index": np.arange(3)},
        params={"einstein_radius": [1.0, 1.2, 0.9]},
        units={"einstein_radius": "arcsec"},
        groups={"components": {"intensity": np.ones((3, 2))}},
        flags=[0, 1, 0],
        flag_family=SimulationFlag,
    )
    with h5py.File(path) as h5:
        assert h5["image"].chunks == (1, 8, 8) and h5["image"].compression == "gzip"
        assert h5["params/einstein_radius"].attrs["units"] == "arcsec"
        assert h5["flags"].attrs["bit_1"] == f"NO_ACCEPTED_DRAW: {SimulationFlag.NO_ACCEPTED_DRAW.meaning}"
        assert h5["flags"].attrs["flag_family"] == "SimulationFlag"
        assert h5.attrs["seed"] == 5 and h5.attrs["config_sha256"] == "abc"
        assert "autolens_version" in h5.attrs and "pixel_scale" in h5.attrs["survey"]
    table = io.read_params([path, path])
    assert list(table["einstein_radius"]) == [1.0, 1.2, 0.9] * 2 and list(table["flags"]) == [0, 1, 0] * 2
    assert io.read_array([path, path], "image").shape == (6, 8, 8)


def test_a_flags_column_needs_its_family(tmp_path):
    with pytest.raises(ValueError, match="flag_family"):
        io.write_shard(tmp_path / "shard.h5", {"seed": 1}, flags=[0, 1])
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "shard-00000.h5"
    with pytest.raises(TypeError):
        io.write_shard(target, {"seed": 1}, arrays={"image": np.zeros((2, 4, 4))}, params={"bad": [object()]})
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_atomically(tmp_path):
    target = tmp_path / "shard.h5"
    io.write_shard(target, {"v": 1}, arrays={"x": np.zeros((1, 2, 2))})
    io.write_shard(target, {"v": 2}, arrays={"x": np.ones((1, 2, 2))})
    assert io.read_attrs(target)["v"] == 2 and io.read_array([target], "x").sum() == 4
    assert [p.name for p in tmp_path.iterdir()] == ["shard.h5"]


def test_differences_name_what_changed_and_leave_wall_clock_timings_aside(tmp_path):
    def shard(name, image_scale=1.0, seconds=1.0, row_seconds=3.0, einstein_radius=1.2):
        return io.write_shard(
            tmp_path / name,
            {"config_sha256": "abc", "catalogue_row": json.dumps({"theta_E": 1.2, "seconds": row_seconds})},
            arrays={"image": np.full((2, 4, 4), image_scale, np.float32)},
            params={"einstein_radius": np.array([einstein_radius, 0.9]), "seconds": np.array([seconds, 2.0])},
        )

    reference = shard("a.h5")
    assert io.differences(shard("b.h5", seconds=7.0, row_seconds=9.0), reference) == []
    assert io.differences(shard("c.h5", image_scale=1.0 + 1e-6), reference) == ["image: values differ"]
    shifted = shard("d.h5", einstein_radius=1.2 * (1 + 1e-12))
    assert io.differences(shifted, reference) == ["params/einstein_radius: values differ"]
    assert io.differences(shifted, reference, rtol=1e-9) == []  # e.g. another BLAS' summation order
    with h5py.File(shard("e.h5"), "a") as h5:
        h5.attrs["config_sha256"] = "xyz"
        h5.create_dataset("extra", data=[1])
    assert io.differences(tmp_path / "e.h5", reference) == [
        f"extra: only in {tmp_path / 'e.h5'}",
        "/@config_sha256: attribute differs",
    ]
