"""Rule adapter: simulate one shard of a P21 test set and write it as HDF5."""

import json
import time

from hybridlens import config, io, runlog
from hybridlens.flags import SimulationFlag
from hybridlens.simulation import p21_testsets, simulate
from hybridlens.vocabulary import TESTSETS

log = runlog.start(snakemake.log[0])
p = snakemake.params
name = snakemake.wildcards.testset
indices = config.shard_indices(int(snakemake.wildcards.shard), p.settings)
stamps = {
    "stamps": io.read_array([snakemake.input.stamps], "stamps"),
    "half_light_radius": io.read_params([snakemake.input.stamps])["half_light_radius"].to_numpy(),
}
start = time.perf_counter()
result = p21_testsets.simulate_testset_shard(name, p.settings, p.survey, p.reference, p.seed, indices, stamps)
elapsed = time.perf_counter() - start
flags, rejections = result["flags"].tolist(), result["rejections"]
log.info("p21_%s: %d images in %.1f s; flags %s; rejections %s", name, len(indices), elapsed, flags, rejections)
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "simulate_p21_testset",
        config.digest({"settings": p.settings, "survey": p.survey, "reference": p.reference}),
        p.seed,
        p.survey,
        dataset=f"p21_{name}",
        testset=json.dumps(TESTSETS[name].__dict__),
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
