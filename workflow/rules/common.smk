"""Data sets, shard lists and the parameters every rule shares."""

from hybridlens import vocabulary


wildcard_constraints:
    shard=r"\d{5}",
    lens=r"\d{5}",
    stratum=r"\d{5}",
    rate=r"\d+",
    mass_model="sie|power_law",
    dataset="slacs|blind|hudf|training_sie|training_power_law|p21_[a-z_]+",
    slacs_set="slacs|blind",
    testset="|".join(vocabulary.TESTSETS),
    method="|".join(vocabulary.P21_METHODS),
    name=r"[^/]+(?<!\.coolest)",  # a lens's COOLEST file, <name>.coolest.json, is not its page's <name>.json


# One software environment for all jobs (`snakemake --sdm conda`): the pip lock inside conda.
CONDA_ENV = "../../envs/hybridlens.yaml"

# On a cluster a shard's simulation and its masks run as one job (minutes, not seconds);
# locally groups change nothing.
SIMULATE_AND_MASK = "simulate_and_mask"

# M21's chain (masks -> calibration -> training set -> classifier -> hybrid loop) is the default
# run's longest path: its jobs go first. The BNN's chain (training images -> networks -> test-set
# predictions) comes next: the informed P21 fits and the guarded loop wait on it, while the blind
# fits wait on nothing and fill the gaps. A job of more threads than the free cores waits until no
# smaller job is ready, so on a laptop every job takes one thread unless its config says more.
M21_CRITICAL_PATH = 10
BNN_CHAIN = 5

from snakemake.io import report as report_file  # `report` opens a directive at a line's start

REPORT_CATEGORIES = {
    "m21": "M21: CNN-flagged unphysical reconstructions",
    "p21": "P21: Bayesian CNN vs PyAutoLens",
    "hyb": "Guarded hybrid: BNN priors, classifier guard, M21 reruns",
}


def figure_files(name, subcategory, caption=None):
    """A figure's files under results/figures: its JSON summary, then one file per configured format.

    Every file goes into `snakemake --report` under its paper and stage, with the
    caption workflow/report/<caption or name>.rst (what it shows, the paper's numbers).
    """
    caption = f"../report/{caption or name}.rst"
    category = REPORT_CATEGORIES[name[:3]]
    suffixes = [".json"] + [f".{fmt}" for fmt in config["figures"]["format"]]
    labels = lambda suffix: {"figure": name, "file": suffix[1:]}
    return [
        report_file(f"results/figures/{name}{suffix}", caption, category, subcategory, labels(suffix))
        for suffix in suffixes
    ]


def dataset_stage(dataset):
    """The config block that sizes `dataset`."""
    if dataset.startswith("p21_"):
        return "p21_testsets"
    stages = {"slacs": "simulate_slacs", "blind": "hybrid_modelling", "hudf": "complex_sources"}
    return stages.get(dataset, "simulate_training")


def slacs_settings(dataset):
    """simulate_slacs' lens and source distributions, sized for `dataset` (slacs or the blind set)."""
    sizes = {key: config[dataset_stage(dataset)][key] for key in ("n_images", "shard_size")}
    return {**config["simulate_slacs"], **sizes}


def training_datasets():
    return [f"training_{m}" for m in config["simulate_training"]["mass_models"]]


def datasets():
    return ["slacs", "blind", "hudf", *training_datasets()]


def shards(stage_dir, dataset):
    """All shard files of `dataset` under results/<stage_dir>/."""
    n = hlconfig.n_shards(config[dataset_stage(dataset)])
    return expand(f"results/{stage_dir}/{dataset}/shard-{{shard:05d}}.h5", shard=range(n))


def all_simulations():
    return [path for dataset in datasets() for path in shards("simulate", dataset)]


def all_masks():
    return [path for dataset in datasets() for path in shards("mask", dataset)]


def survey_of(stage):
    return hlconfig.survey_settings(config, stage)


def reference_survey():
    return {"name": config["reference_survey"], **config["surveys"][config["reference_survey"]]}


