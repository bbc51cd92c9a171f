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
