"""Rule adapter: one P21 PyAutoLens method on every lens of a test-set shard, written as one HDF5 shard."""

import shutil

import numpy as np
import pandas as pd

from hybridlens import config, io, runlog
from hybridlens.analysis import comparison
from hybridlens.fitting import informed_priors, modelling
from hybridlens.flags import ComparisonFlag

log = runlog.start(snakemake.log[0])
p = snakemake.params
method, testset = snakemake.wildcards.method, snakemake.wildcards.testset
inputs = snakemake.input
n_rows = len(io.read_params([inputs.simulate]))
predictions = io.read_params([inputs.predictions]) if "predictions" in inputs.keys() else None
priors = informed_priors.PriorSettings.from_config(p.settings["priors"], p.settings["smooth_pixels"])
settings = {**p.settings, "priors": priors}
rows, reasons = [], []
for row in range(n_rows):  # a lens that cannot be fitted is flagged; the others go on
    lens = io.read_lens(inputs.simulate, inputs.mask, row)
    prediction = comparison.prediction_from(predictions, row) if predictions is not None else None
    modelling.configure(p.scratch)
    fit, reason = comparison.fit_lens(lens, method, prediction, settings, p.seed + 1000 * lens["index"], log)
    shutil.rmtree(p.scratch, ignore_errors=True)
    log.info("%s on %s lens %d: %s", method, testset, lens["index"], reason)
    rows.append({"lens_index": float(lens["index"]), **fit})
    reasons.append(reason)
table = pd.DataFrame(rows)  # columns missing for flagged lenses become NaN
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "p21_fit",
        config.digest({**p.settings, "simulation": io.read_attrs(inputs.simulate)["config_sha256"]}),
        p.seed,
        lens["survey"],  # the shard's survey (every row shares it)
        testset=testset,
        method=method,
        shard=int(snakemake.wildcards.shard),
        reasons="\n".join(reasons),
    ),
    params={key: table[key].to_numpy(float) for key in table if key != "flags"},
    flags=table["flags"].to_numpy(np.uint8),
    flag_family=ComparisonFlag,
)
