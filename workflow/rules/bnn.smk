"""P21 section 3.2: the approximate Bayesian CNN per mass model (GPU rules), coverage-tuned dropout."""


rule train_bnn:
    input:
        training_shards,
    output:
        model="results/bnn/{mass_model}/rate-{rate}/model.h5",
        weights="results/bnn/{mass_model}/rate-{rate}/weights.pt",
    log:
        "logs/bnn/{mass_model}/train-{rate}.log",
    benchmark:
        "logs/benchmarks/bnn/{mass_model}/train-{rate}.tsv"
    priority: BNN_CHAIN
    conda:
        CONDA_ENV
    threads: config["bnn"]["threads"]
    resources:
        gpu=1,
    params:
        settings=config["bnn"],
        lens=config["simulate_training"]["lens"],
        seed=config["seed"],
        checkpoint=lambda w: f"results/bnn/{w.mass_model}/rate-{w.rate}/checkpoint.pt",
    script:
        "../scripts/train_bnn.py"


rule select_bnn:
    input:
        expand("results/bnn/{{mass_model}}/rate-{rate}/model.h5", rate=bnn_rates()),
    output:
        chosen="results/bnn/{mass_model}/chosen.h5",
        figure=figure_files("p21_fig4_coverage_{mass_model}", "BNN", caption="p21_fig4_coverage"),
    log:
        "logs/bnn/{mass_model}/select.log",
    conda:
        CONDA_ENV
    params:
        settings=config["bnn"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/select_bnn.py"


rule evaluate_bnn:
    input:
        chosen=rules.select_bnn.output.chosen,
        models=expand("results/bnn/{{mass_model}}/rate-{rate}/model.h5", rate=bnn_rates()),
        shards=training_shards,
    output:
        predictions="results/bnn/{mass_model}/test_predictions.h5",
        figure=figure_files("p21_fig6_{mass_model}", "BNN", caption="p21_fig6"),
    log:
        "logs/bnn/{mass_model}/evaluate.log",
    benchmark:
        "logs/benchmarks/bnn/{mass_model}/evaluate.tsv"
    conda:
        CONDA_ENV
    threads: config["bnn"]["threads"]
    params:
        settings=config["bnn"],
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/evaluate_bnn.py"


rule predict_bnn:
    input:
        chosen=rules.select_bnn.output.chosen,
        models=expand("results/bnn/{{mass_model}}/rate-{rate}/model.h5", rate=bnn_rates()),
        shard="results/simulate/{dataset}/shard-{shard}.h5",
    output:
        "results/bnn/{mass_model}/predict/{dataset}/shard-{shard}.h5",
    log:
        "logs/bnn/{mass_model}/predict/{dataset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/bnn/{mass_model}/predict/{dataset}/shard-{shard}.tsv"
    priority: BNN_CHAIN
    conda:
        CONDA_ENV
    threads: config["bnn"]["threads"]
    params:
        settings=config["bnn"],
        seed=config["seed"],
    script:
        "../scripts/predict_bnn.py"
