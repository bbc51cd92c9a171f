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
