"""Automatic annular masks, M21 section 3.2."""


rule mask:
    input:
        "results/simulate/{dataset}/shard-{shard}.h5",
    output:
        "results/mask/{dataset}/shard-{shard}.h5",
    params:
        settings=config["masking"],
        seed=config["seed"],
    log:
        "logs/mask/{dataset}/shard-{shard}.log",
    conda:
        "../../envs/hybridlens.yaml"
    script:
        "../scripts/mask.py"
