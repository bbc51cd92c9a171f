"""The generated documentation: the configuration reference, a run's stage times and results, the README block."""

import json
import math
import os
import re

import pytest
import yaml

from hybridlens import config as hlconfig
from hybridlens import docs

# --- the configuration reference ---------------------------------------------------------------


def test_committed_configuration_reference_is_what_the_schema_generates(root):
    schema = yaml.safe_load((root / "config/schema.yaml").read_text())
    defaults = yaml.safe_load((root / "config/config.yaml").read_text())
    committed = (root / "docs/configuration.md").read_text()
    assert committed == docs.configuration_markdown(schema, defaults), (
        "docs/configuration.md is stale (config/schema.yaml or config/config.yaml changed): regenerate it with "
        f"`{docs.CONFIGURATION_COMMAND}` (or `{docs.DOCS_COMMAND}`)"
    )


def test_configuration_reference_has_every_default_key_and_one_table_per_block(root):
    schema = yaml.safe_load((root / "config/schema.yaml").read_text())
    defaults = yaml.safe_load((root / "config/config.yaml").read_text())
    text = docs.configuration_markdown(schema, defaults)
    keys = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))

    def leaves(tree, path=""):
        for key, value in tree.items():
            dotted = f"{path}.{key}" if path else key
            if isinstance(value, dict) and value and key not in ("surveys", "per_lens"):
                yield from leaves(value, dotted)
            else:
                yield dotted

    assert set(leaves(defaults)) - keys == set()
    blocks = [key for key, node in schema["properties"].items() if docs.resolve(node, schema).get("type") == "object"]
    assert re.findall(r"^## `(\w+)`$", text, flags=re.M) == blocks


SMALL_SCHEMA = {
    "description": "A small schema.",
    "type": "object",
    "$defs": {
        "positive": {"type": "number", "exclusiveMinimum": 0},
        "pair": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
        "range": {
            "type": "object",
            "description": "Uniform on [min, max].",
            "required": ["min", "max"],
            "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
        },
        "shared": {"size": {"type": "integer", "minimum": 1, "description": "how many"}},
    },
    "properties": {
        "seed": {"type": "integer", "minimum": 0, "description": "master | seed"},
        "presets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/range"}},
        "stage": {
            "type": "object",
            "description": "One stage.",
            "required": ["size", "scale", "shape", "kind", "inner"],
            "properties": {
                "size": {"$ref": "#/$defs/shared/size"},
                "scale": {"$ref": "#/$defs/positive", "description": "arcsec"},
                "shape": {"$ref": "#/$defs/pair"},
                "kind": {"enum": ["a", "b"]},
                "fraction": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1},
                "centre": {"oneOf": [{"enum": ["mask"]}, {"type": "array", "items": {"type": "number"}}]},
                "inner": {
                    "type": "object",
                    "required": ["radius"],
                    "properties": {"radius": {"$ref": "#/$defs/range", "description": "arcsec"}},
                },
                "level": {"type": "number", "default": 3},
            },
        },
    },
}
SMALL_DEFAULTS = {
    "seed": 7,
    "presets": {"wide": {"min": 0, "max": 1}},
    "stage": {"size": 4, "scale": 0.1, "shape": [10, 20], "kind": "a", "inner": {"radius": {"min": 1, "max": 2}}},
}


def rows_by_key(schema=SMALL_SCHEMA, defaults=SMALL_DEFAULTS):
    rows = []
    for key, node in schema["properties"].items():
        rows += docs.schema_rows(key, node, schema, defaults.get(key), key in defaults)
    return {row.key: row for row in rows}


def test_nested_objects_give_dotted_keys_with_types_defaults_and_descriptions():
    rows = rows_by_key()
    assert rows["seed"] == docs.Row("seed", "integer ≥ 0", "`7`", "master | seed")
    assert rows["stage.size"] == docs.Row("stage.size", "integer ≥ 1", "`4`", "how many")  # nested $defs path
    assert rows["stage.shape"].type == "array[2] of integer ≥ 1" and rows["stage.shape"].default == "`[10, 20]`"
    assert rows["stage.kind"].type == "one of: `a`, `b`" and rows["stage.kind"].default == "`a`"
    assert rows["stage.fraction"].type == "number in [0, 1) or null"
    assert rows["stage.fraction"].default == "*not set*" and rows["stage.fraction"].description == "*optional*"
    assert rows["stage.centre"].type == "one of: `mask` or array of number"
    assert rows["stage.level"].default == "`3`"  # the schema's own default where the config has none
    assert rows["stage.inner.radius.max"].default == "`2`"
    assert "stage.inner" not in rows  # an undescribed object: its children's dotted keys say it all


