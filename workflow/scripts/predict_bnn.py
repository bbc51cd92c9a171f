"""Rule adapter: the chosen BNN's MC-dropout predictions (mean, 1 sigma) for one simulation shard."""

import torch

from hybridlens import config, io, runlog
from hybridlens.flags import SimulationFlag
from hybridlens.networks import bnn_training, training

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
chosen = bnn_training.load_chosen(snakemake.input.chosen)
table = io.read_params([snakemake.input.shard])
entries = [
    training.TrainingEntry(snakemake.input.shard, row, 0, int(index)) for row, index in enumerate(table["index"])
]
predictions = bnn_training.predict(
    chosen.model, entries, chosen.scaling, p.settings["mc_passes"], seed=p.seed, factors=chosen.factors
)
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "predict_bnn",
        config.digest(p.settings),
        p.seed,
        mass_model=snakemake.wildcards.mass_model,
        dropout=chosen.dropout,
        shard=snakemake.input.shard,
    ),
    params={**bnn_training.prediction_columns(predictions), "index": table["index"].to_numpy(float)},
    flags=table["flags"].to_numpy(),  # the simulation's, row by row
    flag_family=SimulationFlag,
)
log.info("%d images predicted with %d MC passes", len(entries), p.settings["mc_passes"])
