"""Rule adapter: train the M21 classifier on the training-set shards (resumable)."""

import numpy as np
import torch

from hybridlens import config, io, runlog
from hybridlens.networks import classifier, training

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # overrides the OMP_NUM_THREADS=1 the Snakefile exports
p = snakemake.params
splits = training.split_by_lens(training.catalogue(snakemake.input), p.settings["split"], p.seed)
log.info("pairs: %s; %d CPU threads", {name: len(rows) for name, rows in splits.items()}, torch.get_num_threads())
model, history = training.train(splits, p.settings, p.checkpoint, p.seed, log=log.info)
log.info("%d trainable parameters", classifier.count_parameters(model))
torch.save(model.state_dict(), snakemake.output.weights)  # a convenience copy: the HDF5 below is read downstream
io.write_shard(
    snakemake.output.model,
    attrs=io.provenance(
        "train_classifier",
        config.digest(p.settings),
        p.seed,
        n_parameters=classifier.count_parameters(model),
        device=str(training.device_for(p.settings["device"])),
        cpu_threads=torch.get_num_threads(),  # CPU results are reproducible at a fixed thread count
        training_digest=training.training_digest(splits, p.settings, p.seed),
    ),
    params={key: np.asarray(values, float) for key, values in history.items()},
    units={"epoch_seconds": "s"},
    groups=training.split_groups(splits) | {"weights": training.state_arrays(model)},
)
