"""Rule adapter: the chosen BNN on the test split (read once): P21 Table 1 form, coverage, Fig 6."""

import json

import torch

from hybridlens import config, io, plotting, runlog
from hybridlens.networks import bnn_training, figures

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
chosen = bnn_training.load_chosen(snakemake.input.chosen)
model, scaling = chosen.model, chosen.scaling
splits = bnn_training.split(*bnn_training.catalogue(snakemake.input.shards, scaling.names), p.settings["split"], p.seed)
test, train = splits["test"][0], splits["train"][0]
predictions, truth, summary = bnn_training.assess(
    model, test, scaling, p.settings["mc_passes"], train, p.seed, chosen.factors
)
summary = {
    "dropout": chosen.dropout,
    "sigma_scale": chosen.factors,
    "n_test": len(test),
    "n_train": len(train),
    "parameters": summary,
}
log.info("test: %s", json.dumps(summary))
names = bnn_training.reported_names(scaling)
fig, plotted = figures.predicted_vs_true({name: predictions[name] for name in names}, truth)
plotting.save(fig, snakemake.output.figure[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
io.write_shard(
    snakemake.output.predictions,
    attrs=io.provenance(
        "evaluate_bnn",
        config.digest(p.settings),
        p.seed,
        mass_model=snakemake.wildcards.mass_model,
        dropout=chosen.dropout,
    ),
    params={
        **bnn_training.prediction_columns(predictions, truth),
        "index": [float(entry.lens_index) for entry in test],
    },
)
