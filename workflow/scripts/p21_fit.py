"""Rule adapter: one P21 PyAutoLens method on one test-set lens, written as a one-row HDF5 shard."""

import shutil

import numpy as np

from hybridlens import comparison, config, informed_priors, io, modelling, runlog

log = runlog.start(snakemake.log[0])
p = snakemake.params
index, method = int(snakemake.wildcards.lens), snakemake.wildcards.method
row = index % p.settings["shard_size"]
lens = io.read_lens(snakemake.input.sim, snakemake.input.mask, row)
prediction = None
if "predictions" in snakemake.input.keys():
    prediction = comparison.prediction_from(io.read_params([snakemake.input.predictions]), row)
settings = {**p.settings, "priors": informed_priors.PriorSettings.from_config(p.settings["priors"])}
modelling.configure(p.scratch)
fit, reason = comparison.fit_lens(lens, method, prediction, settings, p.seed + 1000 * index, log)
shutil.rmtree(p.scratch, ignore_errors=True)
log.info("%s on %s lens %d: %s", method, snakemake.wildcards.testset, index, reason)
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "p21_fit",
        config.digest({**p.settings, "simulation": io.read_attrs(snakemake.input.sim)["config_sha256"]}),
        p.seed,
        lens["survey"],
        testset=snakemake.wildcards.testset,
        method=method,
        lens=index,
        reason=reason,
    ),
    params={key: np.array([value], float) for key, value in fit.items() if key != "flags"},
    flags=np.array([int(fit["flags"])], np.uint8),
    flag_bits=comparison.FLAG_BITS,
)
