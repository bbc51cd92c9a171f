"""Users' own lenses: FITS cutouts through the guarded hybrid loop (BNN(1 sigma) priors, classifier guard,
M21's reruns), a catalogue; and the guarded loop judged on M21's blind lenses against M21's loop."""


rule model_lens:
    input:
        unpack(model_lens_inputs),
    output:
        h5="results/lenses/{name}.h5",
        page="results/lenses/{name}.png",
        plotted="results/lenses/{name}.json",
    log:
        "logs/lenses/{name}.log",
    benchmark:
        "logs/benchmarks/lenses/{name}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        spec=lambda w: own_lenses()[w.name],
        settings=guarded_settings(),
        survey=survey_of("simulate_training"),
        seed=config["seed"],
        scratch=lambda w: f"results/lenses/autofit/{w.name}",
        progress=lambda w: f"results/lenses/progress/{w.name}.h5",
    script:
        "../scripts/model_lens.py"


rule coolest_export:
    input:
        "results/lenses/{name}.h5",
    output:
        json="results/lenses/{name}.coolest.json",
        files=directory("results/lenses/{name}.coolest"),
    log:
        "logs/lenses/{name}.coolest.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        inversion=config["inversion"],
    script:
        "../scripts/coolest_export.py"


rule lens_catalogue:
    input:
        lenses=expand("results/lenses/{name}.h5", name=sorted(own_lenses())),
        coolest=expand("results/lenses/{name}.coolest.json", name=sorted(own_lenses())),
    output:
        csv="results/lenses/catalogue.csv",
        h5="results/lenses/catalogue.h5",
        figure="results/lenses/summary.png",
        plotted="results/lenses/summary.json",
    log:
        "logs/lenses/catalogue.log",
    conda:
        CONDA_ENV
    params:
        settings=guarded_settings(),
        seed=config["seed"],
    script:
        "../scripts/lens_catalogue.py"


rule guarded_lens:
    input:
        unpack(guarded_networks),
        sim=lambda w: shard_of("simulate", "blind", int(w.lens)),
    output:
        "results/guarded/lens-{lens}.h5",
    log:
        "logs/guarded/lens-{lens}.log",
    benchmark:
        "logs/benchmarks/guarded/lens-{lens}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=guarded_settings(),
        seed=config["seed"],
        scratch=lambda w: f"results/guarded/autofit/lens-{w.lens}",
        progress=lambda w: f"results/guarded/progress/lens-{w.lens}.h5",
    script:
        "../scripts/guarded_lens.py"


rule guarded_evaluation:
    input:
        guarded=expand("results/guarded/lens-{lens:05d}.h5", lens=range(config["hybrid_modelling"]["n_images"])),
        m21=hybrid_lenses(),
    output:
        table="results/guarded/evaluation.h5",
        csv="results/figures/hybrid_guarded_evaluation.csv",
        markdown="results/figures/hybrid_guarded_evaluation.md",
        figure=figure_files("hybrid_guarded_evaluation", "Guarded hybrid"),
    log:
        "logs/guarded/evaluation.log",
    conda:
        CONDA_ENV
    params:
        class_ratio_ranges=config["calibrate_relations"]["class_ratio_ranges"],
        m21_reruns=config["hybrid_modelling"]["reruns"],
        guarded_reruns=config["model_lenses"]["reruns"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/guarded_evaluation.py"
