"""Rule adapter: held-out Sersic pairs -> M21 Table 2 and Fig 11."""

import h5py
import numpy as np
import torch

from hybridlens import config, evaluation, figures, io, runlog
from hybridlens.networks import classifier, training

log = runlog.start(snakemake.log[0])
p = snakemake.params
with h5py.File(snakemake.input.model) as h5:
    group = h5["split_test"]
    test = list(zip(group["shard"][()].astype(str), group["row"][()], group["label"][()], group["lens_index"][()]))
model = training.build_model(p.settings)
model.load_state_dict(torch.load(snakemake.input.weights, map_location="cpu", weights_only=True))
probabilities = training.predict(model, test, p.settings)
truth = np.array([entry[2] for entry in test])
predicted = probabilities.argmax(1) if len(test) else np.zeros(0, int)
counts = evaluation.confusion_matrix(truth, predicted, len(classifier.CLASSES))
scores = evaluation.precision_recall_f1(counts)
accuracy = float((truth == predicted).mean()) if len(test) else float("nan")
log.info("test accuracy %.4f on %d pairs", accuracy, len(test))
io.write_shard(
    snakemake.output.evaluation,
    attrs=io.provenance("evaluate_classifier", config.digest(p.settings), p.seed, test_set="sersic"),
    arrays={"probabilities": probabilities, "label": truth, "confusion": counts},
    params={key: np.asarray(value, float) for key, value in scores.items()},
)
evaluation.table(scores, classifier.CLASSES).to_csv(snakemake.output.table, index_label="class")
fig = figures.confusion(evaluation.row_normalise(counts), classifier.CLASSES, f"Sérsic test pairs (n={len(test)})")
summary = {"accuracy": accuracy, "n_pairs": len(test), "confusion_counts": counts.tolist(),
           **{key: dict(zip(classifier.CLASSES, np.asarray(value, float).tolist())) for key, value in scores.items()}}  # fmt: skip
figures.save(fig, snakemake.output.figure[0].removesuffix(".json"), p.formats, summary)
