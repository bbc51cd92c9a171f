"""M21 section 3.2 full analysis: constrained fits and the theta_U / theta_O relations."""


rule calibrate_lens:
    input:
        sims=shards("simulate", "slacs"),
        masks=shards("mask", "slacs"),
    output:
        "results/calibrate/fits/stratum-{stratum}.h5",
    log:
        "logs/calibrate/stratum-{stratum}.log",
    conda:
        "../../envs/hybridlens.yaml"
    threads: 1
    params:
        settings=config["calibrate_relations"],
        modelling=config["modelling"],
        inversion=config["inversion"],
        shard_size=config["simulate_slacs"]["shard_size"],
        seed=config["seed"],
        scratch=lambda w: f"results/calibrate/autofit/stratum-{w.stratum}",
    script:
        "../scripts/calibrate_lens.py"


rule calibrate_relations:
    input:
        calibration_fits(),
    output:
        relations="results/calibrate/relations.h5",
        figures=multiext(
            "results/figures/m21_fig4_einstein_radius",
            ".json",
            *[f".{f}" for f in config["figures"]["format"]],
        ),
        q=multiext("results/figures/m21_fig5_axis_ratio", *[f".{f}" for f in config["figures"]["format"]]),
        phi=multiext("results/figures/m21_fig6_angle", *[f".{f}" for f in config["figures"]["format"]]),
    log:
        "logs/calibrate/relations.log",
    conda:
        "../../envs/hybridlens.yaml"
    params:
        settings=config["calibrate_relations"],
        modelling=config["modelling"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/calibrate_relations.py"
