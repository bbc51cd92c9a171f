"""Rule adapter: held-out Sersic pairs and real-morphology pairs -> M21 Table 2, Figs 11-12."""

import tempfile

import numpy as np
import torch

from hybridlens import config, io, plotting, runlog
from hybridlens.analysis import evaluation
from hybridlens.networks import classifier, figures, training
from hybridlens.reconstruction import trainingset

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # overrides the OMP_NUM_THREADS=1 the Snakefile exports
log.info("%d CPU threads", torch.get_num_threads())
p = snakemake.params
sersic = training.split_from_hdf5(snakemake.input.model, "test")
scratch = tempfile.TemporaryDirectory()
m21_pairs = trainingset.m21_test_pairs(  # Table 2 beside its own test pairs: M21's of the same lenses
    sersic,
    snakemake.input.sim,
    snakemake.input.mask,
    io.read_relations(snakemake.input.relations),
    p.trainingset,
    scratch.name,
)
model = training.build_model(p.settings)
model.load_state_dict(training.state_from_hdf5(snakemake.input.model))
test_sets = {"sersic": sersic, "hudf": training.catalogue(snakemake.input.complex)}
outputs = {
    "sersic": (snakemake.output.table, snakemake.output.figure),
    "hudf": (snakemake.output.complex_table, snakemake.output.complex_figure),
}
titles = {"sersic": "Sérsic test pairs", "hudf": "HDF-source pairs"}
arrays, columns = {}, {}


def scored(name, entries):
    """`ClassScores` of one test set, logged and kept for evaluation.h5."""
    labels = [entry.label for entry in entries]
    result = evaluation.class_scores(training.predict(model, entries, p.settings), labels, len(classifier.CLASSES))
    log.info("%s: accuracy %.4f on %d pairs", name, result.accuracy, len(entries))
    arrays.update(
        {
            f"{name}_probabilities": result.probabilities,
            f"{name}_label": result.truth,
            f"{name}_confusion": result.counts,
        }
    )
    columns.update({f"{name}_{key}": np.asarray(value, float) for key, value in result.scores.items()})
    return result


for name, entries in test_sets.items():
    result = scored(name, entries)
    summary = result.summary(classifier.CLASSES)
    if name == "sersic" and m21_pairs is not None:
        summary["m21_pairs"] = scored("sersic_m21", m21_pairs).summary(classifier.CLASSES)
    table, figure = outputs[name]
    evaluation.table(result.scores, classifier.CLASSES).to_csv(table, index_label="class")
    fig, plotted = figures.confusion(
        evaluation.row_normalise(result.counts), classifier.CLASSES, f"{titles[name]} (n={len(entries)})"
    )
    plotting.save(fig, figure[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
io.write_shard(
    snakemake.output.evaluation,
    attrs=io.provenance("evaluate_classifier", config.digest(p.settings), p.seed),
    arrays=arrays,
    params=columns,
)
