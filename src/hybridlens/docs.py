"""The documentation that is generated, not typed: the configuration reference and a run's numbers.

- `configuration_markdown` turns config/schema.yaml (nested objects, `$defs`/`$ref`, types, enums,
  bounds, descriptions) and the default config into docs/configuration.md, one table per top-level block.
- `collect_benchmarks` (each file's rule from the rules' `benchmark:` patterns), `stage_times` and
  `stage_times_markdown` turn a run's logs/benchmarks/ (Snakemake `benchmark:` TSVs) into time per rule.
- `results_at_a_glance` puts the headline numbers of a run's results/figures/*.json beside the papers'.
- `replace_block` rewrites one marked block of the README and nothing else.

`snakemake docs` (workflow/rules/docs.smk) writes all of them; `python -m hybridlens.docs` rewrites
docs/configuration.md alone.
"""

import json
import math
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hybridlens.vocabulary import CLASSES, P21_ESTIMATORS

CONFIGURATION_COMMAND = "python -m hybridlens.docs"
DOCS_COMMAND = "snakemake docs --cores 1"
RESULTS_BLOCK = "results-at-a-glance"
NOT_RUN = "not run"
MISSING = "—"

# --- the configuration reference ---------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def resolve(node, root):
    """`node` with every `$ref` (a local JSON pointer into `root`) replaced by its target, its own keywords on top.

    A description beside the `$ref` comes first, the target's after it (both describe the key).
    """
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot resolve $ref {ref!r}")
        seen.add(ref)
        target = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        own = {key: value for key, value in node.items() if key != "$ref"}
        if "description" in own and target.get("description") and own["description"] != target["description"]:
            own["description"] = f"{str(own['description']).strip()} — {str(target['description']).strip()}"
        node = {**target, **own}
    return node


def _number(value):
    return json.dumps(value)


def _bounds(node):
    low = ("(", node["exclusiveMinimum"]) if "exclusiveMinimum" in node else ("[", node.get("minimum"))
    high = (")", node["exclusiveMaximum"]) if "exclusiveMaximum" in node else ("]", node.get("maximum"))
    if low[1] is not None and high[1] is not None:
        return f" in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
    if low[1] is not None:
        return f" {'>' if low[0] == '(' else '≥'} {_number(low[1])}"
    if high[1] is not None:
        return f" {'<' if high[0] == ')' else '≤'} {_number(high[1])}"
    return ""


