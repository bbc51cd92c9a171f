"""Rule adapter: guarded hybrid vs M21's blind-then-rerun loop vs PyAL + BNN(1 sigma) on M21's blind lenses."""

import numpy as np
import pandas as pd

from hybridlens import config, io, plotting, runlog
from hybridlens.fitting import figures, guarded, hybrid

log = runlog.start(snakemake.log[0])
p = snakemake.params
guarded_table = io.read_params(snakemake.input.guarded)
tables = {"m21_loop": io.read_params(snakemake.input.m21), "bnn_gaussian": guarded_table, "guarded": guarded_table}
reruns = {"m21_loop": p.m21_reruns, "bnn_gaussian": 0, "guarded": p.guarded_reruns}
summary = guarded.evaluate(tables, reruns, p.class_ratio_ranges)
summary["m21_reference"] = hybrid.M21_PUBLISHED_ROUNDS
rows = [
    {
        "approach": guarded.APPROACH_LABELS[name],
        "lenses": s["n_lenses"],
        "modelled": s["n_modelled"],
        "unphysical": s["unphysical"],
        "unphysical_fraction": s["unphysical_fraction"],
        "right_theta_q_centre": s["correct_theta_centre_q"],  # theta_E 5 %, q 0.1, centre 0.1" of the truth
        "change_vs_m21_loop": s["unphysical_change_vs_m21_loop"],
        "median_abs_frac_error_theta_E": s["fractional_error_einstein_radius"].get("median", np.nan),
        "median_abs_frac_error_q": s["fractional_error_axis_ratio"].get("median", np.nan),
        "median_abs_error_phi_deg": s["absolute_error_angle"].get("median", np.nan),
        "fits_per_lens": s["fits_per_lens"].get("mean", np.nan),
        "seconds_per_lens": s["seconds_per_lens"].get("mean", np.nan),
        "call_cap_hits": s["call_cap_hits"],
        "flagged_for_inspection": s["flagged_for_inspection"],
    }
    for name, s in summary.items()
    if name in guarded.APPROACHES
]
table = pd.DataFrame(rows)
table.to_csv(snakemake.output.csv, index=False)
with open(snakemake.output.markdown, "w") as handle:
    handle.write(guarded.markdown_table(table, hybrid.M21_PUBLISHED_ROUNDS["reduction_of_unphysical"]))
io.write_shard(
    snakemake.output.table,
    attrs=io.provenance("guarded_evaluation", config.digest(p.class_ratio_ranges), p.seed),
    params={name: table[name].to_numpy(float) for name in table if name != "approach"},
    groups={"text": {"approach": table["approach"].to_numpy().astype("S")}},
)
approaches = {k: v for k, v in summary.items() if k in guarded.APPROACHES}
fig, plotted = figures.guarded_evaluation(approaches, guarded.APPROACH_LABELS)
plotting.save(fig, snakemake.output.figure[0].removesuffix(".json"), p.formats, {**summary, "plotted": plotted})
log.info("\n%s", table.to_string())
log.info("classifier on both loops' real fits: %s", summary["classifier_on_real_fits"])
