"""Rule adapter: the three constrained (under / correct / over) fits of one lens."""

import shutil

import numpy as np

from hybridlens import calibration, config, inversion, io, masking, modelling, runlog
from hybridlens.survey import Survey

log = runlog.start(snakemake.log[0])
p = snakemake.params
index = int(snakemake.wildcards.lens)
lens = io.read_lens(snakemake.input.sim, snakemake.input.mask, index % p.shard_size)
truth = lens["truth"]
rows = [{"label": float(label)} for label in range(len(calibration.CLASSES))]
flags = np.ones(len(rows), np.uint8)
if masking.usable(lens["simulation_flags"], lens["mask_flags"]):
    modelling.configure(p.scratch)
    survey = Survey.from_settings(lens["survey"])
    masked = inversion.MaskedLens(
        lens["image"], lens["noise_map"], lens["mask"], survey.psf_kernel(), survey.pixel_scale, p.inversion
    )
    rows = calibration.calibrate_lens(masked, truth["einstein_radius"], p.settings, p.seed + index)
    flags[:] = 0
    shutil.rmtree(p.scratch, ignore_errors=True)
    for row in rows:
        log.info("class %d: theta_E %.3f (true %.3f), %d samples in %.0f s", row["label"],
                 row["ml_einstein_radius"], truth["einstein_radius"], row["n_calls"], row["seconds"])  # fmt: skip
columns = {key: np.array([row.get(key, np.nan) for row in rows]) for key in sorted(set().union(*rows))}
for name in ("einstein_radius", "axis_ratio", "angle"):
    columns[f"truth_{name}"] = np.full(len(rows), truth[name])
columns["lens_index"] = np.full(len(rows), float(index))
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance("calibrate_lens", config.digest(p.settings), p.seed, lens["survey"], lens=index),
    params=columns,
    flags=flags,
    flag_bits={1: "lens unusable (no mask or flagged simulation): not fitted"},
)
