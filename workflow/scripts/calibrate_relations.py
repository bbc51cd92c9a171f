"""Rule adapter: fit theta_U, theta_O relations to the calibration fits; M21 Figs 4-6."""

import json

import numpy as np

from hybridlens import config, io, plotting, runlog
from hybridlens.flags import CalibrationFlag
from hybridlens.reconstruction import calibration, figures

log = runlog.start(snakemake.log[0])
p = snakemake.params
table = io.read_params(list(snakemake.input))
table = table[table["flags"] == 0].reset_index(drop=True)
lines = calibration.relations(table, p.settings["max_relative_slope_error"])
log.info("relations: %s", lines)
summary = calibration.summary(table, lines)
errors = calibration.fit_errors(table)
log.info("calibration fits' errors besides theta_E: %s", errors)
if summary["call_cap_hits"]:
    log.warning(
        "%d of %d fits stopped at the call cap: %s", summary["call_cap_hits"], len(table), summary["call_cap_hit_fits"]
    )
io.write_shard(
    snakemake.output.relations,
    attrs=io.provenance(
        "calibrate_relations",
        config.digest({"calibration": p.settings, "modelling": p.modelling}),
        p.seed,
        reliable=json.dumps({name: line["reliable"] for name, line in lines.items()}),
        call_cap_hits=summary["call_cap_hits"],
    ),
    params={key: np.asarray(table[key]) for key in table.columns},
    groups={
        **{name: {k: np.asarray(v) for k, v in line.items()} for name, line in lines.items()},
        "fit_errors": {k: np.asarray(v) for k, v in errors.items()},
    },
    flag_family=CalibrationFlag,
)
fig, plotted = figures.calibration_scatter(
    table, "einstein_radius", calibration.CLASSES, lines, calibration.M21_PUBLISHED_RELATIONS, "(arcsec)"
)
plotting.save(
    fig,
    snakemake.output.figures[0].removesuffix(".json"),
    p.formats,
    {**summary, "fit_errors": errors, "plotted": plotted},
)
for column, outputs, unit in (("axis_ratio", snakemake.output.q, ""), ("angle", snakemake.output.phi, "(deg)")):
    fig, plotted = figures.calibration_scatter(table, column, calibration.CLASSES, unit=unit)
    plotting.save(fig, outputs[0].removesuffix(".json"), p.formats, {"plotted": plotted})
