"""Simulated lenses: M21 section 3.1 (slacs) and P21 section 2.1 (training_*)."""


rule simulate_slacs:
    output:
        "results/simulate/{slacs_set}/shard-{shard}.h5",
    log:
        "logs/simulate/{slacs_set}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/simulate/{slacs_set}/shard-{shard}.tsv"
    priority: M21_CRITICAL_PATH
    group:
        SIMULATE_AND_MASK
    conda:
        CONDA_ENV
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
    benchmark:
        "logs/benchmarks/simulate/training_{mass_model}/shard-{shard}.tsv"
    priority: BNN_CHAIN
    group:
        SIMULATE_AND_MASK
    conda:
        CONDA_ENV
    params:
        kind="training",
        settings=config["simulate_training"],
        survey=survey_of("simulate_training"),
        reference=reference_survey(),
        seed=config["seed"],
    script:
        "../scripts/simulate.py"


rule simulate_p21_testset:
    input:
        stamps="results/sources/hudf_stamps.h5",
    output:
        "results/simulate/p21_{testset}/shard-{shard}.h5",
    log:
        "logs/simulate/p21_{testset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/simulate/p21_{testset}/shard-{shard}.tsv"
    group:
        SIMULATE_AND_MASK
    conda:
        CONDA_ENV
    params:
        settings=p21_testset_settings(),
        survey=survey_of("p21_testsets"),
        reference=reference_survey(),
        seed=config["seed"],
    script:
        "../scripts/simulate_p21_testset.py"


rule p21_testsets:
    """Target: P21's test sets (a)-(g), simulated and masked (`snakemake p21_testsets`)."""
    input:
        p21_testset_masks(),
