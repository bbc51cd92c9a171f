"""M21 sections 3.5 and 4.2: blind fits re-modelled by the CNN's verdict, judged against the truth."""


rule blind_fit:
    input:
        sim=lambda w: shard_of("simulate", "blind", int(w.lens)),
        mask=lambda w: shard_of("mask", "blind", int(w.lens)),
    output:
        "results/hybrid/blind/lens-{lens}.h5",
    log:
        "logs/hybrid/blind-{lens}.log",
    benchmark:
        "logs/benchmarks/hybrid/blind-{lens}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=config["hybrid_modelling"],
        modelling=config["modelling"],
        inversion=config["inversion"],
        trainingset=config["trainingset"],
        class_ratio_ranges=config["calibrate_relations"]["class_ratio_ranges"],
        seed=config["seed"],
        scratch=lambda w: f"results/hybrid/autofit/blind-{w.lens}",
    script:
        "../scripts/blind_fit.py"


rule hybrid_lens:
    input:
        sim=lambda w: shard_of("simulate", "blind", int(w.lens)),
        mask=lambda w: shard_of("mask", "blind", int(w.lens)),
        blind=rules.blind_fit.output[0],
        relations=rules.calibrate_relations.output.relations,
        model=rules.train_classifier.output.model,
    output:
        "results/hybrid/lens-{lens}.h5",
    log:
        "logs/hybrid/lens-{lens}.log",
    benchmark:
        "logs/benchmarks/hybrid/lens-{lens}.tsv"
    priority: M21_CRITICAL_PATH
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=config["hybrid_modelling"],
        modelling=config["modelling"],
        inversion=config["inversion"],
        trainingset=config["trainingset"],
        classifier=config["classifier"],
        class_ratio_ranges=config["calibrate_relations"]["class_ratio_ranges"],
        seed=config["seed"],
        scratch=lambda w: f"results/hybrid/autofit/lens-{w.lens}",
        progress=lambda w: f"results/hybrid/progress/lens-{w.lens}.h5",
    script:
        "../scripts/hybrid_lens.py"


rule hybrid_summary:
    input:
        lenses=hybrid_lenses(),
        sims=hybrid_lens_shards("simulate"),
        masks=hybrid_lens_shards("mask"),
    output:
        summary="results/hybrid/summary.h5",
        figure=figure_files("m21_fig13_hybrid", "Hybrid modelling"),
    log:
        "logs/hybrid/summary.log",
    conda:
        CONDA_ENV
    params:
        settings=config["hybrid_modelling"],
        positions=config["model_lenses"]["positions"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/hybrid_summary.py"
