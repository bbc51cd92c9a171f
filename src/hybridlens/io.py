"""HDF5 artifacts: atomic, self-describing, reproducible shards.

Layout of a shard (see DESIGN section 3):
    /<image arrays>        float32 (N, H, W), one image per chunk, compressed
    /params/<name>         1-D float64, `units` attr
    /components/<name>     (N, K) per-component source truths, NaN-padded
    /index                 global image index within the data set
    /flags                 uint8 bit field; attrs flag_family and bit_<n> = "NAME: meaning"
                           (`hybridlens.flags`)
    root attrs             versions, config SHA-256, seed, survey, stage, ...
Files are written under a temporary name and renamed, so a killed job never
leaves a complete-looking half file; creation times are not recorded, so the
same inputs give the same bytes.
"""

import json
import os
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from hybridlens import __version__
from hybridlens.flags import write_meanings


def provenance(stage, settings_digest, seed, survey=None, **extra):
    """Root attributes every artifact carries."""
    attrs = {
        "hybridlens_version": __version__,
        "autolens_version": metadata.version("autolens"),
        "config_sha256": settings_digest,
        "seed": int(seed),
        "stage": stage,
    }
    if survey is not None:
        attrs["survey"] = json.dumps(survey, sort_keys=True)
    attrs.update(extra)
    return attrs


def write_shard(path, attrs, arrays=None, params=None, units=None, groups=None, flags=None, flag_family=None):
    """Atomically write one shard.

    `arrays` are (N, ...) datasets at the root (images chunked one per chunk),
    `params` 1-D columns under /params with `units[name]`, `groups` maps a group
    name to {dataset: array}, `flags` is the per-image bit field of `flag_family`
    (a `hybridlens.flags` family, whose bit meanings it carries as attributes, as does
    a `flags` column among `params`).
    """
    if (flags is not None or "flags" in (params or {})) and flag_family is None:
        raise ValueError("a flags column needs its flag_family (hybridlens.flags) for its bit meanings")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w", track_order=False) as h5:
            for key, value in attrs.items():
                h5.attrs[key] = value
            for name, array in (arrays or {}).items():
                array = np.asarray(array)
                chunks = (1, *array.shape[1:]) if array.ndim >= 2 and array.shape[0] else None
                h5.create_dataset(
                    name,
                    data=array,
                    chunks=chunks,
                    compression="gzip" if chunks else None,
                    shuffle=bool(chunks),
                    track_times=False,
                )
            if params is not None:
                group = h5.create_group("params")
                for name, values in params.items():
                    dataset = group.create_dataset(name, data=np.asarray(values), track_times=False)
                    dataset.attrs["units"] = (units or {}).get(name, "")
                    if name == "flags":  # a table's flags column (rounds, fits): decodable like the root one
                        write_meanings(dataset, flag_family)
            for group_name, members in (groups or {}).items():
                group = h5.create_group(group_name)
                for name, values in members.items():
                    group.create_dataset(name, data=np.asarray(values), track_times=False)
            if flags is not None:
                dataset = h5.create_dataset("flags", data=np.asarray(flags, dtype=np.uint8), track_times=False)
                write_meanings(dataset, flag_family)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_params(paths, group="params"):
    """Concatenate the 1-D columns of `group` (plus index and flags) across shards."""
    frames = []
    for path in paths:
        with h5py.File(path, "r") as h5:
            columns = {name: h5[group][name][()] for name in h5[group]} if group in h5 else {}
            for name in ("index", "flags"):
                if name in h5:
                    columns[name] = h5[name][()]
            frames.append(pd.DataFrame(columns))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_array(paths, name, select=None):
    """Concatenate dataset `name` across shards; `select` picks rows per shard."""
    parts = []
    for path in paths:
        with h5py.File(path, "r") as h5:
            parts.append(h5[name][()] if select is None else h5[name][select])
    return np.concatenate(parts) if parts else np.empty((0,))


def read_attrs(path):
    with h5py.File(path, "r") as h5:
        return dict(h5.attrs)


def read_lens(simulation, mask, row):
    """One lens of a simulation shard with its annulus: arrays, truths, survey, flags.

    See `masking.usable` for whether it can be modelled.
    """
    with h5py.File(simulation, "r") as sim, h5py.File(mask, "r") as msk:
        return {
            "image": sim["image"][row],
            "noise_map": sim["noise_map"][row],
            "mask": msk["mask"][row],
            "truth": {name: float(sim["params"][name][row]) for name in sim["params"]},
            "annulus": {name: float(msk["params"][name][row]) for name in msk["params"]},
            "index": int(sim["index"][row]),
            "survey": json.loads(sim.attrs["survey"]),
            "simulation_flags": int(sim["flags"][row]),
            "mask_flags": int(msk["flags"][row]),
        }


def read_relations(path):
    """The under / correct / over relations of `calibrate_relations` as {class: {key: float}}."""
    with h5py.File(path, "r") as h5:
        return {name: {key: float(h5[name][key][()]) for key in h5[name]} for name in ("under", "correct", "over")}


def _wall_clock(name):
    """Datasets and attributes that time a run: they differ between any two runs of the same code."""
    return "seconds" in name.rsplit("/", 1)[-1]


def _same(mine, theirs, rtol):
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        return False
    if mine.dtype.kind in "fc" and rtol:
        return np.allclose(mine, theirs, rtol=rtol, atol=0, equal_nan=True)
    if mine.dtype.kind in "fc":
        return np.array_equal(mine, theirs, equal_nan=True)
    if mine.dtype.kind == "O":
        return mine.tolist() == theirs.tolist()
    return mine.tobytes() == theirs.tobytes()


def _attribute(value):
    """An attribute as compared: a JSON record (e.g. a catalogue row) without its wall-clock timings."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            record = json.loads(value)
        except ValueError:
            return value
        return json.dumps({k: v for k, v in record.items() if not _wall_clock(k)}, sort_keys=True)
    return value


def differences(path, reference, rtol=0.0):
    """How HDF5 file `path` differs from `reference`: datasets (bit for bit, or to `rtol` for floats) and
    attributes, wall-clock timings aside. An empty list means the same artifact: what "same config and
    seed, same bytes" promises, and what a resumed or relocated run is checked against."""
    found = []

    def members(h5):
        out = {"/": h5}
        h5.visititems(lambda key, item: out.__setitem__(key, item))
        return out

    with h5py.File(path, "r") as a, h5py.File(reference, "r") as b:
        mine, theirs = members(a), members(b)
        for key in sorted(mine.keys() ^ theirs.keys()):
            found.append(f"{key}: only in {path if key in mine else reference}")
        for key in sorted(mine.keys() & theirs.keys()):
            x, y = mine[key], theirs[key]
            if isinstance(x, h5py.Dataset) and not _wall_clock(key) and not _same(x[()], y[()], rtol):
                found.append(f"{key}: values differ")
            for name in sorted(set(x.attrs) | set(y.attrs)):
                if _wall_clock(name):
                    continue
                if name not in x.attrs or name not in y.attrs:
                    found.append(f"{key}@{name}: attribute only in one file")
                elif not _same(_attribute(x.attrs[name]), _attribute(y.attrs[name]), 0.0):
                    found.append(f"{key}@{name}: attribute differs")
    return found
