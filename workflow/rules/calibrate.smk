"""M21 section 3.2 full analysis: constrained fits and the theta_U / theta_O relations."""


rule calibrate_lens:
    input:
        sims=shards("simulate", "slacs"),
        masks=shards("mask", "slacs"),
    output:
        "results/calibrate/fits/stratum-{stratum}.h5",
    log:
        "logs/calibrate/stratum-{stratum}.log",
    benchmark:
        "logs/benchmarks/calibrate/stratum-{stratum}.tsv"
    priority: M21_CRITICAL_PATH
    conda:
        CONDA_ENV
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
        figures=figure_files("m21_fig4_einstein_radius", "Calibration"),
        q=figure_files("m21_fig5_axis_ratio", "Calibration"),
        phi=figure_files("m21_fig6_angle", "Calibration"),
    log:
        "logs/calibrate/relations.log",
    priority: M21_CRITICAL_PATH
    conda:
        CONDA_ENV
    params:
        settings=config["calibrate_relations"],
        modelling=config["modelling"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/calibrate_relations.py"
