"""Simulated lenses: M21 section 3.1 (slacs) and P21 section 2.1 (training_*)."""


rule simulate_slacs:
    output:
        "results/simulate/{slacs_set}/shard-{shard}.h5",
    log:
        "logs/simulate/{slacs_set}/shard-{shard}.log",
    conda:
        "../../envs/hybridlens.yaml"
    params:
        kind="slacs",
        settings=lambda w: slacs_settings(w.slacs_set),
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
