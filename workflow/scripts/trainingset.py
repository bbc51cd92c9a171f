"""Rule adapter: U/C/O (source reconstruction, residual) pairs for one shard of lenses."""

import json
import time

from hybridlens import config, io, runlog
from hybridlens.flags import TrainingPairFlag
from hybridlens.reconstruction import calibration, trainingset

log = runlog.start(snakemake.log[0])
p = snakemake.params
sim, mask = snakemake.input.sim, snakemake.input.mask
attrs = io.read_attrs(sim)
relations = io.read_relations(snakemake.input.relations)
fallback = [name for name in ("under", "over") if not calibration.is_reliable(relations[name])]
if fallback:
    log.warning("relations %s unreliable: their windows are the whole class ranges", fallback)
errors = trainingset.perturbation_errors(p.settings["perturbation"])
log.info("models perturbed besides theta_E by 1-sigma %s", errors)
start = time.perf_counter()
result, truths, survey = trainingset.shard_pairs(sim, mask, relations, p.settings, errors=errors, seed=p.seed)
elapsed = time.perf_counter() - start
log.info("%d lenses in %.1f s (%.2f s/lens)", len(truths), elapsed, elapsed / max(len(truths), 1))
rows = result["params"]["lens_row"].astype(int)
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "trainingset",
        config.digest(p.settings),
        p.seed,
        survey.as_dict(),
        shard=attrs["shard"],
        windows_from_class_range=json.dumps(fallback),
        perturbations=json.dumps(errors),
    ),
    arrays={**result["arrays"], "index": truths["index"].to_numpy()[rows]},
    params={**result["params"], "einstein_radius_true": truths["einstein_radius"].to_numpy()[rows]},
    units={**trainingset.UNITS, "einstein_radius_true": "arcsec"},
    flags=result["flags"],
    flag_family=TrainingPairFlag,
)
