"""Rule adapter: full-analysis U/C/O reconstructions of one real-morphology lens."""

import shutil

import numpy as np

from hybridlens import config, io, runlog
from hybridlens.fitting import modelling
from hybridlens.flags import TrainingPairFlag
from hybridlens.reconstruction import calibration, inversion, masking, trainingset

log = runlog.start(snakemake.log[0])
p = snakemake.params
index = int(snakemake.wildcards.lens)
lens = io.read_lens(snakemake.input.sim, snakemake.input.mask, index % p.shard_size)
shape = tuple(p.settings["source_shape"])
pairs = [(0, trainingset.Pair(label, None, (np.nan, np.nan), None), TrainingPairFlag.NO_MASK) for label in range(3)]
results = []
if masking.usable(lens["simulation_flags"], lens["mask_flags"]):
    modelling.configure(p.scratch)
    masked = inversion.MaskedLens.from_lens(lens, p.settings["inversion"])
    truth = inversion.Mass.from_truth(lens["truth"])
    results, products = calibration.full_analysis_pairs(
        masked,
        truth,
        p.calibration,
        p.modelling,
        p.seed + index,
        shape,
        p.settings["source_extent"] * lens["annulus"]["outer_radius"],
    )
    shutil.rmtree(p.scratch, ignore_errors=True)
    pairs = [
        (
            0,
            trainingset.Pair(
                label, result.mass(), calibration.class_range(name, truth.einstein_radius, p.calibration), product
            ),
            0,
        )
        for (label, name), result, product in zip(enumerate(calibration.CLASSES), results, products)
    ]
    log.info(
        "theta_E per class %s (true %.3f); call cap hit: %s",
        [round(r.max_likelihood["einstein_radius"], 3) for r in results],
        truth.einstein_radius,
        [r.hit_call_cap for r in results],
    )
result = trainingset.collate(pairs, shape, lens["image"].shape)
fit_rows = [r.row() for r in results]
fit_columns = {
    key: np.array([row[key] for row in fit_rows]) if fit_rows else np.full(3, np.nan)
    for key in ("n_calls", "seconds", "hit_call_cap")
}
digest = config.digest({"calibration": p.calibration, "modelling": p.modelling})
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance("complex_pairs", digest, p.seed, lens["survey"], lens=index),
    arrays={**result["arrays"], "index": np.full(3, index)},
    params={
        **result["params"],
        **fit_columns,
        "einstein_radius_true": np.full(3, lens["truth"]["einstein_radius"]),
    },
    units={**trainingset.UNITS, "einstein_radius_true": "arcsec", "seconds": "s"},
    flags=result["flags"],
    flag_family=TrainingPairFlag,
)
