"""Simulated lenses: M21 section 3.1 (slacs) and P21 section 2.1 (training_*)."""


rule simulate_slacs:
    output:
        "results/simulate/slacs/shard-{shard}.h5",
    log:
        "logs/simulate/slacs/shard-{shard}.log",
    conda:
        "../../envs/hybridlens.yaml"
    params:
        kind="slacs",
        settings=config["simulate_slacs"],
        survey=survey_of("simulate_slacs"),
        reference=reference_survey(),
        seed=config["seed"],
    script:
        "../scripts/simulate.py"


rule simulate_training:
    output:
        "results/simulate/training_{mass_model}/shard-{shard}.h5",
    log:
        "logs/simulate/training_{mass_model}/shard-{shard}.log",
    conda:
        "../../envs/hybridlens.yaml"
    params:
        kind="training",
        settings=config["simulate_training"],
        survey=survey_of("simulate_training"),
        reference=reference_survey(),
        seed=config["seed"],
    script:
        "../scripts/simulate.py"