def test_a_ref_keeps_its_own_description_before_the_targets():
    rows = rows_by_key()
    assert rows["stage.scale"].type == "number > 0" and rows["stage.scale"].description == "arcsec"
    assert rows["stage.inner.radius"].description == "arcsec — Uniform on [min, max]."


def test_a_mapping_lists_its_entries_and_describes_one_entry():
    rows = rows_by_key()
    assert rows["presets"].type == "mapping of name → object" and rows["presets"].default == "`wide`"
    assert rows["presets.<name>"].default == "per entry" and rows["presets.<name>.min"].default == "per entry"


def test_markdown_has_a_table_per_block_and_escapes_pipes():
    text = docs.configuration_markdown(SMALL_SCHEMA, SMALL_DEFAULTS)
    assert "A small schema." in text and docs.CONFIGURATION_COMMAND in text
    assert re.findall(r"^## .+$", text, flags=re.M) == ["## Top-level keys", "## `presets`", "## `stage`"]
    assert "| `seed` | integer ≥ 0 | `7` | master \\| seed |" in text
    stage = text.split("## `stage`")[1]
    assert stage.startswith("\n\nOne stage.\n\n| key | type | default | description |")
    assert "| `stage` |" not in stage  # the block's description heads its table instead


def test_local_refs_only():
    with pytest.raises(ValueError, match="cannot resolve"):
        docs.resolve({"$ref": "other.yaml#/x"}, {})


# --- stage times from benchmark files ----------------------------------------------------------------

PATTERNS = {
    "simulate_slacs": "logs/benchmarks/simulate/{slacs_set,slacs|blind}/shard-{shard,\\d{5}}.tsv",
    "simulate_hudf": "logs/benchmarks/simulate/hudf/shard-{shard,\\d{5}}.tsv",
    "simulate_p21_testset": "logs/benchmarks/simulate/p21_{testset}/shard-{shard}.tsv",
    "train_bnn": "logs/benchmarks/bnn/{mass_model}/train-{rate}.tsv",
}
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmark(root, relative, seconds, cpu, end):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t100\t200\t50\t60\t0\t0\t90\t{cpu}\n")
    os.utime(path, (end, end))


def test_benchmark_files_map_to_their_rules():
    rule = lambda path: docs.rule_of(path, PATTERNS, {"testset": "[a-z_]+", "shard": r"\d{5}"})
    assert rule("logs/benchmarks/simulate/slacs/shard-00001.tsv") == "simulate_slacs"
    assert rule("logs/benchmarks/simulate/hudf/shard-00000.tsv") == "simulate_hudf"  # not slacs|blind
    assert rule("logs/benchmarks/simulate/p21_sie_real/shard-00002.tsv") == "simulate_p21_testset"
    assert rule("logs/benchmarks/bnn/sie/train-3.tsv") == "train_bnn"
    assert rule("logs/benchmarks/simulate/slacs/shard-1.tsv") is None  # \d{5}
    assert rule("logs/benchmarks/elsewhere/x.tsv") is None
    repeated = {"r": "logs/{a}/{a}.tsv"}
    assert docs.rule_of("logs/x/x.tsv", repeated) == "r" and docs.rule_of("logs/x/y.tsv", repeated) is None


def test_every_benchmark_of_the_workflow_is_claimed_by_its_own_rule(root):
    """The workflow's own patterns (wildcards unconstrained here): an example path of each maps back to its rule."""
    texts = [path.read_text() for path in sorted((root / "workflow/rules").glob("*.smk"))]
    patterns = {}
    for text in texts:
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.M)[1:]:
            match = re.search(r'^    benchmark:\n\s+"([^"]+)"', block, flags=re.M)
            if match:
                patterns[re.match(r"rule (\w+):", block).group(1)] = match.group(1)
    assert {"calibrate_lens", "train_classifier", "train_bnn", "p21_fit", "blind_fit"} <= set(patterns)
    examples = {"shard": "00000", "lens": "00000", "stratum": "00000", "rate": "0", "method": "blind", "name": "J1"}
    examples.update(mass_model="sie", slacs_set="slacs", dataset="slacs", testset="sie_real")
    for rule, pattern in patterns.items():
        path = re.sub(r"\{(\w+)[^}]*\}", lambda m: examples[m.group(1)], pattern)
        assert docs.pattern_regex(pattern).match(path), (rule, path)


