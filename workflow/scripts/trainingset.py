"""Rule adapter: U/C/O (source reconstruction, residual) pairs for one shard of lenses."""

import json
import time

import h5py

from hybridlens import config, inversion, io, masking, runlog, trainingset
from hybridlens.survey import Survey

log = runlog.start(snakemake.log[0])
p = snakemake.params
sim, mask = snakemake.input.sim, snakemake.input.mask
attrs = io.read_attrs(sim)
survey = Survey.from_settings(json.loads(attrs["survey"]))
truths = io.read_params([sim])
annuli = io.read_params([mask])
with h5py.File(snakemake.input.relations) as h5:
    relations = {name: {k: float(h5[name][k][()]) for k in h5[name]} for name in ("under", "correct", "over")}
start = time.perf_counter()
result = trainingset.build_shard(
    io.read_array([sim], "image"), io.read_array([sim], "noise_map"), io.read_array([mask], "mask"),
    [inversion.Mass(r.einstein_radius, r.axis_ratio, r.angle, (r.lens_centre_y, r.lens_centre_x))
     for r in truths.itertuples()],
    annuli["outer_radius"].to_numpy(), masking.usable(truths["flags"], annuli["flags"]),
    survey.psf_kernel(), survey.pixel_scale, relations, p.settings,
)  # fmt: skip
elapsed = time.perf_counter() - start
log.info("%d lenses in %.1f s (%.2f s/lens)", len(truths), elapsed, elapsed / max(len(truths), 1))
index = truths["index"].to_numpy()[result["params"]["lens_row"].astype(int)]
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance("trainingset", config.digest(p.settings), p.seed, survey.as_dict(), shard=attrs["shard"]),
    arrays={**result["arrays"], "index": index},
    params={**result["params"], "einstein_radius_true": truths["einstein_radius"].to_numpy()[result["params"]["lens_row"].astype(int)]},
    units={**trainingset.UNITS, "einstein_radius_true": "arcsec"},
    flags=result["flags"],
    flag_bits=trainingset.FLAG_BITS,
)
