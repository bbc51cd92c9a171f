"""Rule adapter: train one BNN (mass model x dropout rate); its coverage on the validation split picks the rate."""

import json

import numpy as np
import torch

from hybridlens import config, io, runlog
from hybridlens.networks import bnn, bnn_training, training

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
mass_model, rate_index = snakemake.wildcards.mass_model, int(snakemake.wildcards.rate)
dropout = p.settings["dropout_rates"][rate_index]
scaling = bnn.TargetScaling.for_ranges(mass_model, p.lens)
splits = bnn_training.split(*bnn_training.catalogue(snakemake.input, scaling.names), p.settings["split"], p.seed)
log.info(
    "%s, dropout %.3f: %s images; %d CPU threads",
    mass_model,
    dropout,
    {name: len(rows) for name, (rows, _) in splits.items()},
    torch.get_num_threads(),
)
model, history = bnn_training.train(splits, scaling, p.settings, dropout, p.checkpoint, p.seed, log=log.info)
log.info("%d trainable parameters", bnn.count_parameters(model))
model_input_size = int(bnn_training.read_arrays(splits["train"][0][:1])["image"].shape[-1])
validation_rows = splits["validation"][0][: p.settings["calibration_images"]]
predictions, truth, validation = bnn_training.assess(
    model, validation_rows, scaling, p.settings["mc_passes"], splits["train"][0], p.seed
)
log.info("validation: %s", json.dumps(validation))
torch.save(model.state_dict(), snakemake.output.weights)  # a convenience copy: the HDF5 below is read downstream
io.write_shard(
    snakemake.output.model,
    attrs=io.provenance(
        "train_bnn",
        config.digest(p.settings),
        p.seed,
        mass_model=mass_model,
        dropout=dropout,
        width=p.settings["width"],
        binning=p.settings["binning"],
        input_size=model_input_size,
        cpu_threads=torch.get_num_threads(),
        n_parameters=bnn.count_parameters(model),
        targets=json.dumps(scaling.names),
        scaling=json.dumps({"low": scaling.low, "high": scaling.high}),
        training_digest=bnn_training.digest(splits, p.settings, dropout, p.seed),
        validation=json.dumps(validation),
        device=str(bnn_training.device_for(p.settings["device"])),
    ),
    params={key: np.asarray(values, float) for key, values in history.items()},
    units={"epoch_seconds": "s", "training_seconds": "s (the training pass of the epoch, validation aside)"},
    groups={
        "weights": training.state_arrays(model),
        # what select_bnn scales sigma by, should this rate be chosen
        "validation": bnn_training.prediction_columns(predictions, truth),
    },
)