def type_text(node, root):
    """A schema node's type in words: `number > 0`, `integer ≥ 1 or null`, `array[2] of number`, `one of: a, b`."""
    node = resolve(node, root)
    if "enum" in node:
        return "one of: " + ", ".join(f"`{json.dumps(v) if not isinstance(v, str) else v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            return " or ".join(type_text(alternative, root) for alternative in node[combinator])
    types = node.get("type")
    if types is None:
        types = "object" if ("properties" in node or "additionalProperties" in node) else "any"
    types = [types] if isinstance(types, str) else list(types)
    words = []
    for kind in types:
        if kind in ("number", "integer"):
            words.append(kind + _bounds(node))
        elif kind == "array":
            size = node.get("minItems")
            shape = f"[{size}]" if size is not None and size == node.get("maxItems") else ""
            items = f" of {type_text(node['items'], root)}" if isinstance(node.get("items"), dict) else ""
            words.append(f"array{shape}{items}")
        elif kind == "object" and isinstance(node.get("additionalProperties"), dict) and "properties" not in node:
            words.append("mapping of name → object")
        else:
            words.append(kind)
    return " or ".join(words)


def default_text(value):
    """A default as it is written in YAML/JSON, in code format."""
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def _children(path, node, root, default, has_default, varies):
    """Rows of an object's properties (dotted paths) and of the entries of a mapping (`<name>`)."""
    rows = []
    required = set(node.get("required", ()))
    for key, child in node.get("properties", {}).items():
        present = has_default and isinstance(default, dict) and key in default
        value = default.get(key) if present else None
        rows += schema_rows(f"{path}.{key}", child, root, value, present, key not in required, varies)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        rows += schema_rows(f"{path}.<name>", extra, root, None, False, False, varies=True)
    return rows


def schema_rows(path, node, root, default=None, has_default=False, optional=False, varies=False):
    """Rows for `node` at dotted `path`: a leaf gives one; an object gives one (if described) plus its children's."""
    node = resolve(node, root)
    description = str(node.get("description", "")).strip()
    if optional:
        description = f"*optional* — {description}" if description else "*optional*"
    if not has_default and "default" in node:
        default, has_default = node["default"], True
    nested = "properties" in node or isinstance(node.get("additionalProperties"), dict)
    if varies:
        shown = "per entry"
    elif not has_default:
        shown = "*not set*"
    elif nested and "properties" in node:
        shown = "" if default else default_text(default)
    elif nested:  # a mapping: its entries' names
        shown = ", ".join(f"`{name}`" for name in default) if default else default_text(default)
    else:
        shown = default_text(default)
    rows = []
    if not nested or description or shown not in ("", "*not set*", "per entry"):
        rows.append(Row(path, type_text(node, root), shown, description))
    if nested:
        rows += _children(path, node, root, default, has_default and not varies, varies)
    return rows


def _table(rows):
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for row in rows:
        cells = (f"`{row.key}`", _cell(row.type), _cell(row.default), _cell(row.description))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def configuration_markdown(schema, defaults=None):
    """docs/configuration.md: the top-level scalars in one table, then one table per top-level block."""
    defaults = defaults or {}
    header = [
        "# Configuration reference",
        "",
        f"Generated from `config/schema.yaml` (types, ranges, descriptions) and `config/config.yaml` (defaults) "
        f"by `{CONFIGURATION_COMMAND}` or `{DOCS_COMMAND}`; edit the schema, not this page. "
        "`--configfile` files are merged over the defaults, so an override needs only the keys it changes; "
        "a bad value or an unknown key stops the run with `config key <dotted.path>: <reason>`.",
        "",
    ]
    if schema.get("description"):
        header += [" ".join(str(schema["description"]).split()), ""]
    scalars, blocks = [], []
    for key, node in schema.get("properties", {}).items():
        resolved = resolve(node, schema)
        rows = schema_rows(key, node, schema, defaults.get(key), key in defaults)
        if "properties" in resolved or isinstance(resolved.get("additionalProperties"), dict):
            blocks.append((key, resolved, rows))
        else:
            scalars += rows
    sections = []
    if scalars:
        sections.append("## Top-level keys\n\n" + _table(scalars))
    for key, resolved, rows in blocks:
        about = " ".join(str(resolved.get("description", "")).split())
        own = [row if row.key != key else Row(row.key, row.type, row.default, "") for row in rows]
        own = [row for row in own if row.key != key or "properties" not in resolved]
        sections.append(f"## `{key}`\n\n" + (f"{about}\n\n" if about else "") + _table(own))
    return "\n".join(header) + "\n" + "\n\n".join(sections) + "\n"


def write_configuration(schema_path, defaults_path, out_path):
    """Write the configuration reference; returns its text."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    defaults = yaml.safe_load(Path(defaults_path).read_text()) or {}
    text = configuration_markdown(schema, defaults)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(text)
    return text


# --- stage times from a run's benchmark files ----------------------------------------------------


@dataclass(frozen=True)
class Job:
    rule: str | None
    path: str
    seconds: float
    end: float | None  # the benchmark file's modification time (the job's end), epoch seconds


def pattern_regex(pattern, constraints=None):
    """A benchmark path pattern as a regex: `{name}` takes its constraint (inline `{name,regex}`, else
    `constraints[name]`, else `.+`, as Snakemake does); a wildcard that repeats must repeat its value."""
    constraints = constraints or {}
    parts, seen, position = [], set(), 0
    for match in re.finditer(r"\{(\w+)(?:,((?:[^{}]|\{[^{}]*\})*))?\}", pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        name, inline = match.group(1), match.group(2)
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            parts.append(f"(?P<{name}>{inline or constraints.get(name, '.+')})")
            seen.add(name)
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts) + r"\Z")


def rule_of(path, patterns, constraints=None):
    """The rule whose benchmark pattern matches `path` (the most literal one if several do), else None.

    `patterns` {rule: benchmark path pattern}, as the workflow's rules declare them.
    """
    candidates = [
        (len(re.sub(r"\{(?:[^{}]|\{[^{}]*\})*\}", "", pattern)), rule)
        for rule, pattern in patterns.items()
        if pattern_regex(pattern, constraints).match(path)
    ]
    return max(candidates)[1] if candidates else None


def read_benchmark(path):
    """Wall seconds of a Snakemake benchmark TSV, the mean over its rows (repeats); NaN if unreadable.

    Its `cpu_time` is not read: Snakemake samples it (every 0.5 s for a job's first 15 s, then every
    30 s), so up to 30 s at each job's end is missed, two thirds of a 45-s job's CPU.
    """
    lines = [line.split("\t") for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) < 2 or "s" not in lines[0]:
        return math.nan
    column = lines[0].index("s")
    values = []
    for row in lines[1:]:
        try:
            values.append(float(row[column]))
        except (ValueError, IndexError):
            continue
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def collect_benchmarks(root, patterns, constraints=None, folder="logs/benchmarks"):
    """Every benchmark file under root/folder as a Job (its rule from the patterns); none if the folder is absent."""
    root = Path(root)
    jobs = []
    for path in sorted((root / folder).rglob("*.tsv")) if (root / folder).is_dir() else []:
        relative = path.relative_to(root).as_posix()
        jobs.append(Job(rule_of(relative, patterns, constraints), relative, read_benchmark(path), path.stat().st_mtime))
    return jobs


def run_files_digest(root="."):
    """A digest of a run's figure JSONs and benchmark files (names and modification times).

    `snakemake docs` takes it as a parameter, so a new or rewritten result reruns the rule.
    """
    import hashlib

    root = Path(root)
    paths = sorted([*(root / "results/figures").glob("*.json"), *(root / "logs/benchmarks").rglob("*.tsv")])
    listing = [(path.relative_to(root).as_posix(), path.stat().st_mtime_ns) for path in paths]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def stage_times(jobs, order=(), threads=None):
    """Per rule: jobs, min / median / max wall seconds, summed wall minutes and core-minutes; rules in `order` first.

    Core-minutes are wall x the cores each job held (`threads` {rule: cores}, 1 where absent), as a
    cluster bills them: a job's cores are taken from the others for its whole wall time.
    """
    threads = threads or {}
    by_rule = {}
    for job in jobs:
        if job.rule is not None and math.isfinite(job.seconds):
            by_rule.setdefault(job.rule, []).append(job)
    rank = {rule: k for k, rule in enumerate(order)}
    out = []
    for rule in sorted(by_rule, key=lambda r: (rank.get(r, len(rank)), r)):
        seconds = [job.seconds for job in by_rule[rule]]
        out.append(
            {
                "rule": rule,
                "jobs": len(seconds),
                "min_s": min(seconds),
                "median_s": statistics.median(seconds),
                "max_s": max(seconds),
                "wall_min": sum(seconds) / 60,
                "core_min": sum(seconds) * threads.get(rule, 1) / 60,
            }
        )
    return out


def wall_span(jobs):
    """(start, end) epoch seconds from the first benchmarked job's start (end - wall) to the last one's end."""
    timed = [job for job in jobs if job.end is not None and math.isfinite(job.seconds)]
    if not timed:
        return None
    return min(job.end - job.seconds for job in timed), max(job.end for job in timed)


def _utc(epoch, fmt="%Y-%m-%d %H:%M"):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime(fmt)


def span_text(span):
    if span is None:
        return "no benchmarked job"
    start, end = span
    same_day = _utc(start, "%Y-%m-%d") == _utc(end, "%Y-%m-%d")
    return f"{_utc(start)} → {_utc(end, '%H:%M' if same_day else '%Y-%m-%d %H:%M')} UTC, {(end - start) / 60:.1f} min"


def stage_times_markdown(stats, span=None, unmatched=0):
    """The time-per-rule table, a total row and the run's wall span."""
    if not stats:
        return (
            "No benchmark files (`logs/benchmarks/`) in this tree: no run has been made here. The last stage times "
            "measured by hand, with their dates, are in [cost-model.md](cost-model.md).\n"
        )
    lines = [
        "| rule | jobs | min s | median s | max s | Σ wall min | core-min |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        lines.append(
            f"| `{s['rule']}` | {s['jobs']} | {s['min_s']:.1f} | {s['median_s']:.1f} | {s['max_s']:.1f} "
            f"| {s['wall_min']:.1f} | {s['core_min']:.1f} |"
        )
    total = (sum(s["jobs"] for s in stats), sum(s["wall_min"] for s in stats), sum(s["core_min"] for s in stats))
    lines.append(f"| **all benchmarked** | {total[0]} | | | | {total[1]:.1f} | {total[2]:.1f} |")
    notes = [
        "",
        "Σ wall min: the jobs' wall times added; core-min: each job's wall time times the cores it held (its "
        "rule's `threads`), as a cluster bills it. Snakemake's sampled `cpu_time` is not used: it misses up to "
        "30 s at each job's end. Rules without a `benchmark:` (figures, summaries) are not listed.",
    ]
    if span is not None:
        notes.append(f"Wall span of the benchmarked jobs (first start → last end): {span_text(span)}.")
    if unmatched:
        notes.append(f"{unmatched} benchmark file(s) match no rule's `benchmark:` pattern and are left out.")
    return "\n".join(lines + notes) + "\n"


def critical_path(jobs, tolerance=1.0):
    """The chain of jobs that set the run's wall time, back from the last job to end.

    Each link is the latest-ending job that ended before the next one began (within
    `tolerance` seconds): the job it waited for, an input or, on a machine whose cores
    were all busy, the core it needed. The benchmark files give each job's end and wall
    time, not the DAG, so this is what the run *waited on*, which is what to speed up.
    """
    timed = sorted(
        (job for job in jobs if job.rule is not None and job.end is not None and math.isfinite(job.seconds)),
        key=lambda job: job.end,
    )
    if not timed:
        return []
    chain = [timed[-1]]
    while True:
        start = chain[-1].end - chain[-1].seconds
        earlier = [job for job in timed if job.end <= start + tolerance and job not in chain]
        if not earlier:
            return chain[::-1]
        chain.append(earlier[-1])


def concurrency(jobs):
    """(mean, peak) number of benchmarked jobs running at once over the run's span (None without jobs).

    A mean near the cores the run had says the run was bound by its total work, and only less
    core time shortens it; a mean well below says a chain of jobs kept cores idle.
    """
    timed = [job for job in jobs if job.rule is not None and job.end is not None and math.isfinite(job.seconds)]
    span = wall_span(timed)
    if not timed or span is None or span[1] <= span[0]:
        return None
    events = sorted([(job.end - job.seconds, 1) for job in timed] + [(job.end, -1) for job in timed])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return sum(job.seconds for job in timed) / (span[1] - span[0]), peak


def critical_path_markdown(chain, span=None, busy=None):
    """The chain's minutes per rule, largest first, and how many jobs ran at once (`concurrency`)."""
    if not chain:
        return ""
    minutes = {}
    for job in chain:
        minutes[job.rule] = minutes.get(job.rule, 0.0) + job.seconds / 60
    ranked = sorted(minutes.items(), key=lambda item: -item[1])
    steps = ", ".join(f"`{rule}` {value:.1f}" for rule, value in ranked if value >= 0.05)
    text = (
        f"**Critical path** ({len(chain)} jobs back from the last to end, each the latest to end before the next "
        "began: what the run waited on, an input or a busy core), minutes per rule: " + steps + "."
    )
    if span is not None:
        text += f" Its jobs fill {sum(job.seconds for job in chain) / 60:.1f} min of the {(span[1] - span[0]) / 60:.1f}-min span."
    if busy is not None:
        mean, peak = busy
        text += (
            f" On average {mean:.2f} jobs ran at once (at most {peak}): where that is the run's cores, the run is "
            "bound by its total core time, not by one chain, and only less work shortens it."
        )
    return text + "\n"


@dataclass(frozen=True)
class StageUnit:
    """What a rule's cost scales with: `count(config)` units named `unit` in `jobs(config)` jobs; `settings`
    (dotted keys) change the cost per unit, so where they differ between two configs it does not carry over.

    The cost per unit is a finished job's mean core time over the units one job holds, so a run that was
    stopped part-way prices its finished jobs correctly.
    """

    unit: str
    count: object
    jobs: object
    settings: tuple = ()


def _shards(config, block):
    from hybridlens.config import n_shards

    return n_shards(config[block])


def _training_images(config):
    split = config["bnn"]["split"]
    train = config["simulate_training"]["n_images"] * (1 - split["validation"] - split["test"])
    return train * len(config["simulate_training"]["mass_models"])


def _bnn_jobs(config):
    return len(config["bnn"]["dropout_rates"]) * len(config["simulate_training"]["mass_models"])


def _p21_images(config):
    return config["p21_testsets"]["n_images"] * len(config["p21_testsets"]["sets"])


def _p21_shards(config):
    return _shards(config, "p21_testsets") * len(config["p21_testsets"]["sets"])


def _blind_lenses(config):
    return config["hybrid_modelling"]["n_images"]


def _slacs_images(config):
    return config["simulate_slacs"]["n_images"]


def _training_shards(config):
    return _shards(config, "simulate_training") * len(config["simulate_training"]["mass_models"])


_FIT = ("modelling.search", "inversion")
STAGE_UNITS = {
    "simulate_slacs": StageUnit(
        "image",
        lambda c: _slacs_images(c) + _blind_lenses(c),
        lambda c: _shards(c, "simulate_slacs") + _shards(c, "hybrid_modelling"),
        ("simulate_slacs.over_sample",),
    ),
    "simulate_training": StageUnit(
        "image",
        lambda c: c["simulate_training"]["n_images"] * len(c["simulate_training"]["mass_models"]),
        _training_shards,
    ),
    "simulate_p21_testset": StageUnit(
        "image", _p21_images, _p21_shards, ("p21_testsets.sets", "p21_testsets.over_sample")
    ),
    "calibrate_lens": StageUnit(
        "lens",
        lambda c: c["calibrate_relations"]["n_lenses"],
        lambda c: c["calibrate_relations"]["n_lenses"],
        ("calibrate_relations.search", "inversion"),
    ),
    "complex_pairs": StageUnit(
        "lens",
        lambda c: c["complex_sources"]["n_images"],
        lambda c: c["complex_sources"]["n_images"],
        ("complex_sources.max_calls", "inversion"),
    ),
    "trainingset": StageUnit(
        "lens", _slacs_images, lambda c: _shards(c, "simulate_slacs"), ("trainingset", "inversion")
    ),
    "train_classifier": StageUnit(
        "pair-epoch",
        lambda c: 3 * _slacs_images(c) * c["classifier"]["epochs"],
        lambda c: 1,
        ("classifier.filters", "classifier.threads"),
    ),
    "train_bnn": StageUnit(
        "image-epoch",
        lambda c: _training_images(c) * c["bnn"]["epochs"] * len(c["bnn"]["dropout_rates"]),
        _bnn_jobs,
        ("bnn.width", "bnn.binning", "bnn.batch_size", "bnn.augment", "bnn.threads"),
    ),
    "predict_bnn": StageUnit("image", _p21_images, _p21_shards, ("bnn.width", "bnn.binning", "bnn.mc_passes")),
    "blind_fit": StageUnit("lens", _blind_lenses, _blind_lenses, _FIT),
    "hybrid_lens": StageUnit("lens", _blind_lenses, _blind_lenses, (*_FIT, "hybrid_modelling.reruns")),
    "guarded_lens": StageUnit(
        "lens", _blind_lenses, _blind_lenses, (*_FIT, "modelling.prescan", "model_lenses.reruns")
    ),
    "p21_fit": StageUnit(
        "fit",
        lambda c: 3 * _p21_images(c),
        lambda c: 3 * _p21_shards(c),
        ("p21_testsets.sets", "p21_comparison.search", "p21_comparison.inversion"),
    ),
}


def scaled_costs(stats, run_config, target_config, units=None):
    """Per rule: core-seconds per unit measured in a run, and core-hours at `target_config`'s sizes.

    Each row says which of the rule's cost-setting keys differ between the two configs (a fit's
    calls grow with n_live, a network's time with its width): there the figure is a lower bound
    or an estimate, and the row says so rather than guessing a factor.
    """
    units = STAGE_UNITS if units is None else units
    rows = []
    for s in stats:
        stage = units.get(s["rule"])
        if stage is None or not stage.count(run_config):
            continue
        per_unit = s["core_min"] * 60 / s["jobs"] * stage.jobs(run_config) / stage.count(run_config)
        count = stage.count(target_config)
        differs = [
            key for key in stage.settings if _get(run_config, *key.split(".")) != _get(target_config, *key.split("."))
        ]
        rows.append(
            {
                "rule": s["rule"],
                "unit": stage.unit,
                "core_s_per_unit": per_unit,
                "units": count,
                "core_hours": per_unit * count / 3600,
                "differs": differs,
            }
        )
    return rows


def scaled_costs_markdown(rows, target_name):
    if not rows:
        return ""
    lines = [
        f"| rule | unit | core-s per unit (this run) | units at {target_name} | core-hours | settings that differ |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        differs = ", ".join(f"`{key}`" for key in row["differs"]) or "none"
        lines.append(
            f"| `{row['rule']}` | {row['unit']} | {row['core_s_per_unit']:.3g} | {row['units']:,.0f} "
            f"| {row['core_hours']:,.1f} | {differs} |"
        )
    total = sum(row["core_hours"] for row in rows)
    lines.append(f"| **all** | | | | {total:,.0f} | |")
    return (
        "\n".join(lines)
        + "\n\nThis run's core time per unit times the units at that scale. Where a cost-setting key differs "
        "(a search's live points, a network's width) the per-unit time does not carry over: fits at `n_live` "
        "100 take more calls, a width-1 network ~12x the core time per image (docs/p21.md), so those rows are "
        "lower bounds.\n"
    )


# --- results at a glance: a run's figure JSONs beside the papers' numbers -------------------------

# M21 Table 2 (the CNN on 6,928 held-out Sérsic pairs) and section 4.1 / Fig 12 (recall on 100 pairs per class of
# HUDF-source reconstructions): the paper's numbers, shown beside ours, never an input. The package has no other
# copy of them; the papers' other reference values are reused from the modules that report them (`paper_references`).
M21_TABLE2 = {
    "precision": {"under": 0.9996, "correct": 1.0000, "over": 0.9996},
    "recall": {"under": 1.0000, "correct": 0.9991, "over": 1.0000},
}
M21_FIG12_RECALL = {"under": 0.87, "correct": 0.87, "over": 0.93}


def paper_references():
    """The papers' reference numbers: the constants above and those the pipeline's modules already hold."""
    from hybridlens.analysis import comparison
    from hybridlens.fitting import hybrid
    from hybridlens.networks import bnn
    from hybridlens.reconstruction import calibration

    return {
        "m21_table2": M21_TABLE2,
        "m21_fig12_recall": M21_FIG12_RECALL,
        "m21_relations": calibration.M21_PUBLISHED_RELATIONS,
        "m21_hybrid": hybrid.M21_PUBLISHED_ROUNDS,
        "p21_table1_cnn": bnn.P21_TABLE1_CNN,
        "gaussian_coverage": bnn.GAUSSIAN_COVERAGE,
        "p21": comparison.P21_REFERENCE,
    }


def load_summaries(figures_dir):
    """{stem: summary} of every readable results/figures/*.json; a missing folder or file is simply absent."""
    out = {}
    folder = Path(figures_dir)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


def call_cap_hits(summaries):
    """[(figure, where, fits)]: every non-empty `call_cap_hit_fits` list in the figures' JSONs, in file order.

    A fit that stopped at its call cap did not converge; the run's page lists each one by name.
    """
    out = []

    def walk(node, stem, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "call_cap_hit_fits" and isinstance(value, list) and value:
                    out.append((stem, ".".join(path), value))
                else:
                    walk(value, stem, (*path, str(key)))

    for stem, summary in summaries.items():
        walk(summary, stem, ())
    return out


def call_cap_markdown(hits):
    if not hits:
        return "No fit in this run's figure JSONs stopped at its call cap.\n"
    lines = ["| figure JSON | where | fits (lens, round or class) |", "|---|---|---|"]
    for stem, where, fits in hits:
        listed = "; ".join(", ".join(f"{k} {v}" for k, v in fit.items()) for fit in fits)
        lines.append(f"| `{stem}.json` | {where or '—'} | {listed} |")
    return "\n".join(lines) + "\n"


def _get(tree, *keys):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value, decimals=3, unit=""):
    return f"{value:.{decimals}f}{unit}" if _finite(value) else MISSING


def _pct(value):
    return f"{100 * value:.0f} %" if _finite(value) else MISSING


def _joined(values):
    return " / ".join(values) if any(v != MISSING for v in values) else MISSING


@dataclass(frozen=True)
class Result:
    quantity: str
    ours: str
    paper: str
    source: str  # the JSON stem the value comes from


def _row(summaries, stem, quantity, paper, ours):
    """A Result; `ours(summary)` runs only when the JSON exists, and a missing key in it gives '—'."""
    if stem not in summaries:
        return Result(quantity, NOT_RUN, paper, stem)
    try:
        value = ours(summaries[stem])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        value = MISSING
    return Result(quantity, value or MISSING, paper, stem)


def _m21_rows(summaries, ref):
    relations = ref["m21_relations"]

    def slopes(s):
        lines = s["ours"]
        tags = [_num(_get(lines, c, "slope"), 2) for c in ("under", "over")]
        unreliable = [c for c in ("under", "over") if _get(lines, c, "reliable") is False]
        note = f" ({', '.join(unreliable)} unreliable; {s.get('n_lenses', '?')} lenses)" if unreliable else ""
        return _joined(tags) + note

    def scores(key, pairs=None):
        def ours(s):
            s = s.get(pairs, s) if pairs else s
            return _joined([_num(_get(s, key, c), 3) for c in CLASSES]) + f" (n = {s.get('n_pairs', '?')})"

        return ours

    def own_and_m21(s):
        own = _num(s.get("accuracy"), 3)
        return f"{_num(s['m21_pairs'].get('accuracy'), 3)} / {own}" if "m21_pairs" in s else f"{own} / {own}"

    def last_round(s):
        rounds = s["rounds"]
        name = max(rounds, key=lambda r: (r != "blind", int(r.split()[-1]) if r != "blind" else 0))
        return name, rounds[name]

    def correct(judge):
        def ours(s):
            name, state = last_round(s)
            return f"{state[judge]['correct']} / {state['n_models']} ({name})"

        return ours

    def reduction(s):
        return f"{_pct(s.get('reduction_of_unphysical_by_cnn'))} ({_pct(s.get('reduction_of_unphysical_by_truth'))})"

    def on_fits(key):
        def ours(s):
            fits = s[key]
            return f"{_num(fits.get('accuracy'), 2)} (n = {fits.get('n_fits', '?')} fits)"

        return ours

    hybrid = ref["m21_hybrid"]
    after = hybrid["cnn_counts"]["rerun 3"]
    table2 = ref["m21_table2"]
    return [
        _row(
            summaries,
            "m21_fig4_einstein_radius",
            "M21 Fig 4: slopes of θ_U(θ_E), θ_O(θ_E)",
            f"{relations['under']['slope']} / {relations['over']['slope']}",
            slopes,
        ),
        _row(
            summaries,
            "m21_fig11_confusion_sersic",
            "M21 Table 2: classifier precision U / C / O (Sérsic test pairs, M21's rows)",
            " / ".join(f"{table2['precision'][c]:.4f}" for c in CLASSES),
            scores("precision", "m21_pairs"),
        ),
        _row(
            summaries,
            "m21_fig11_confusion_sersic",
            "M21 Table 2: classifier recall U / C / O (Sérsic test pairs, M21's rows)",
            " / ".join(f"{table2['recall'][c]:.4f}" for c in CLASSES),
            scores("recall", "m21_pairs"),
        ),
        _row(
            summaries,
            "m21_fig11_confusion_sersic",
            "Classifier accuracy on the Sérsic test lenses: M21's pairs / the training rows' kind",
            "not reported",
            own_and_m21,
        ),
        _row(
            summaries,
            "m21_fig12_confusion_hudf",
            "M21 Fig 12: classifier recall U / C / O (HDF-source pairs)",
            " / ".join(f"{ref['m21_fig12_recall'][c]:.2f}" for c in CLASSES),
            scores("recall"),
        ),
        _row(
            summaries,
            "m21_fig13_hybrid",
            "M21 §4.2: hybrid loop, correct by the CNN after the last rerun",
            f"{after.get('correct', MISSING)} / {sum(after.values())} (rerun 3)",
            correct("cnn"),
        ),
        _row(
            summaries,
            "m21_fig13_hybrid",
            "Hybrid loop, correct by the truth after the last rerun",
            "not reported",
            correct("truth"),
        ),
        _row(
            summaries,
            "m21_fig13_hybrid",
            "M21 §4.2: fewer unphysical solutions, by the CNN (by the truth)",
            f"{_pct(hybrid['reduction_of_unphysical'])} (not reported)",
            reduction,
        ),
        _row(
            summaries,
            "m21_fig13_hybrid",
            "Classifier accuracy on the loop's real fits",
            "not reported",
            on_fits("classifier_on_fits"),
        ),
        _row(
            summaries,
            "m21_fig13_hybrid",
            "Guarded loop's judge (arcs traced through each fit, else classifier) on the same fits",
            "not in either paper",
            on_fits("judge_on_fits"),
        ),
    ]


def _p21_rows(summaries, ref):
    gaussian = ref["gaussian_coverage"]
    target = " / ".join(f"{100 * gaussian[k]:.1f}" for k in (1, 2, 3)) + " % (a Gaussian's)"
    units = {"einstein_radius": ("″", 3), "angle": ("°", 1), "axis_ratio": ("", 3), "slope": ("", 3)}

    def errors(names):
        return lambda s: _joined(
            [_num(_get(s, "parameters", n, "interval68"), units[n][1], units[n][0]) for n in names]
        ) + (f" (n = {s['n_test']})" if "n_test" in s else "")

    def fractional(s):
        values = [_get(s, "parameters", n, "interval68_fractional") for n in ("einstein_radius", "axis_ratio")]
        return _joined([_num(100 * v, 1, " %") if _finite(v) else MISSING for v in values])

    def coverage(s):
        cov = _get(s, "parameters", "einstein_radius", "coverage") or {}
        return (
            _joined([_num(100 * cov[f"{k}sigma"], 0) if _finite(cov.get(f"{k}sigma")) else MISSING for k in (1, 2, 3)])
            + " %"
        )

    table1 = ref["p21_table1_cnn"]
    sie = ("einstein_radius", "angle", "axis_ratio")
    rows = [
        _row(
            summaries,
            "p21_fig6_sie",
            "P21 Table 1: BNN (SIE) 68 % error θ_E / φ / q",
            " / ".join(f"{table1[n]:g}{units[n][0]}" for n in sie),
            errors(sie),
        ),
        _row(
            summaries,
            "p21_fig6_power_law",
            "BNN (power law) 68 % error θ_E / φ / q / slope",
            "not in P21 Table 1",
            errors((*sie, "slope")),
        ),
        _row(
            summaries,
            "p21_fig6_sie",
            "P21 Fig 5: BNN (SIE) 68 % error θ_E / q as fractions of the truth",
            "shown in Fig 5, not quoted",
            fractional,
        ),
        _row(
            summaries, "p21_fig6_sie", "P21 Fig 4: BNN (SIE) θ_E coverage 1σ / 2σ / 3σ (test split)", target, coverage
        ),
        _row(
            summaries, "p21_fig6_power_law", "BNN (power law) θ_E coverage 1σ / 2σ / 3σ (test split)", target, coverage
        ),
    ]
    p21 = ref["p21"]
    methods = P21_ESTIMATORS
    errors_json = summaries.get("p21_errors")
    sets = list(dict.fromkeys(row.get("testset") for row in (errors_json or {}).get("tables", []))) or [
        "sie_parametric"
    ]
    for testset in sets:
        paper = _get(p21, "tables", testset)
        paper_text = " / ".join(f"{paper[m]['einstein_radius']:g}" for m in methods) if paper else "not in P21's text"

        def ours(s, testset=testset):
            rows = {row["method"]: row for row in s["tables"] if row.get("testset") == testset}
            return _joined([_num(_get(rows, m, "einstein_radius"), 3) for m in methods]) + (
                f" (n = {s['n_images_per_set']})" if "n_images_per_set" in s else ""
            )

        rows.append(
            _row(
                summaries,
                "p21_errors",
                f"P21 Tables 1–4: θ_E 68 % fractional error, BNN / PyAL / +BNN / +BNN(1σ), `{testset}`",
                paper_text,
                ours,
            )
        )
    speed = p21["speed_up_over_blind"]

    def speed_up(s):
        return _joined([_num(_get(s, m, "speed_up_over_blind"), 2, "×") for m in ("bnn_uniform", "bnn_gaussian")])

    rows.append(
        _row(
            summaries,
            "p21_fig19_timing",
            "P21 Fig 19: speed-up over blind, PyAL + BNN / + BNN(1σ)",
            f"{speed['bnn_uniform']['mean']:.2f}× / {speed['bnn_gaussian']['mean']:.2f}×",
            speed_up,
        )
    )

    def unphysical(s):
        parts = [
            f"{s[a]['unphysical']}/{s[a]['n_modelled']}" for a in ("m21_loop", "bnn_gaussian", "guarded") if a in s
        ]
        return " / ".join(parts) if parts else MISSING

    rows.append(
        _row(
            summaries,
            "hybrid_guarded_evaluation",
            "Guarded hybrid: unphysical final models by the truth, M21 loop / PyAL + BNN(1σ) / guarded",
            "not in either paper",
            unphysical,
        )
    )

    def on_real_fits(s):
        fits = s.get("classifier_on_real_fits", {})
        parts = [
            f"{_num(fits[k].get('accuracy'), 2)} (n = {fits[k].get('n_fits', '?')})"
            for k in ("both_loops", "m21_loop", "guarded")
            if k in fits
        ]
        return " / ".join(parts) if parts else MISSING

    rows.append(
        _row(
            summaries,
            "hybrid_guarded_evaluation",
            "Classifier accuracy on real fits by the truth, both loops / M21 loop / guarded",
            "not reported",
            on_real_fits,
        )
    )
    return rows


def results_at_a_glance(summaries, references):
    """Our headline numbers (from the figure JSONs in `summaries`) beside the papers'; a missing JSON is 'not run'."""
    return _m21_rows(summaries, references) + _p21_rows(summaries, references)


def results_markdown(results, sources=False):
    head = "| quantity | ours | paper |" + (" from |" if sources else "")
    lines = [head, "|---|---|---|" + ("---|" if sources else "")]
    for r in results:
        cells = [_cell(r.quantity), _cell(r.ours), _cell(r.paper)] + ([f"`{r.source}.json`"] if sources else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- the README's generated block ------------------------------------------------------------------


def markers(name):
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text, name, content):
    """`text` with the lines between `<!-- name:start -->` and `<!-- name:end -->` replaced by `content`."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one {start} … {end} block")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content.strip()}\n{end}{after}"


def block_of(text, name):
    start, end = markers(name)
    return text.split(start, 1)[1].split(end, 1)[0].strip()


# --- the config a run used ---------------------------------------------------------------------------


def config_differences(config, defaults, path=""):
    """[(dotted key, value, default)] where `config` differs from `defaults` (leaves; a key absent on one side too)."""
    out = []
    for key in list(dict.fromkeys([*(defaults or {}), *(config or {})])):
        dotted = f"{path}.{key}" if path else str(key)
        mine, base = (config or {}).get(key, MISSING), (defaults or {}).get(key, MISSING)
        if isinstance(mine, dict) and isinstance(base, dict):
            out += config_differences(mine, base, dotted)
        elif mine != base:
            out.append((dotted, mine, base))
    return out


def config_markdown(config, defaults, digest):
    differences = config_differences(config, defaults)
    lines = [f"Config SHA-256 `{digest[:16]}`; differences from `config/config.yaml`:", ""]
    if differences:
        lines += ["| key | this run | default |", "|---|---|---|"]
        lines += [
            f"| `{key}` | {_cell(default_text(mine) if mine != MISSING else mine)} "
            f"| {_cell(default_text(base) if base != MISSING else base)} |"
            for key, mine, base in differences
        ]
    else:
        lines.append("none: the default configuration.")
    return "\n".join(lines) + "\n"


# --- what `snakemake docs` writes -------------------------------------------------------------------------


def readme_block(results, label):
    return f"{label}\n\n{results_markdown(results)}"


def run_numbers_markdown(stage_table, results, config_text, about, paper_table="", caps=""):
    paper = (
        "## At the papers' scale\n\n"
        "`config/paper.yaml`'s sizes priced at this run's measured core time per unit "
        "(the cost model of [cost-model.md](cost-model.md), re-derived from this run's benchmark files):\n\n"
        f"{paper_table}\n"
        if paper_table
        else ""
    )
    return (
        "# Run numbers\n\n"
        f"Generated by `{DOCS_COMMAND}` from this tree's `logs/benchmarks/` and `results/figures/*.json`: {about} "
        "Run it with the run's own `--configfile`. A JSON that is missing is a stage that has not run.\n\n"
        "## Results at a glance\n\n"
        "Ours beside the papers' reference values (which the package keeps for comparison only); the papers ran "
        "at full scale (`config/paper.yaml`).\n\n"
        f"{results_markdown(results, sources=True)}\n"
        + (f"## Fits at the call cap\n\n{caps}\n" if caps else "")
        + "## Time per stage\n\n"
        f"{stage_table}\n"
        f"{paper}"
        "## Configuration\n\n"
        f"{config_text}"
    )


def tree_commit(root="."):
    """The git commit of the tree at `root`, marked when it has uncommitted changes; 'unknown' outside git.

    The files this command writes (which Snakemake removes before the rule runs) do not count as changes.
    """
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        written = (":!README.md", ":!docs/run-numbers.md", ":!docs/configuration.md")
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", ".", *written)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def write_run_docs(root, patterns, config, defaults, commit, references=None, threads=None):
    """Write docs/run-numbers.md and docs/configuration.md and rewrite the README's results block under `root`.

    `patterns` {rule: benchmark path pattern} of the workflow, `threads` {rule: cores} (1 where absent);
    `config` the run's configuration, `defaults` config/config.yaml's. The README keeps its block when no
    figure JSON exists (nothing has run here).
    Returns {"readme" (when rewritten), "numbers", "configuration": text written}.
    """
    import yaml

    from hybridlens.config import deep_merge, digest

    root = Path(root)
    jobs = collect_benchmarks(root, patterns)
    stats = stage_times(jobs, order=list(patterns), threads=threads)
    span = wall_span(jobs)
    unmatched = sum(job.rule is None for job in jobs)
    summaries = load_summaries(root / "results" / "figures")
    results = results_at_a_glance(summaries, references if references is not None else paper_references())
    run = f"benchmarked jobs {span_text(span)}" if span else "no benchmarked job"
    paper_path = root / "config" / "paper.yaml"
    paper_table = ""
    if paper_path.exists() and stats:
        paper = deep_merge(defaults, yaml.safe_load(paper_path.read_text()) or {})
        paper_table = scaled_costs_markdown(scaled_costs(stats, config, paper), "`config/paper.yaml`")
    stage_table = stage_times_markdown(stats, span, unmatched)
    path_text = critical_path_markdown(critical_path(jobs), span, concurrency(jobs))
    numbers = run_numbers_markdown(
        stage_table + (f"\n{path_text}" if path_text else ""),
        results,
        config_markdown(config, defaults, digest(config)),
        f"{run}; generated at commit {commit}.",
        paper_table,
        call_cap_markdown(call_cap_hits(summaries)) if summaries else "",
    )
    written = {}
    readme = root / "README.md"
    if summaries and readme.exists():
        changed = len(config_differences(config, defaults))
        which = f"config/config.yaml with {changed} keys changed" if changed else "the default config"
        label = (
            f"Generated by `{DOCS_COMMAND}` from the run in this tree ({which}; {run}; commit {commit}); "
            "stage times and the config: [docs/run-numbers.md](docs/run-numbers.md)."
        )
        written["readme"] = replace_block(readme.read_text(), RESULTS_BLOCK, readme_block(results, label))
        readme.write_text(written["readme"])
    schema = yaml.safe_load((root / "config" / "schema.yaml").read_text())
    written["numbers"], written["configuration"] = numbers, configuration_markdown(schema, defaults)
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "run-numbers.md").write_text(numbers)
    (root / "docs" / "configuration.md").write_text(written["configuration"])
    return written


def main():
    from hybridlens import config

    root = config.CONFIG_DIR.parent
    write_configuration(config.SCHEMA, config.CONFIG_DIR / "config.yaml", root / "docs" / "configuration.md")
    print(f"wrote {root / 'docs' / 'configuration.md'}")


if __name__ == "__main__":
    main()
