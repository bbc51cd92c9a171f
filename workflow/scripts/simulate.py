"""Rule adapter: simulate one shard of a data set and write it as HDF5."""

import json
import time

from hybridlens import config, io, runlog
from hybridlens.flags import SimulationFlag
from hybridlens.simulation import simulate

log = runlog.start(snakemake.log[0])
p = snakemake.params
dataset = snakemake.output[0].split("/")[-2]
indices = config.shard_indices(int(snakemake.wildcards.shard), p.settings)
start = time.perf_counter()
stamps = None
if p.kind == "hudf":
    stamps = {
        "stamps": io.read_array([snakemake.input.stamps], "stamps"),
        "half_light_radius": io.read_params([snakemake.input.stamps])["half_light_radius"].to_numpy(),
    }
result = simulate.simulate_shard(
    p.kind, p.settings, p.survey, p.reference, p.seed, dataset, indices, snakemake.wildcards.get("mass_model"), stamps
)
elapsed = time.perf_counter() - start
log.info(
    "%s: %d images in %.2f s (%.3f s/image); rejections %s",
    dataset,
    len(indices),
    elapsed,
    elapsed / max(len(indices), 1),
    result["rejections"],
)
settings_digest = config.digest({"settings": p.settings, "survey": p.survey, "reference": p.reference})
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        f"simulate_{p.kind}",
        settings_digest,
        p.seed,
        p.survey,
        dataset=dataset,
        shard=int(snakemake.wildcards.shard),
        rejections=json.dumps(result["rejections"], sort_keys=True),
    ),
    arrays={**result["arrays"], "index": result["index"]},
    params=result["params"],
    units=simulate.PARAM_UNITS,
    groups={"components": result["components"]},
    flags=result["flags"],
    flag_family=SimulationFlag,
)
