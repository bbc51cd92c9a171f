"""M21 sections 3.3-3.4: train the reconstruction classifier (GPU rule) and evaluate it."""


rule train_classifier:
    input:
        shards("trainingset", "slacs"),
    output:
        model="results/classifier/model.h5",
        weights="results/classifier/weights.pt",
    log:
        "logs/classifier/train.log",
    benchmark:
        "logs/benchmarks/classifier/train.tsv"
    priority: M21_CRITICAL_PATH
    conda:
        CONDA_ENV
    threads: config["classifier"]["threads"]
    resources:
        gpu=1,
    params:
        settings=classifier_training_settings(),
        seed=config["seed"],
        checkpoint="results/classifier/checkpoint.pt",
    script:
        "../scripts/train_classifier.py"


rule evaluate_classifier:
    input:
        model=rules.train_classifier.output.model,
        shards=shards("trainingset", "slacs"),
        complex=complex_pairs(),
        sim=shards("simulate", "slacs"),
        mask=shards("mask", "slacs"),
        relations=rules.calibrate_relations.output.relations,
    output:
        evaluation="results/classifier/evaluation.h5",
        table="results/classifier/m21_table2_sersic.csv",
        complex_table="results/classifier/m21_table2_hudf.csv",
        figure=figure_files("m21_fig11_confusion_sersic", "Classifier"),
        complex_figure=figure_files("m21_fig12_confusion_hudf", "Classifier"),
    log:
        "logs/classifier/evaluate.log",
    benchmark:
        "logs/benchmarks/classifier/evaluate.tsv"
    conda:
        CONDA_ENV
    threads: config["classifier"]["threads"]
    params:
        settings=config["classifier"],
        trainingset=trainingset_settings(),
        seed=config["seed"],
        formats=config["figures"]["format"],
    script:
        "../scripts/evaluate_classifier.py"