def test_stage_times_per_rule_with_wall_span(tmp_path):
    write_benchmark(tmp_path, "logs/benchmarks/simulate/slacs/shard-00000.tsv", 10.0, 8.0, 1_000_010)
    write_benchmark(tmp_path, "logs/benchmarks/simulate/blind/shard-00000.tsv", 30.0, 20.0, 1_000_100)
    write_benchmark(tmp_path, "logs/benchmarks/simulate/slacs/shard-00001.tsv", 20.0, 16.0, 1_000_050)
    write_benchmark(tmp_path, "logs/benchmarks/bnn/sie/train-0.tsv", 120.0, "NA", 1_000_600)
    write_benchmark(tmp_path, "logs/benchmarks/unknown/thing.tsv", 5.0, 5.0, 1_000_600)
    jobs = docs.collect_benchmarks(tmp_path, PATTERNS)
    assert len(jobs) == 5 and sum(job.rule is None for job in jobs) == 1
    stats = docs.stage_times(jobs, order=list(PATTERNS), threads={"train_bnn": 2})
    assert [s["rule"] for s in stats] == ["simulate_slacs", "train_bnn"]
    slacs, bnn = stats
    assert (slacs["jobs"], slacs["min_s"], slacs["median_s"], slacs["max_s"]) == (3, 10.0, 20.0, 30.0)
    # a job holds its cores for its wall time: the sampled cpu_time (8, 20, 16 s; NA) is not what it costs
    assert slacs["wall_min"] == pytest.approx(1.0) and slacs["core_min"] == pytest.approx(1.0)
    assert bnn["wall_min"] == pytest.approx(2.0) and bnn["core_min"] == pytest.approx(4.0)
    span = docs.wall_span(jobs)
    assert span == (1_000_000, 1_000_600)  # first start: end 1,000,010 - 10 s
    text = docs.stage_times_markdown(stats, span, unmatched=1)
    assert "| `simulate_slacs` | 3 | 10.0 | 20.0 | 30.0 | 1.0 | 1.0 |" in text
    assert "| **all benchmarked** | 4 | | | | 3.0 | 5.0 |" in text
    assert "10.0 min" in text and "1 benchmark file(s) match no rule" in text


def test_critical_path_follows_what_each_job_waited_on():
    """Two cores: a long BNN job beside M21's chain; the chain, not the longest single job, set the wall time."""
    job = lambda rule, start, end: docs.Job(rule, f"{rule}-{start}", end - start, float(end))
    jobs = [
        job("simulate_slacs", 0, 10),
        job("train_bnn", 0, 60),
        job("calibrate_lens", 10, 40),
        job("calibrate_lens", 40, 42.5),  # its second stratum, on the core the first one did not hold
        job("trainingset", 43, 70),
        job("train_classifier", 70, 100),
        docs.Job(None, "unknown.tsv", 5.0, 200.0),  # matches no rule: not part of the path
    ]
    chain = docs.critical_path(jobs)
    assert [j.rule for j in chain] == [
        "simulate_slacs",
        "calibrate_lens",
        "calibrate_lens",
        "trainingset",
        "train_classifier",
    ]
    busy = docs.concurrency(jobs)
    assert busy == (pytest.approx(159.5 / 100), 2)  # the two cores were busy 80 % of the span
    text = docs.critical_path_markdown(chain, span=(0.0, 100.0), busy=busy)
    assert "`calibrate_lens` 0.5, `train_classifier` 0.5, `trainingset` 0.5, `simulate_slacs` 0.2" in text
    assert "1.7 min of the 1.7-min span" in text and "jobs ran at once (at most 2)" in text
    assert docs.critical_path([]) == [] and docs.critical_path_markdown([]) == "" and docs.concurrency([]) is None


