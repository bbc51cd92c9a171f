"""M21 section 3.3: real-morphology sources and their full-analysis U/C/O reconstructions."""


rule hudf_stamps:
    output:
        "results/sources/hudf_stamps.h5",
    log:
        "logs/sources/hudf_stamps.log",
    conda:
        CONDA_ENV
    params:
        settings=config["complex_sources"]["stamps"],
        seed=config["seed"],
    script:
        "../scripts/hudf_stamps.py"


rule simulate_hudf:
    input:
        stamps=rules.hudf_stamps.output[0],
    output:
        "results/simulate/hudf/shard-{shard}.h5",
    log:
        "logs/simulate/hudf/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/simulate/hudf/shard-{shard}.tsv"
    group:
        SIMULATE_AND_MASK
    conda:
        CONDA_ENV
    params:
        kind="hudf",
        settings={**config["simulate_slacs"], **config["complex_sources"]},
        survey=survey_of("simulate_slacs"),
        reference=reference_survey(),
        seed=config["seed"],
    script:
        "../scripts/simulate.py"


rule complex_pairs:
    input:
        sim=lambda w: shard_of("simulate", "hudf", int(w.lens)),
        mask=lambda w: shard_of("mask", "hudf", int(w.lens)),
    output:
        "results/complex/pairs/lens-{lens}.h5",
    log:
        "logs/complex/lens-{lens}.log",
    benchmark:
        "logs/benchmarks/complex/lens-{lens}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=trainingset_settings(),
        calibration=complex_calibration(),
        modelling=config["modelling"],
        shard_size=config["complex_sources"]["shard_size"],
        seed=config["seed"],
        scratch=lambda w: f"results/complex/autofit/lens-{w.lens}",
    script:
        "../scripts/complex_pairs.py"
