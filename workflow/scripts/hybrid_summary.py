"""Rule adapter: the rounds of every lens -> counts per round, the CNN and the loop's judge on real fits, M21 Fig 13."""

import numpy as np

from hybridlens import config, io, plotting, runlog
from hybridlens.fitting import figures, hybrid
from hybridlens.flags import HybridFlag
from hybridlens.reconstruction import calibration, positions

log = runlog.start(snakemake.log[0])
p = snakemake.params
table = io.read_params(snakemake.input.lenses)
settings = positions.PositionSettings.from_config(p.positions)
if settings is not None:  # the guarded loop's position check, run after the fact on M21's fits
    peaks = {
        index: hybrid.lens_peaks(io.read_lens(sim, mask, index % p.settings["shard_size"]), settings)
        for index, (sim, mask) in enumerate(zip(snakemake.input.sims, snakemake.input.masks))
    }
    table = table.assign(**hybrid.traced_columns(table, peaks, settings))
summary = hybrid.summarise(table, p.settings["reruns"])
log.info("per round: %s", {name: r["cnn"] for name, r in summary["rounds"].items()})
log.info("classifier on real fits: %s", summary["classifier_on_fits"])
log.info("the guarded loop's judge on the same fits: %s", summary.get("judge_on_fits", "off (model_lenses.positions)"))
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
