"""Rule adapter: held-out Sersic pairs and real-morphology pairs -> M21 Table 2, Figs 11-12."""

import tempfile

import h5py
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
with h5py.File(snakemake.input.model) as h5:
    group = h5["split_test"]
    stored = (group["shard"][()].astype(str), group["row"][()], group["label"][()], group["lens_index"][()])
    sersic = [
        training.TrainingEntry(str(path), int(row), int(label), int(lens)) for path, row, label, lens in zip(*stored)
    ]
m21_pairs = None
if not trainingset.has_m21_rows(p.trainingset):  # Table 2 beside its own test pairs: M21's of the same lenses
    selection = trainingset.test_lens_rows(sersic, snakemake.input.sim, snakemake.input.mask)
    scratch = tempfile.TemporaryDirectory()
    m21_pairs = training.catalogue(
        trainingset.m21_test_shards(
            selection, io.read_relations(snakemake.input.relations), p.trainingset, scratch.name
        )
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
    """Probabilities, confusion and scores of one test set; logged and kept for evaluation.h5."""
    probabilities = training.predict(model, entries, p.settings)
    truth = np.array([entry.label for entry in entries], dtype=int)
    predicted = probabilities.argmax(1) if len(entries) else np.zeros(0, int)
    counts = evaluation.confusion_matrix(truth, predicted, len(classifier.CLASSES))
    scores = evaluation.precision_recall_f1(counts)
    accuracy = float((truth == predicted).mean()) if len(entries) else float("nan")
    log.info("%s: accuracy %.4f on %d pairs", name, accuracy, len(entries))
    arrays.update({f"{name}_probabilities": probabilities, f"{name}_label": truth, f"{name}_confusion": counts})
    columns.update({f"{name}_{key}": np.asarray(value, float) for key, value in scores.items()})
    summary = {
        "accuracy": accuracy,
        "n_pairs": len(entries),
        "confusion_counts": counts.tolist(),
        **{key: dict(zip(classifier.CLASSES, np.asarray(value, float).tolist())) for key, value in scores.items()},
    }
    return counts, scores, summary


for name, entries in test_sets.items():
    counts, scores, summary = scored(name, entries)
    if name == "sersic" and m21_pairs is not None:
        summary["m21_pairs"] = scored("sersic_m21", m21_pairs)[2]
    table, figure = outputs[name]
    evaluation.table(scores, classifier.CLASSES).to_csv(table, index_label="class")
    fig, plotted = figures.confusion(
        evaluation.row_normalise(counts), classifier.CLASSES, f"{titles[name]} (n={len(entries)})"
    )
    plotting.save(fig, figure[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
io.write_shard(
    snakemake.output.evaluation,
    attrs=io.provenance("evaluate_classifier", config.digest(p.settings), p.seed),
    arrays=arrays,
    params=columns,
)
