"""Generated documentation (not part of `rule all`): `snakemake docs --cores 1` after a run writes
docs/run-numbers.md (time per stage, results beside the papers', the config), the README's
results-at-a-glance block and docs/configuration.md (from config/schema.yaml)."""

from hybridlens import docs as hldocs


localrules:
    docs,


rule docs:
    input:
        schema="config/schema.yaml",
        defaults="config/config.yaml",
        readme="README.md",
    output:
        numbers="docs/run-numbers.md",
        configuration="docs/configuration.md",
    log:
        "logs/docs.log",
    conda:
        CONDA_ENV
    params:
        config=config,
        # {rule: benchmark file pattern, wildcard constraints inline}: which rule wrote each benchmark file
        patterns=lambda w: {rule.name: str(rule.benchmark) for rule in workflow.rules if rule.benchmark},
        # {rule: cores}: a job's core-minutes are its wall time times these
        threads=lambda w: {
            rule.name: rule.resources["_cores"]
            for rule in workflow.rules
            if rule.benchmark and isinstance(rule.resources.get("_cores"), int)
        },
        # new or rewritten results rerun this rule
        run_files=lambda w: hldocs.run_files_digest(),
    script:
        "../scripts/docs.py"