def gallery_shards(stage_dir, dataset):
    """Enough leading shards of `dataset` to fill a gallery."""
    settings = config[dataset_stage(dataset)]
    needed = -(-config["figures"]["gallery_n"] // settings["shard_size"])
    return shards(stage_dir, dataset)[:needed]


def shard_of(stage_dir, dataset, lens):
    """The shard of results/<stage_dir>/<dataset> holding global image `lens`."""
    size = config[dataset_stage(dataset)]["shard_size"]
    return f"results/{stage_dir}/{dataset}/shard-{lens // size:05d}.h5"


def calibration_fits():
    n = config["calibrate_relations"]["n_lenses"]
    return expand("results/calibrate/fits/stratum-{stratum:05d}.h5", stratum=range(n))


def hybrid_lenses():
    n = config["hybrid_modelling"]["n_images"]
    return expand("results/hybrid/lens-{lens:05d}.h5", lens=range(n))


def hybrid_lens_shards(stage_dir):
    """Per blind lens, in lens order, the shard of results/<stage_dir>/blind holding it."""
    n = config["hybrid_modelling"]["n_images"]
    return [shard_of(stage_dir, "blind", lens) for lens in range(n)]


def complex_pairs():
    n = config["complex_sources"]["n_images"]
    return expand("results/complex/pairs/lens-{lens:05d}.h5", lens=range(n))


def complex_calibration():
    """The calibration's fit settings with the real-morphology lenses' own call cap."""
    calibration = config["calibrate_relations"]
    return {**calibration, "search": {**calibration["search"], "max_calls": config["complex_sources"]["max_calls"]}}


def trainingset_settings():
    """Training-set scan settings with the class ranges and inversion settings they use."""
    return {
        **config["trainingset"],
        "class_ratio_ranges": config["calibrate_relations"]["class_ratio_ranges"],
        "inversion": config["inversion"],
    }


def classifier_training_settings():
    """The classifier settings training reads: verdict-only settings left out, so changing them re-judges without retraining."""
    inference = vocabulary.CLASSIFIER_INFERENCE_SETTINGS
    return {key: value for key, value in config["classifier"].items() if key not in inference}


def bnn_rates():
    """Indices of the dropout rates the BNN sweep trains."""
    return range(len(config["bnn"]["dropout_rates"]))


def training_shards(w):
    """The simulation shards of the P21 training set of mass model `w.mass_model`."""
    return shards("simulate", f"training_{w.mass_model}")


def p21_testset_settings():
    return hlconfig.p21_testset_settings(config)


def p21_testset_masks():
    """Every shard's mask of every configured test set (the simulations come with them)."""
    return [path for name in config["p21_testsets"]["sets"] for path in shards("mask", f"p21_{name}")]


def p21_model(testset):
    """The mass model whose parameters are a set's truth and which BNN predicts them (P21)."""
    return vocabulary.TESTSETS[testset].fitted_model


def p21_comparison_outputs():
    """`p21_compare`'s outputs when the config puts the comparison in `rule all` (paper, test), else none."""
    return rules.p21_compare.output if config["p21_comparison"]["in_rule_all"] else []


def p21_fit_settings(w):
    """One P21 fit's settings: the shared search and inversion with the comparison's overrides on top."""
    comparison = config["p21_comparison"]
    return {
        "modelling": config["modelling"],
        "search": comparison.get("search", {}),
        "inversion": {**config["inversion"], **comparison.get("inversion", {})},
        "priors": comparison["priors"],
        "smooth_pixels": config["masking"]["smooth_pixels"],  # the blind ring's fallback, as the masks smooth
        "power_law": p21_model(w.testset) == "power_law",
        "shard_size": config["p21_testsets"]["shard_size"],
    }


def p21_fit_inputs(w):
    """A test-set shard, its masks, and the BNN's predictions of it for the BNN-informed methods."""
    inputs = {stage: f"results/{stage}/p21_{w.testset}/shard-{w.shard}.h5" for stage in ("simulate", "mask")}
    if w.method != "blind":
        inputs["predictions"] = f"results/bnn/{p21_model(w.testset)}/predict/p21_{w.testset}/shard-{w.shard}.h5"
    return inputs


def p21_compare_inputs():
    """Every configured test set's shards, BNN predictions and per-lens fits of each method."""
    sets = config["p21_testsets"]["sets"]
    return {
        "sims": [path for name in sets for path in shards("simulate", f"p21_{name}")],
        "predictions": [path for name in sets for path in shards(f"bnn/{p21_model(name)}/predict", f"p21_{name}")],
        "fits": [
            path
            for name in sets
            for method in vocabulary.P21_METHODS
            for path in shards(f"p21/fits/{method}", f"p21_{name}")
        ],
    }


def own_lenses():
    """{name: reading settings} of the FITS cutouts named by `model_lenses` (empty when none)."""
    from dataclasses import asdict

    from hybridlens.own_lenses import cutouts

    specs = cutouts.specs(config["model_lenses"], workflow.basedir)
    return {name: asdict(spec) for name, spec in specs.items()}


def guarded_settings():
    """Everything the guarded loop reads, in the config's own layout."""
    keys = ("model_lenses", "hybrid_modelling", "modelling", "masking", "inversion", "trainingset", "classifier")
    return {
        **{key: config[key] for key in keys if key != "model_lenses"},
        "model_lenses": {k: v for k, v in config["model_lenses"].items() if k not in ("files", "per_lens")},
        "p21_comparison": {"priors": config["p21_comparison"]["priors"]},
        "bnn": {"mc_passes": config["bnn"]["mc_passes"]},
        "class_ratio_ranges": config["calibrate_relations"]["class_ratio_ranges"],
    }


def guarded_networks(w):
    """The SIE BNN (chosen rate and every rate's model), the classifier and the relations the loop asks."""
    return {
        "bnn": "results/bnn/sie/chosen.h5",
        "bnn_models": expand("results/bnn/sie/rate-{rate}/model.h5", rate=bnn_rates()),
        "classifier": rules.train_classifier.output.model,
        "relations": rules.calibrate_relations.output.relations,
    }


def model_lens_inputs(w):
    """A cutout's files (those that exist: a missing one is flagged by the job, not the DAG) and the networks."""
    spec = own_lenses()[w.name]
    files = [spec["path"], spec["noise"].get("file"), spec["psf"].get("file")]
    return {**guarded_networks(w), "cutout": [path for path in files if path and Path(path).exists()]}


def guarded_outputs():
    """What the guarded loop adds to the default target: the evaluation, and the catalogue when cutouts are named."""
    outputs = list(rules.guarded_evaluation.output) if config["model_lenses"]["evaluate"] else []
    return outputs + (list(rules.lens_catalogue.output) if own_lenses() else [])
