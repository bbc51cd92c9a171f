"""Data sets, shard lists and the parameters every rule shares."""


wildcard_constraints:
    shard=r"\d{5}",
    lens=r"\d{5}",
    mass_model="sie|power_law",
    dataset="slacs|training_sie|training_power_law",


def dataset_stage(dataset):
    """The config block that simulates `dataset`."""
    return "simulate_slacs" if dataset == "slacs" else "simulate_training"


def datasets():
    return ["slacs"] + [f"training_{m}" for m in config["simulate_training"]["mass_models"]]


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


def slacs_shard_of(stage_dir, lens):
    """The shard of results/<stage_dir>/slacs holding global image `lens`."""
    return f"results/{stage_dir}/slacs/shard-{lens // config['simulate_slacs']['shard_size']:05d}.h5"


def calibration_fits():
    n = config["calibrate_relations"]["n_lenses"]
    return expand("results/calibrate/fits/lens-{lens:05d}.h5", lens=range(n))


def trainingset_settings():
    """Training-set scan settings with the class ranges and inversion settings they use."""
    return {
        **config["trainingset"],
        "class_ratio_ranges": config["calibrate_relations"]["class_ratio_ranges"],
        "inversion": config["inversion"],
    }
