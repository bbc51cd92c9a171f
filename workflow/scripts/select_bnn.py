"""Rule adapter: pick the dropout rate whose validation coverage is closest to Gaussian (P21 Fig 4)."""

import json

from hybridlens import config, io, plotting, runlog
from hybridlens.networks import bnn, figures

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
summary = {
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
    ),
)
