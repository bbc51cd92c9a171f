"""Rule adapter: P21 Tables 1-4 (68 % intervals per method and set), error distributions, timing, doubles."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hybridlens import config, figures, io, runlog
from hybridlens.analysis import comparison

log = runlog.start(snakemake.log[0])
p = snakemake.params
parameters = comparison.PARAMETERS
rows, double_rows, errors_by_set, seconds_by_method, fits_by_method_all, timing_by_set = [], [], {}, {}, {}, {}
for testset in p.sets:
    sims = [path for path in snakemake.input.sims if f"/p21_{testset}/" in path]
    truth_table = io.read_params(sims)
    truth = {name: truth_table[name].to_numpy(float) for name in (*parameters, "is_double") if name in truth_table}
    predictions = io.read_params([path for path in snakemake.input.predictions if f"/p21_{testset}/" in path])
    estimates = {
        "bnn": comparison.method_estimates("bnn", None, {k: predictions[k].to_numpy(float) for k in predictions})
    }
    fits_by_method = {}
    for method in comparison.METHODS:
        paths = sorted(path for path in snakemake.input.fits if f"/{method}/p21_{testset}/" in path)
        table = io.read_params(paths)
        fits = {column: table[column].to_numpy(float) for column in table}
        fits["flags"] = table["flags"].to_numpy(int)
        fits_by_method[method] = fits
        fits_by_method_all.setdefault(method, []).append(fits)
        estimates[method] = comparison.method_estimates(method, fits, None)
        seconds_by_method.setdefault(method, []).extend(fits.get("seconds", []))
    rows += comparison.table_rows(testset, truth, estimates)
    doubles = truth.get("is_double", np.zeros(len(truth["einstein_radius"]))) == 1
    for label, subset in (("doubles", doubles), ("non_doubles", ~doubles)):
        for row in comparison.table_rows(testset, truth, estimates, subset):
            double_rows.append({**row, "images": label})
    errors_by_set[testset] = {
        method: {name: comparison.errors(name, values, truth[name]) for name, values in est.items() if name in truth}
        for method, est in estimates.items()
    }
    timing_by_set[testset] = comparison.timing(fits_by_method)
    log.info("%s: %s", testset, json.dumps(timing_by_set[testset]))

table = pd.DataFrame(rows)
table.to_csv(snakemake.output.csv, index=False)
reference = pd.DataFrame(
    [
        {"testset": testset, "method": method, **values}
        for testset, by_method in comparison.P21_REFERENCE["tables"].items()
        for method, values in by_method.items()
    ]
)
Path(snakemake.output.markdown).write_text(
    f"68 % intervals of prediction - truth (fractional for theta_E and q; degrees for phi), "
    f"{p.n_images} images per set\n\n"
    + table.to_markdown(index=False, floatfmt=".4f")
    + "\n\nP21 Tables 1-3 (1,000 images per set), for reference\n\n"
    + reference.to_markdown(index=False, floatfmt=".4f")
    + "\n"
)
merged = {
    method: {
        key: np.concatenate([f.get(key, np.full(len(f["flags"]), np.nan)) for f in parts])
        for key in ("seconds", "n_calls", "flags")
    }
    for method, parts in fits_by_method_all.items()
}
summary = {
    "tables": rows,
    "doubles": double_rows,
    "timing": comparison.timing(merged),
    "timing_by_set": timing_by_set,
    "error_ratios_to_blind": comparison.error_ratios(rows),
    "n_images_per_set": p.n_images,
    "p21_reference": comparison.P21_REFERENCE,
}
figures.save(
    figures.p21_error_distributions(errors_by_set, ("einstein_radius", "angle", "axis_ratio"), comparison.ALL_METHODS),
    snakemake.output.errors[0].removesuffix(".json"),
    p.formats,
    summary,
)
figures.save(
    figures.p21_timing(seconds_by_method),
    snakemake.output.timing[0].removesuffix(".json"),
    p.formats,
    {**summary["timing"], "by_set": timing_by_set, "p21_reference": comparison.P21_REFERENCE["speed_up_over_blind"]},
)
io.write_shard(
    snakemake.output.table,
    attrs=io.provenance(
        "p21_compare",
        config.digest({"sets": list(p.sets), "n_images": p.n_images}),
        0,
        sets=json.dumps(list(p.sets)),
        methods=json.dumps(list(comparison.ALL_METHODS)),
    ),
    params={
        "testset_index": table["testset"].map(list(p.sets).index).to_numpy(float),
        "method_index": table["method"].map(list(comparison.ALL_METHODS).index).to_numpy(float),
        **{column: table[column].to_numpy(float) for column in table if column not in ("testset", "method")},
    },
)
log.info("comparison: %s", json.dumps(summary["timing"]))
