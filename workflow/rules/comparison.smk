"""P21 sections 3.1, 4: PyAutoLens blind, + BNN and + BNN(1 sigma) fits of the test-set lenses."""


rule p21_fit:
    input:
        unpack(p21_fit_inputs),
    output:
        "results/p21/fits/{testset}/{method}/lens-{lens}.h5",
    log:
        "logs/p21/fits/{testset}/{method}/lens-{lens}.log",
    conda:
        "../../envs/hybridlens.yaml"
    threads: 1
    params:
        settings=lambda w: {
            "modelling": config["modelling"],
            "inversion": config["inversion"],
            "priors": config["p21_comparison"]["priors"],
            "power_law": p21_model(w.testset) == "power_law",
            "shard_size": config["p21_testsets"]["shard_size"],
        },
        seed=config["seed"],
        scratch=lambda w: f"results/p21/autofit/{w.testset}-{w.method}-{w.lens}",
    script:
        "../scripts/p21_fit.py"


rule p21_compare:
    input:
        **p21_compare_inputs(),
    output:
        table="results/p21/comparison.h5",
        csv="results/figures/p21_tables.csv",
        markdown="results/figures/p21_tables.md",
        errors="results/figures/p21_errors.png",
        timing="results/figures/p21_fig19_timing.png",
    log:
        "logs/p21/compare.log",
    conda:
        "../../envs/hybridlens.yaml"
    params:
        sets=config["p21_testsets"]["sets"],
        n_images=config["p21_testsets"]["n_images"],
        formats=config["figures"]["format"],
    script:
        "../scripts/p21_compare.py"
