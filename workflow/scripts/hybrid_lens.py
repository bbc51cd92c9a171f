"""Rule adapter: CNN verdicts and reruns after one lens's blind fit (M21 sections 3.5, 4.2)."""

import shutil

import numpy as np
import torch

from hybridlens import config, io, runlog, vocabulary
from hybridlens.fitting import hybrid, modelling
from hybridlens.networks import training

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
index = int(snakemake.wildcards.lens)
lens = io.read_lens(snakemake.input.sim, snakemake.input.mask, index % p.settings["shard_size"])
(blind,), blind_attrs = hybrid.read_rounds(snakemake.input.blind)
relations = io.read_relations(snakemake.input.relations)
digest = config.digest(
    {
        "hybrid": p.settings,
        "blind": blind_attrs["config_sha256"],
        "relations": relations,
        "seed": p.seed,
        "classifier": io.read_attrs(snakemake.input.model)["training_digest"],
        "verdicts": {key: p.classifier.get(key) for key in sorted(vocabulary.CLASSIFIER_INFERENCE_SETTINGS)},
    }
)
if blind.products is None:  # unusable lens or failed blind fit: flagged, nothing to rerun
    records = [blind]
else:
    classify = training.classifier_from_hdf5(snakemake.input.model, p.classifier)
    modelling.configure(p.scratch)
    problem = hybrid.lens_problem(
        lens, p.inversion, p.modelling, p.trainingset, p.class_ratio_ranges, p.seed + 1000 * index
    )
    settings = hybrid.HybridSettings.from_config(p.settings)
    store = hybrid.RoundStore(p.progress, digest, log)
    records = hybrid.model_lens(problem, classify, relations, settings, store, log, blind=blind)
    shutil.rmtree(p.scratch, ignore_errors=True)
log.info("lens %d: %d rounds, final %s (%s)", index, len(records), records[-1].action.kind, records[-1].reason)
columns = hybrid.truth_columns(records, lens["truth"], p.class_ratio_ranges, p.settings["max_axis_ratio_error"])
columns["lens_index"] = np.full(len(records), float(index))
hybrid.write_rounds(
    snakemake.output[0], records, io.provenance("hybrid_lens", digest, p.seed, lens["survey"], lens=index), columns
)
