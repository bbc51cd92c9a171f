"""M21 section 3.2 fast training set and the inversion figures (Figs 2, 7)."""


rule trainingset:
    input:
        sim="results/simulate/slacs/shard-{shard}.h5",
        mask="results/mask/slacs/shard-{shard}.h5",
        relations=rules.calibrate_relations.output.relations,
    output:
        "results/trainingset/slacs/shard-{shard}.h5",
    log:
        "logs/trainingset/slacs/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/trainingset/slacs/shard-{shard}.tsv"
    priority: M21_CRITICAL_PATH
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=trainingset_settings(),
        seed=config["seed"],
    script:
        "../scripts/trainingset.py"


rule trainingset_summary:
    input:
        shards=shards("trainingset", "slacs"),
        relations=rules.calibrate_relations.output.relations,
    output:
        figure_files("m21_trainingset_ratios", "Training set"),
    log:
        "logs/figures/m21_trainingset_ratios.log",
    conda:
        CONDA_ENV
    params:
        formats=config["figures"]["format"],
    script:
        "../scripts/trainingset_summary.py"


rule inversion_figures:
    input:
        sim="results/simulate/slacs/shard-00000.h5",
        mask="results/mask/slacs/shard-00000.h5",
        relations=rules.calibrate_relations.output.relations,
    output:
        fig2=figure_files("m21_fig2_reconstructions", "Inversion"),
        fig7=figure_files("m21_fig7_evidence_slice", "Inversion"),
    log:
        "logs/figures/m21_fig2_fig7.log",
    conda:
        CONDA_ENV
    params:
        settings=trainingset_settings(),
        slice=config["figures"]["evidence_slice"],
        formats=config["figures"]["format"],
    script:
        "../scripts/inversion_figures.py"
