"""Rule adapter: where the training set's U / C / O rows sit (theta / theta_true) beside the relations."""

import numpy as np

from hybridlens import io, plotting, runlog
from hybridlens.reconstruction import calibration, figures
from hybridlens.analysis.evaluation import describe

log = runlog.start(snakemake.log[0])
table = io.read_params(list(snakemake.input.shards))
table = table[table["flags"] == 0]
relations = io.read_relations(snakemake.input.relations)
ratio = table["einstein_radius"] / table["einstein_radius_true"]
ratios = {name: ratio[table["label"] == k].to_numpy() for k, name in enumerate(calibration.CLASSES)}
theta_median = float(np.median(table["einstein_radius_true"])) if len(table) else 1.0
summary = {
    "ratio_to_truth": {name: describe(values) for name, values in ratios.items()},
    "relations": relations,
    "windows_from_class_range": [name for name in ("under", "over") if not calibration.is_reliable(relations[name])],
    "relations_at_median_theta": {
        "theta_e": theta_median,
        **{
            f"{who}_{name}": (line["slope"] * theta_median + line["intercept"]) / theta_median
            for who, lines in (("ours", relations), ("m21", calibration.M21_PUBLISHED_RELATIONS))
            for name, line in lines.items()
            if name != "correct"
        },
    },
}
log.info("theta / theta_true per class: %s", summary["ratio_to_truth"])
fig, summary["plotted"] = figures.class_ratio_histograms(
    ratios, relations, calibration.M21_PUBLISHED_RELATIONS, theta_median
)
plotting.save(fig, snakemake.output[0].removesuffix(".json"), snakemake.params.formats, summary)
