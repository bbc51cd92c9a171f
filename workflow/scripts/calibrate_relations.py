"""Rule adapter: fit theta_U, theta_O relations to the calibration fits; M21 Figs 4-6."""

import numpy as np

from hybridlens import calibration, config, figures, io, runlog

log = runlog.start(snakemake.log[0])
table = io.read_params(list(snakemake.input))
table = table[table["flags"] == 0].reset_index(drop=True)
lines = calibration.relations(table)
log.info("relations: %s", lines)
io.write_shard(
    snakemake.output.relations,
    attrs=io.provenance("calibrate_relations", config.digest(snakemake.params.settings), snakemake.params.seed),
    params={key: np.asarray(table[key]) for key in table.columns},
    groups={name: {k: np.asarray(v) for k, v in line.items()} for name, line in lines.items()},
)
formats = snakemake.params.formats
summary = {
    "ours": lines,
    "m21_reference": calibration.M21_REFERENCE,
    "n_lenses": int(table["lens_index"].nunique()),
    "mean_fractional_error": {
        name: float(np.mean(rows["ml_einstein_radius"] / rows["truth_einstein_radius"] - 1))
        for name, rows in ((n, table[table["label"] == k]) for k, n in enumerate(calibration.CLASSES))
    },
    "fit_seconds_median": float(np.median(table["seconds"])) if len(table) else float("nan"),
    "fit_samples_median": float(np.median(table["n_calls"])) if len(table) else float("nan"),
}
fig = figures.calibration_scatter(table, "einstein_radius", calibration.CLASSES, lines, calibration.M21_REFERENCE, "(arcsec)")
figures.save(fig, snakemake.output.figures[0].removesuffix(".json"), formats, summary)
for column, outputs, unit in (("axis_ratio", snakemake.output.q, ""), ("angle", snakemake.output.phi, "(deg)")):
    fig = figures.calibration_scatter(table, column, calibration.CLASSES, unit=unit)
    figures.save(fig, outputs[0].rsplit(".", 1)[0], formats, None)