def test_paper_scale_costs_price_the_papers_sizes_at_this_runs_unit_costs(root):
    defaults = yaml.safe_load((root / "config/config.yaml").read_text())
    paper = hlconfig.deep_merge(defaults, yaml.safe_load((root / "config/paper.yaml").read_text()))
    n_blind = defaults["hybrid_modelling"]["n_images"]
    shards = -(-defaults["simulate_training"]["n_images"] // defaults["simulate_training"]["shard_size"]) * 2
    stats = [
        {"rule": "blind_fit", "jobs": 1, "core_min": 2.0},  # a run stopped after one lens: 120 core-s per lens
        {"rule": "simulate_training", "jobs": shards, "core_min": 20.0},
        {"rule": "gallery_slacs", "jobs": 1, "core_min": 1.0},  # no unit: not priced
    ]
    rows = {row["rule"]: row for row in docs.scaled_costs(stats, defaults, paper)}
    assert set(rows) == {"blind_fit", "simulate_training"}
    blind = rows["blind_fit"]
    assert blind["core_s_per_unit"] == pytest.approx(120.0) and blind["units"] == 100
    assert blind["core_hours"] == pytest.approx(100 * 120 / 3600)
    assert "modelling.search" in blind["differs"]  # n_live 100 at paper scale: the row is a lower bound
    images = defaults["simulate_training"]["n_images"] * 2
    assert rows["simulate_training"]["core_s_per_unit"] == pytest.approx(1200.0 / images)
    assert rows["simulate_training"]["units"] == 200_000 and rows["simulate_training"]["differs"] == []
    assert docs.scaled_costs(stats, defaults, defaults)[0]["differs"] == []
    text = docs.scaled_costs_markdown(list(rows.values()), "`config/paper.yaml`")
    assert "| `blind_fit` | lens | 120 | 100 | 3.3 | `modelling.search` |" in text


def test_every_fit_at_its_call_cap_is_listed_by_figure_and_place():
    summaries = {
        "m21_fig4_einstein_radius": {"call_cap_hits": 1, "call_cap_hit_fits": [{"lens_index": 2, "class": "over"}]},
        "m21_fig13_hybrid": {"call_cap_hits": 0, "call_cap_hit_fits": []},
        "p21_fig19_timing": {"per_set": {"sie_real_los": {"blind": {"call_cap_hit_fits": [{"lens_index": 3}]}}}},
    }
    hits = docs.call_cap_hits(summaries)
    assert [(stem, where) for stem, where, _ in hits] == [
        ("m21_fig4_einstein_radius", ""),
        ("p21_fig19_timing", "per_set.sie_real_los.blind"),
    ]
    text = docs.call_cap_markdown(hits)
    assert "| `m21_fig4_einstein_radius.json` | — | lens_index 2, class over |" in text
    assert "| `p21_fig19_timing.json` | per_set.sie_real_los.blind | lens_index 3 |" in text
    assert "No fit" in docs.call_cap_markdown(docs.call_cap_hits({"m21_fig13_hybrid": summaries["m21_fig13_hybrid"]}))


def test_no_benchmarks_is_not_an_error(tmp_path):
    assert docs.collect_benchmarks(tmp_path, PATTERNS) == []
    assert docs.wall_span([]) is None
    assert "no run has been made here" in docs.stage_times_markdown([])


# --- results at a glance ------------------------------------------------------------------------------

REFERENCES = {
    "m21_table2": {
        "precision": {"under": 0.9, "correct": 0.8, "over": 0.7},
        "recall": {"under": 0.6, "correct": 0.5, "over": 0.4},
    },
    "m21_fig12_recall": {"under": 0.87, "correct": 0.87, "over": 0.93},
    "m21_relations": {"under": {"slope": 0.46}, "over": {"slope": 2.11}},
    "m21_hybrid": {
        "cnn_counts": {"rerun 3": {"under": 17, "correct": 70, "over": 13}},
        "reduction_of_unphysical": 0.69,
    },
    "p21_table1_cnn": {"einstein_radius": 0.009, "angle": 4.92, "axis_ratio": 0.018},
    "gaussian_coverage": {k: math.erf(k / math.sqrt(2)) for k in (1, 2, 3)},
    "p21": {
        "tables": {"sie_parametric": {m: {"einstein_radius": v} for m, v in zip(docs.P21_ESTIMATORS, (1, 2, 3, 4))}},
        "speed_up_over_blind": {"bnn_uniform": {"mean": 1.19}, "bnn_gaussian": {"mean": 1.73}},
    },
}
FIGURES = {
    "m21_fig11_confusion_sersic": {
        "n_pairs": 60,
        "precision": {"under": 0.95, "correct": 1.0, "over": 0.9},
        "recall": {"under": 1.0, "correct": 0.85, "over": 1.0},
    },
    "m21_fig13_hybrid": {
        "rounds": {
            "blind": {"n_models": 4, "cnn": {"correct": 0}, "truth": {"correct": 0}},
            "rerun 1": {"n_models": 4, "cnn": {"correct": 2}, "truth": {"correct": 1}},
            "rerun 10": {"n_models": 4, "cnn": {"correct": 3}, "truth": {"correct": 2}},
            "rerun 2": {"n_models": 4, "cnn": {"correct": 9}, "truth": {"correct": 9}},
        },
        "reduction_of_unphysical_by_cnn": 0.75,
        "reduction_of_unphysical_by_truth": float("nan"),
        "classifier_on_fits": {"accuracy": 0.6, "n_fits": 5},
        "judge_on_fits": {"accuracy": 0.8, "n_fits": 5},
    },
    "p21_fig6_sie": {
        "n_test": 30,
        "parameters": {
            "einstein_radius": {"interval68": 0.151, "coverage": {"1sigma": 0.57, "2sigma": 0.93, "3sigma": 1.0}},
            "angle": {"interval68": 48.94},
            "axis_ratio": {"interval68": 0.149},
        },
    },
    "p21_errors": {
        "n_images_per_set": 2,
        "tables": [
            {"testset": "sie_parametric", "method": "bnn", "einstein_radius": 0.12},
            {"testset": "sie_parametric", "method": "blind", "einstein_radius": float("nan")},
            {"testset": "complex_real_los", "method": "bnn", "einstein_radius": 0.3},
        ],
    },
    "p21_fig19_timing": {"bnn_uniform": {"speed_up_over_blind": 0.97}, "bnn_gaussian": {"speed_up_over_blind": 1.11}},
    "hybrid_guarded_evaluation": {
        "m21_loop": {"unphysical": 3, "n_modelled": 3},
        "bnn_gaussian": {"unphysical": 2, "n_modelled": 3},
        "guarded": {"unphysical": 2, "n_modelled": 3},
        "classifier_on_real_fits": {"both_loops": {"accuracy": 0.875, "n_fits": 8}, "m21_loop": {"accuracy": 0.8}},
    },
    "m21_fig12_confusion_hudf": {"unexpected": True},  # a JSON without the keys: '—', never an error
}


def write_figures(root, figures):
    folder = root / "results" / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    for stem, summary in figures.items():
        (folder / f"{stem}.json").write_text(json.dumps(summary))
    (folder / "broken.json").write_text("{not json")


def by_quantity(results):
    return {r.quantity: r for r in results}


def test_results_put_ours_beside_the_papers(tmp_path):
    write_figures(tmp_path, FIGURES)
    summaries = docs.load_summaries(tmp_path / "results" / "figures")
    assert "broken" not in summaries
    rows = by_quantity(docs.results_at_a_glance(summaries, REFERENCES))
    precision = rows["M21 Table 2: classifier precision U / C / O (Sérsic test pairs, M21's rows)"]
    assert (precision.ours, precision.paper) == ("0.950 / 1.000 / 0.900 (n = 60)", "0.9000 / 0.8000 / 0.7000")
    cnn = rows["M21 §4.2: hybrid loop, correct by the CNN after the last rerun"]
    assert (cnn.ours, cnn.paper) == ("3 / 4 (rerun 10)", "70 / 100 (rerun 3)")  # rounds by number, not by name
    assert rows["Hybrid loop, correct by the truth after the last rerun"].ours == "2 / 4 (rerun 10)"
    assert rows["M21 §4.2: fewer unphysical solutions, by the CNN (by the truth)"].ours == "75 % (—)"
    assert rows["Classifier accuracy on the loop's real fits"].ours == "0.60 (n = 5 fits)"
    assert (
        rows["Guarded loop's judge (arcs traced through each fit, else classifier) on the same fits"].ours
        == "0.80 (n = 5 fits)"
    )
    sie = rows["P21 Table 1: BNN (SIE) 68 % error θ_E / φ / q"]
    assert (sie.ours, sie.paper) == ("0.151″ / 48.9° / 0.149 (n = 30)", "0.009″ / 4.92° / 0.018")
    coverage = rows["P21 Fig 4: BNN (SIE) θ_E coverage 1σ / 2σ / 3σ (test split)"]
    assert (coverage.ours, coverage.paper) == ("57 / 93 / 100 %", "68.3 / 95.4 / 99.7 % (a Gaussian's)")
    table = "P21 Tables 1–4: θ_E 68 % fractional error, BNN / PyAL / +BNN / +BNN(1σ), `{}`"
    assert rows[table.format("sie_parametric")].ours == "0.120 / — / — / — (n = 2)"
    assert rows[table.format("sie_parametric")].paper == "1 / 2 / 3 / 4"
    assert rows[table.format("complex_real_los")].paper == "not in P21's text"
    speed = rows["P21 Fig 19: speed-up over blind, PyAL + BNN / + BNN(1σ)"]
    assert (speed.ours, speed.paper) == ("0.97× / 1.11×", "1.19× / 1.73×")
    guarded = "Guarded hybrid: unphysical final models by the truth, M21 loop / PyAL + BNN(1σ) / guarded"
    assert rows[guarded].ours == "3/3 / 2/3 / 2/3"
    real_fits = "Classifier accuracy on real fits by the truth, both loops / M21 loop / guarded"
    assert rows[real_fits].ours == "0.88 (n = 8) / 0.80 (n = ?)"  # a loop without its count still shows
    assert rows["M21 Fig 12: classifier recall U / C / O (HDF-source pairs)"].ours.startswith("—")
    assert rows["M21 Fig 4: slopes of θ_U(θ_E), θ_O(θ_E)"].ours == docs.NOT_RUN


def test_a_missing_json_or_folder_is_not_run(tmp_path):
    assert docs.load_summaries(tmp_path / "nowhere") == {}
    results = docs.results_at_a_glance({}, REFERENCES)
    assert results and all(r.ours == docs.NOT_RUN for r in results)
    assert all(r.paper for r in results)
    text = docs.results_markdown(results, sources=True)
    assert text.startswith("| quantity | ours | paper | from |") and "`m21_fig13_hybrid.json`" in text


def test_paper_references_are_the_packages_own_constants():
    from hybridlens.analysis import comparison
    from hybridlens.fitting import hybrid
    from hybridlens.networks import bnn
    from hybridlens.reconstruction import calibration

    references = docs.paper_references()
    assert references["m21_relations"] is calibration.M21_PUBLISHED_RELATIONS
    assert references["m21_hybrid"] is hybrid.M21_PUBLISHED_ROUNDS
    assert references["p21_table1_cnn"] is bnn.P21_TABLE1_CNN
    assert references["gaussian_coverage"] is bnn.GAUSSIAN_COVERAGE
    assert references["p21"] is comparison.P21_REFERENCE
    assert references["m21_table2"]["recall"]["correct"] == 0.9991  # M21 Table 2
    docs.results_at_a_glance({}, references)  # the real references fit the rows


# --- the README block -----------------------------------------------------------------------------------

README = """# Title

Intro with <!-- a comment --> and a table:

| a | b |
|---|---|

<!-- results-at-a-glance:start -->
old numbers
<!-- results-at-a-glance:end -->

Tail text.
"""


def test_replacing_the_block_is_idempotent_and_leaves_the_rest_untouched():
    once = docs.replace_block(README, docs.RESULTS_BLOCK, "new table\n")
    assert docs.replace_block(once, docs.RESULTS_BLOCK, "new table\n") == once
    start, end = docs.markers(docs.RESULTS_BLOCK)
    assert once.split(start)[0] == README.split(start)[0] and once.split(end)[1] == README.split(end)[1]
    assert docs.block_of(once, docs.RESULTS_BLOCK) == "new table"
    assert docs.replace_block(once, docs.RESULTS_BLOCK, "old numbers") == README


def test_a_readme_without_one_block_is_refused():
    with pytest.raises(ValueError):
        docs.replace_block("no markers", docs.RESULTS_BLOCK, "x")
    start, end = docs.markers(docs.RESULTS_BLOCK)
    with pytest.raises(ValueError):
        docs.replace_block(f"{start}\n{end}\n{start}\n{end}", docs.RESULTS_BLOCK, "x")


def test_write_run_docs_twice_gives_the_same_readme_and_pages(root, tmp_path):
    (tmp_path / "config").mkdir()
    for name in ("schema.yaml", "config.yaml", "paper.yaml"):
        (tmp_path / "config" / name).write_text((root / "config" / name).read_text())
    (tmp_path / "README.md").write_text(README)
    write_figures(tmp_path, FIGURES)
    write_benchmark(tmp_path, "logs/benchmarks/bnn/sie/train-0.tsv", 60.0, 50.0, 1_700_000_000)
    defaults = yaml.safe_load((root / "config/config.yaml").read_text())
    config = {**defaults, "seed": defaults["seed"] + 1}
    first = docs.write_run_docs(tmp_path, PATTERNS, config, defaults, "abc1234", REFERENCES, {"train_bnn": 2})
    readme = (tmp_path / "README.md").read_text()
    assert readme == first["readme"] and "old numbers" not in readme and "Tail text." in readme
    assert "| P21 Fig 19: speed-up over blind, PyAL + BNN / + BNN(1σ) | 0.97× / 1.11× | 1.19× / 1.73× |" in readme
    assert "config/config.yaml with 1 keys changed" in readme and "commit abc1234" in readme
    numbers = (tmp_path / "docs/run-numbers.md").read_text()
    assert "| `train_bnn` | 1 | 60.0 | 60.0 | 60.0 | 1.0 | 2.0 |" in numbers  # two cores held for a minute
    assert "**Critical path**" in numbers and "## At the papers' scale" in numbers
    assert "| `train_bnn` | image-epoch |" in numbers and "`bnn.width`" in numbers
    assert f"| `seed` | `{config['seed']}` | `{defaults['seed']}` |" in numbers
    assert (tmp_path / "docs/configuration.md").read_text() == (root / "docs/configuration.md").read_text()
    second = docs.write_run_docs(tmp_path, PATTERNS, config, defaults, "abc1234", REFERENCES, {"train_bnn": 2})
    assert second == first and (tmp_path / "README.md").read_text() == readme


def test_without_results_the_readme_keeps_its_block(root, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/schema.yaml").write_text((root / "config/schema.yaml").read_text())
    (tmp_path / "README.md").write_text(README)
    defaults = yaml.safe_load((root / "config/config.yaml").read_text())
    written = docs.write_run_docs(tmp_path, PATTERNS, defaults, defaults, "abc1234", REFERENCES)
    assert "readme" not in written and (tmp_path / "README.md").read_text() == README
    assert "none: the default configuration." in written["numbers"] and docs.NOT_RUN in written["numbers"]


def test_the_digest_of_a_run_follows_its_files(tmp_path):
    empty = docs.run_files_digest(tmp_path)
    write_benchmark(tmp_path, "logs/benchmarks/bnn/sie/train-0.tsv", 60.0, 50.0, 1_700_000_000)
    assert docs.run_files_digest(tmp_path) != empty


# --- the committed README and pages ---------------------------------------------------------------------


def test_readme_is_short_has_the_commands_and_one_results_block(root):
    readme = (root / "README.md").read_text()
    assert len(readme.encode()) <= 12_000
    assert "make run" in readme and "make test" in readme and "pytest" in readme
    start, end = docs.markers(docs.RESULTS_BLOCK)
    assert readme.count(start) == 1 and readme.count(end) == 1
    assert docs.replace_block(readme, docs.RESULTS_BLOCK, docs.block_of(readme, docs.RESULTS_BLOCK)) == readme


def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_relative_links_of_the_readme_and_docs_resolve(root):
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path, _, anchor = target.partition("#")
            if re.match(r"\w+://", path):
                continue
            linked = page.parent / path if path else page
            if not linked.exists() or (anchor and anchor not in anchors(linked)):
                broken.append(f"{page.relative_to(root)} -> {target}")
    assert broken == []


def test_docs_rule_is_not_in_the_default_target(root):
    snakefile = (root / "Snakefile").read_text()
    assert 'include: "workflow/rules/docs.smk"' in snakefile
    assert "docs" not in snakefile.split("rule all:")[1]
    rule = (root / "workflow/rules/docs.smk").read_text()
    assert "    log:\n" in rule and "    conda:\n        CONDA_ENV\n" in rule


def test_numbers_are_finite_or_a_dash():
    assert docs._num(math.nan) == docs.MISSING and docs._num(None) == docs.MISSING and docs._num(1.23456, 2) == "1.23"
    assert docs._pct(0.5) == "50 %" and docs._pct(math.inf) == docs.MISSING
