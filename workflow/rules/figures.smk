"""Galleries of the simulated data sets (M21 Fig 3, P21 Fig 1)."""


rule gallery_slacs:
    input:
        sims=shards("simulate", "slacs"),
        masks=shards("mask", "slacs"),
    output:
        figure_files("m21_fig3_gallery", "Simulations"),
    log:
        "logs/figures/m21_fig3_gallery.log",
    conda:
        CONDA_ENV
    params:
        n=config["figures"]["gallery_n"],
        gallery_shards=len(gallery_shards("simulate", "slacs")),
    script:
        "../scripts/gallery_slacs.py"


rule gallery_training:
    input:
        sims=[p for d in training_datasets() for p in shards("simulate", d)],
        masks=[p for d in training_datasets() for p in shards("mask", d)],
    output:
        figure_files("p21_fig1_gallery", "Simulations"),
    log:
        "logs/figures/p21_fig1_gallery.log",
    conda:
        CONDA_ENV
    params:
        n=config["figures"]["gallery_n"],
        models=config["simulate_training"]["mass_models"],
        gallery_shards=len(gallery_shards("simulate", "training_sie")),
    script:
        "../scripts/gallery_training.py"
