"""P21 sections 3.1, 4: PyAutoLens blind, + BNN and + BNN(1 sigma) fits of the test-set lenses.

One job per set x method x shard: at paper scale 420 jobs of 50 fits, not 21,000 of one.
"""


rule p21_fit:
    input:
        unpack(p21_fit_inputs),
    output:
        "results/p21/fits/{method}/p21_{testset}/shard-{shard}.h5",
    log:
        "logs/p21/fits/{method}/p21_{testset}/shard-{shard}.log",
    benchmark:
        "logs/benchmarks/p21/fits/{method}/p21_{testset}/shard-{shard}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=p21_fit_settings,
        seed=config["seed"],
        scratch=lambda w: f"results/p21/autofit/{w.testset}-{w.method}-{w.shard}",
    script:
        "../scripts/p21_fit.py"


rule p21_compare:
    input:
        **p21_compare_inputs(),
    output:
        table="results/p21/comparison.h5",
        csv=report(
            "results/figures/p21_tables.csv",
            caption="../report/p21_tables.rst",
            category=REPORT_CATEGORIES["p21"],
            subcategory="Comparison",
        ),
        markdown="results/figures/p21_tables.md",
        errors=figure_files("p21_errors", "Comparison"),
        timing=figure_files("p21_fig19_timing", "Comparison"),
    log:
        "logs/p21/compare.log",
    conda:
        CONDA_ENV
    params:
        sets=config["p21_testsets"]["sets"],
        n_images=config["p21_testsets"]["n_images"],
        formats=config["figures"]["format"],
    script:
        "../scripts/p21_compare.py"
