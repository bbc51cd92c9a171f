"""Load, merge and validate the workflow configuration.

The schema rejects unknown keys and out-of-range values; the cross-field checks
below catch what JSON schema cannot (a survey name that is no preset, min > max).
Every error names the key, so a typo in config.yaml stops the run at once
instead of surfacing as a crash deep inside a rule.
"""

import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

# The workflow's config folder (schema, defaults, autolens' own settings): the package is
# installed editable from src/, so the folder sits two levels above it.
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SCHEMA = CONFIG_DIR / "schema.yaml"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names its key."""


def deep_merge(base, override):
    """Recursively update `base` with `override`, as Snakemake merges --configfile."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load(*paths):
    """Read YAML files in order, later ones overriding earlier ones, and validate."""
    config = {}
    for path in paths:
        with open(path) as handle:
            config = deep_merge(config, yaml.safe_load(handle) or {})
    return validate(config)


def _key_path(error):
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def validate(config, schema_path=SCHEMA):
    """Return `config` if valid, else raise ConfigError naming the offending key."""
    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        if error.validator == "additionalProperties":
            unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            parent = _key_path(error)
            keys = ", ".join(f"{parent}.{k}" if error.absolute_path else k for k in unknown)
            raise ConfigError(f"config key {keys}: unknown key (typo?)")
        raise ConfigError(f"config key {_key_path(error)}: {error.message}")
    _check_cross_fields(config)
    return config


def _check_ranges(node, path):
    if isinstance(node, list) and len(node) == 2 and all(isinstance(v, (int, float)) for v in node):
        if node[0] >= node[1] and path.split(".")[-1].endswith(("range", "under", "correct", "over")):
            raise ConfigError(f"config key {path}: lower {node[0]} >= upper {node[1]}")
    if isinstance(node, dict):
        if isinstance(node.get("min"), (int, float)) and isinstance(node.get("max"), (int, float)):
            if node["min"] > node["max"]:
                raise ConfigError(f"config key {path}: min {node['min']} > max {node['max']}")
        for key, value in node.items():
            _check_ranges(value, f"{path}.{key}" if path else key)


def _check_cross_fields(config):
    for stage in ("simulate_slacs", "simulate_training"):
        name = config[stage]["survey"]
        if name not in config["surveys"]:
            known = ", ".join(sorted(config["surveys"]))
            raise ConfigError(f"config key {stage}.survey: unknown survey {name!r} (known: {known})")
    if config["reference_survey"] not in config["surveys"]:
        raise ConfigError(f"config key reference_survey: unknown survey {config['reference_survey']!r}")
    fractions = config["simulate_training"]["source"]["fractions"]
    if sum(fractions.values()) <= 0:
        raise ConfigError("config key simulate_training.source.fractions: all fractions are zero")
    _check_ranges(config, "")
    classifier, stamp = config["classifier"], config["surveys"][config["simulate_slacs"]["survey"]]["shape"]
    if list(classifier["input_shape"]) != list(config["trainingset"]["source_shape"]) or list(
        classifier["input_shape"]
    ) != list(stamp):
        raise ConfigError(
            f"config key classifier.input_shape: {classifier['input_shape']} must equal trainingset.source_shape "
            f"{config['trainingset']['source_shape']} and the SLACS survey's stamp shape {stamp}"
        )
    if len(classifier["filters"]) != len(classifier["kernel_sizes"]):
        raise ConfigError("config key classifier.kernel_sizes: needs one kernel size per entry of classifier.filters")
    n_slacs = config["simulate_slacs"]["n_images"]
    if config["calibrate_relations"]["n_lenses"] > n_slacs:
        raise ConfigError(
            f"config key calibrate_relations.n_lenses: {config['calibrate_relations']['n_lenses']} > "
            f"simulate_slacs.n_images ({n_slacs})"
        )


def survey_settings(config, stage):
    """The survey preset a stage uses, with its name."""
    name = config[stage]["survey"]
    return {"name": name, **config["surveys"][name]}


def n_shards(settings):
    """Shards of a data set: ceil(n_images / shard_size)."""
    return -(-settings["n_images"] // settings["shard_size"])


def shard_indices(shard, settings):
    """Global image indices held by shard number `shard`."""
    start = shard * settings["shard_size"]
    return range(start, min(start + settings["shard_size"], settings["n_images"]))


def digest(section):
    """SHA-256 of a config section in canonical JSON: the provenance of an artifact."""
    text = json.dumps(section, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def p21_testset_settings(config):
    """The P21 test sets' block with what it borrows: parametric sources as P21's training set
    (with the test sets' type fractions), real-morphology sources as M21's, the truth fit's settings."""
    testsets = config["p21_testsets"]
    return {
        **testsets,
        "parametric_source": {**config["simulate_training"]["source"], "fractions": testsets["parametric_fractions"]},
        "real_source": config["simulate_slacs"]["source"],
        "kappa_fit": config["p21_comparison"]["kappa_fit"],
    }


def file_digest(path):
    """SHA-256 of a file's bytes ('missing' when there is no file): a cache key for user inputs."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return "missing"
