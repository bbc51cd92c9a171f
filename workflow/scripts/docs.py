"""Rule adapter: a run's benchmarks and figure JSONs -> docs/run-numbers.md and the README's results block;
config/schema.yaml -> docs/configuration.md."""

import yaml

from hybridlens import docs, runlog

references = docs.paper_references()  # imports PyAutoLens, whose logging setup would silence a logger made before
log = runlog.start(snakemake.log[0])
p = snakemake.params
with open(snakemake.input.defaults) as handle:
    defaults = yaml.safe_load(handle)
commit = docs.tree_commit(".")
written = docs.write_run_docs(".", dict(p.patterns), dict(p.config), defaults, commit, references, dict(p.threads))
log.info("wrote %s", ", ".join(snakemake.output))
log.info("README results block %s", "rewritten" if "readme" in written else "kept: no figure JSON in results/figures")
