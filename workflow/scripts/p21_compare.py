"""Rule adapter: P21 Tables 1-4 (68 % intervals per method and set), error distributions, timing, doubles."""

import json
from pathlib import Path

from hybridlens import config, io, plotting, runlog, vocabulary
from hybridlens.analysis import comparison, figures

log = runlog.start(snakemake.log[0])
p = snakemake.params


def in_set(paths, testset, method=""):
    """The paths of `testset` (of `method`'s fits when given), in their input order."""
    return [path for path in paths if f"{method}/p21_{testset}/" in path]


result = comparison.compare(
    p.sets,
    {testset: io.read_params(in_set(snakemake.input.sims, testset)) for testset in p.sets},
    {testset: io.read_params(in_set(snakemake.input.predictions, testset)) for testset in p.sets},
    {
        testset: {
            method: io.read_params(sorted(in_set(snakemake.input.fits, testset, f"/{method}")))
            for method in vocabulary.P21_METHODS
        }
        for testset in p.sets
    },
)
for testset, timing in result.timing_by_set.items():
    log.info("%s: %s", testset, json.dumps(timing))
table = result.table()
table.to_csv(snakemake.output.csv, index=False)
Path(snakemake.output.markdown).write_text(result.markdown(p.n_images))
summary = result.summary(p.n_images)
fig, plotted = figures.p21_error_distributions(
    result.errors_by_set, ("einstein_radius", "angle", "axis_ratio"), vocabulary.P21_ESTIMATORS
)
plotting.save(fig, snakemake.output.errors[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
fig, plotted = figures.p21_timing(result.seconds_by_method)
plotting.save(
    fig, snakemake.output.timing[0].removesuffix(".json"), p.formats, {**result.timing_summary(), "plotted": plotted}
)
io.write_shard(
    snakemake.output.table,
    attrs=io.provenance(
        "p21_compare",
        config.digest({"sets": list(p.sets), "n_images": p.n_images}),
        0,
        sets=json.dumps(list(p.sets)),
        methods=json.dumps(list(vocabulary.P21_ESTIMATORS)),
    ),
    params={
        "testset_index": table["testset"].map(list(p.sets).index).to_numpy(float),
        "method_index": table["method"].map(list(vocabulary.P21_ESTIMATORS).index).to_numpy(float),
        **{column: table[column].to_numpy(float) for column in table if column not in ("testset", "method")},
    },
)
log.info("comparison: %s", json.dumps(summary["timing"]))
