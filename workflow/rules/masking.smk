"""Automatic annular masks, M21 section 3.2."""


rule mask:
    input:
        "results/simulate/{dataset}/shard-{shard}.h5",
    output:
        "results/mask/{dataset}/shard-{shard}.h5",
    log:
        "logs/mask/{dataset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/mask/{dataset}/shard-{shard}.tsv"
    priority: M21_CRITICAL_PATH
    group:
        SIMULATE_AND_MASK
    conda:
        CONDA_ENV
    params:
        settings=config["masking"],
        seed=config["seed"],
    script:
        "../scripts/mask.py"
