"""Rule adapter: pick the dropout rate whose validation coverage is closest to Gaussian (P21 Fig 4), scale its sigma.

The chosen rate's sigma is then scaled per parameter so that its validation
1-sigma coverage is 68.3 % (`bnn.sigma_scale`); the test split judges the result.
"""

import json

from hybridlens import config, io, plotting, runlog
from hybridlens.networks import bnn, bnn_training, figures

log = runlog.start(snakemake.log[0])
p = snakemake.params
rates = p.settings["dropout_rates"]
validation = [json.loads(io.read_attrs(path)["validation"]) for path in snakemake.input]
coverages = [{k: [v["coverage"][f"{k}sigma"] for v in summary.values()] for k in (1, 2, 3)} for summary in validation]
best, rate, distances = bnn.choose_dropout(rates, coverages)
log.info(
    "%s: coverage distance per rate %s -> dropout %.3f",
    snakemake.wildcards.mass_model,
    dict(zip(rates, distances)),
    rate,
)
predictions, truth = bnn_training.calibration(snakemake.input[best])
factors = bnn.sigma_scale(predictions, truth)
calibrated = bnn.evaluation_summary(bnn.rescaled(predictions, factors), truth, {name: 0.0 for name in truth})
log.info("sigma scale on %d validation lenses: %s", len(next(iter(truth.values()))), factors)
summary = {
    "sigma_scale": factors,
    "validation_calibrated": {name: value["coverage"] for name, value in calibrated.items()},
    "dropout_rates": rates,
    "distance_to_gaussian": distances,
    "chosen_rate": rate,
    "chosen_index": best,
    "validation": dict(zip(map(str, rates), validation)),
    "gaussian": bnn.GAUSSIAN_COVERAGE,
}
fig, summary["plotted"] = figures.coverage_sweep(rates, validation, bnn.GAUSSIAN_COVERAGE, rate)
plotting.save(fig, snakemake.output.figure[0].removesuffix(".json"), p.formats, summary)
io.write_shard(
    snakemake.output.chosen,
    attrs=io.provenance(
        "select_bnn",
        config.digest(p.settings),
        p.seed,
        mass_model=snakemake.wildcards.mass_model,
        dropout=rate,
        rate_index=best,
        model=str(snakemake.input[best]),
        sigma_scale=json.dumps(factors),
    ),
)
