"""Rule adapter: every lens's rounds -> per-round counts (CNN and truth), the CNN on real fits, M21 Fig 13."""

import numpy as np

from hybridlens import config, io, plotting, runlog
from hybridlens.fitting import figures, hybrid
from hybridlens.flags import HybridFlag
from hybridlens.reconstruction import calibration

log = runlog.start(snakemake.log[0])
p = snakemake.params
table = io.read_params(snakemake.input)
summary = hybrid.summarise(table, p.settings["reruns"])
log.info("per round: %s", {name: r["cnn"] for name, r in summary["rounds"].items()})
log.info("classifier on real fits: %s", summary["classifier_on_fits"])
fig, plotted = figures.hybrid_rounds(
    table, hybrid.round_names(p.settings["reruns"]), hybrid.state_after, calibration.CLASSES, hybrid.TRUTH_CLASSES
)
plotting.save(fig, snakemake.output.figure[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
io.write_shard(
    snakemake.output.summary,
    attrs=io.provenance("hybrid_summary", config.digest(p.settings), p.seed),
    params={name: np.asarray(table[name], float) for name in table.columns if name != "flags"},
    flags=table["flags"].to_numpy(),
    flag_family=HybridFlag,
)
