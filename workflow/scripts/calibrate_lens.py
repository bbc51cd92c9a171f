"""Rule adapter: the three constrained (under / correct / over) fits of one theta_E-stratum's lens."""

import shutil

import numpy as np

from hybridlens import config, io, runlog
from hybridlens.fitting import modelling
from hybridlens.flags import CalibrationFlag
from hybridlens.reconstruction import calibration, inversion, masking

log = runlog.start(snakemake.log[0])
p = snakemake.params
stratum = int(snakemake.wildcards.stratum)
sims, masks = io.read_params(snakemake.input.sims), io.read_params(snakemake.input.masks)
chosen = calibration.stratified_lenses(
    sims["einstein_radius"], masking.usable(sims["flags"], masks["flags"]), p.settings["n_lenses"]
)
index = int(sims["index"][chosen[stratum]])
shard, row = divmod(index, p.shard_size)
lens = io.read_lens(snakemake.input.sims[shard], snakemake.input.masks[shard], row)
log.info(
    "stratum %d of %d: lens %d (theta_E %.3f)", stratum, p.settings["n_lenses"], index, lens["truth"]["einstein_radius"]
)
truth = inversion.Mass.from_truth(lens["truth"])
rows = [{"label": float(label)} for label in range(len(calibration.CLASSES))]
flags = np.full(len(rows), CalibrationFlag.UNUSABLE, np.uint8)
if masking.usable(lens["simulation_flags"], lens["mask_flags"]):
    modelling.configure(p.scratch)
    masked = inversion.MaskedLens.from_lens(lens, p.inversion)
    results = calibration.calibrate_lens(masked, truth, p.settings, p.modelling, p.seed + index)
    shutil.rmtree(p.scratch, ignore_errors=True)
    rows = [{"label": float(label), **result.row()} for label, result in enumerate(results)]
    flags[:] = 0
    for row in rows:
        log.info(
            "class %d: theta_E %.3f (true %.3f), %d calls in %.0f s%s",
            row["label"],
            row["ml_einstein_radius"],
            truth.einstein_radius,
            row["n_calls"],
            row["seconds"],
            ", CALL CAP HIT" if row["hit_call_cap"] else "",
        )
columns = {key: np.array([row.get(key, np.nan) for row in rows]) for key in sorted(set().union(*rows))}
for name, value in lens["truth"].items():
    columns[f"truth_{name}"] = np.full(len(rows), value)
columns["lens_index"] = np.full(len(rows), float(index))
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "calibrate_lens",
        config.digest({"calibration": p.settings, "modelling": p.modelling}),
        p.seed,
        lens["survey"],
        lens=index,
        stratum=stratum,
    ),
    params=columns,
    flags=flags,
    flag_family=CalibrationFlag,
)
