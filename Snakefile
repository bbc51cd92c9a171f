"""hybridlens: simulation -> annular masks -> inversions -> CNN/BNN -> hybrid modelling.

Run `snakemake --cores N`; choose the scale with `--configfile config/paper.yaml`.
"""

import os

# One BLAS/OpenMP thread per job: Snakemake runs jobs in parallel instead, and
# PyAutoLens inversions slow down when several threads share a core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Every HDF5 file has one writer (its rule); HDF5's own locks fail on some network
# file systems (NFS, Lustre) that cluster jobs share.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

from hybridlens import config as hlconfig


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


hlconfig.validate(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/masking.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/calibrate.smk"
include: "workflow/rules/trainingset.smk"
include: "workflow/rules/complex.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/hybrid.smk"
include: "workflow/rules/bnn.smk"
include: "workflow/rules/comparison.smk"
include: "workflow/rules/lenses.smk"
include: "workflow/rules/docs.smk"


rule all:
    default_target: True
    input:
        all_simulations(),
        all_masks(),
        rules.gallery_slacs.output,
        rules.gallery_training.output,
        rules.calibrate_relations.output,
        shards("trainingset", "slacs"),
        rules.trainingset_summary.output,
        rules.inversion_figures.output,
        rules.evaluate_classifier.output,
        rules.hybrid_summary.output,
        expand(rules.evaluate_bnn.output, mass_model=config["simulate_training"]["mass_models"]),
        p21_comparison_outputs(),
        guarded_outputs(),
