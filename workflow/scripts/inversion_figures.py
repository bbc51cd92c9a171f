"""Rule adapter: M21 Fig 2 (U/C/O reconstructions) and Fig 7 (evidence along theta_E)."""

import h5py
import numpy as np

from hybridlens import io, plotting, runlog
from hybridlens.reconstruction import calibration, figures, inversion, masking, trainingset
from hybridlens.simulation.survey import Survey

log = runlog.start(snakemake.log[0])
p = snakemake.params
relations = io.read_relations(snakemake.input.relations)
with h5py.File(snakemake.input.sim) as h5:
    n_rows = h5["image"].shape[0]
lenses = [io.read_lens(snakemake.input.sim, snakemake.input.mask, row) for row in range(n_rows)]
lenses = [lens for lens in lenses if masking.usable(lens["simulation_flags"], lens["mask_flags"])]
lenses = lenses[: p.slice["n_lenses"]]
if not lenses:
    raise RuntimeError(f"{snakemake.input.sim}: no usable lens (every image flagged) for Figs 2 and 7")
survey = Survey.from_settings(lenses[0]["survey"])


def prepared(lens):
    t = lens["truth"]
    masked = inversion.MaskedLens(
        lens["image"], lens["noise_map"], lens["mask"], survey.psf_kernel(), survey.pixel_scale, p.settings["inversion"]
    )
    return masked, inversion.Mass.from_truth(t)


prepared_lenses = [prepared(lens) for lens in lenses]
masked, mass = prepared_lenses[0]
pairs = trainingset.lens_pairs(masked, mass, relations, p.settings, lenses[0]["annulus"]["outer_radius"])
fig, plotted = figures.reconstruction_panels(lenses[0]["image"], pairs, survey.pixel_scale, calibration.CLASSES)
summary = {
    "lens_index": lenses[0]["index"],
    "einstein_radius_true": mass.einstein_radius,
    **{
        calibration.CLASSES[pair.label]: {
            "einstein_radius": pair.einstein_radius,
            "log_evidence": pair.products.log_evidence,
            "chi_squared": pair.products.chi_squared,
            "coefficient": pair.products.coefficient,
        }
        for pair in pairs
    },
    "plotted": plotted,
}
plotting.save(fig, snakemake.output.fig2[0].removesuffix(".json"), p.formats, summary)

ratios = np.linspace(p.slice["min_ratio"], p.slice["max_ratio"], p.slice["points"])
slices, summary = [], {"ratios": ratios.tolist(), "lenses": []}
for lens, (masked, mass) in zip(lenses, prepared_lenses):
    coefficient, _ = masked.best_coefficient(mass)
    evidence = np.array(
        [masked.log_evidence(mass.with_einstein_radius(r * mass.einstein_radius), coefficient) for r in ratios]
    )
    peaks = {}
    for name in calibration.CLASSES:
        low, high = p.settings["class_ratio_ranges"][name]
        inside = (ratios >= low) & (ratios <= high) & np.isfinite(evidence)
        if inside.any():
            peaks[name] = float(ratios[inside][np.argmax(evidence[inside])])
    slices.append((ratios, evidence, f"lens {lens['index']}: θE={mass.einstein_radius:.2f}″"))
    summary["lenses"].append(
        {
            "index": lens["index"],
            "einstein_radius_true": mass.einstein_radius,
            "coefficient": coefficient,
            "log_evidence": evidence.tolist(),
            "best_ratio_per_class": peaks,
        }
    )
    log.info("lens %d: best ratio per class %s", lens["index"], peaks)
fig, summary["plotted"] = figures.evidence_slices(
    slices, {k: tuple(v) for k, v in p.settings["class_ratio_ranges"].items()}
)
plotting.save(fig, snakemake.output.fig7[0].removesuffix(".json"), p.formats, summary)
