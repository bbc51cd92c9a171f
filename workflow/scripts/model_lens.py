"""Rule adapter: one user's FITS cutout through the guarded hybrid loop; HDF5 of every round + a one-page PNG.

The lens's account (reading, mask, BNN, each round's priors and result, the classifier's
call and the rule that chose the next step, the end) goes to its log as it happens, to
a progress line on a terminal, and into its HDF5 and page.
"""

import shutil
import time
from dataclasses import asdict, replace

import torch

from hybridlens import config, io, plotting, runlog
from hybridlens.fitting import guarded, hybrid, modelling
from hybridlens.flags import GuardedFlag
from hybridlens.own_lenses import cutouts, figures, lens_light
from hybridlens.simulation.survey import Survey

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, inputs = snakemake.params, snakemake.input
start = time.perf_counter()
spec = cutouts.CutoutSpec(**p.spec)
account = runlog.Account(log, spec.name)
settings = guarded.GuardSettings.from_config(p.settings)
survey = Survey.from_settings(p.survey)
digest = config.digest(
    {
        "spec": asdict(spec),
        "input": config.file_digest(spec.path),
        "settings": p.settings,
        "networks": [io.read_attrs(path)["config_sha256"] for path in (inputs.bnn, inputs.classifier)],
        "relations": io.read_relations(inputs.relations),
        "seed": p.seed,
    }
)
attrs = io.provenance("model_lens", digest, p.seed, survey.as_dict(), name=spec.name, source_file=spec.path)
account.say("input", spec.path)
prepared = light = None
try:
    cutout = cutouts.read_cutout(spec, survey, p.settings["model_lenses"]["tolerances"])
except cutouts.CutoutError as error:  # refused input: flagged in the catalogue, the other lenses go on
    account.say("refused", str(error))
    cutout, result = None, guarded.GuardedResult([], None, None, GuardedFlag.BAD_INPUT, f"input refused: {error}")
else:
    for note in cutout.notes:
        account.say("read", note)
    prepared = cutouts.prepare(
        cutout, spec, lens_light.LightSettings.from_config(p.settings["model_lenses"]["lens_light_model"])
    )
    for note in prepared.notes:
        account.say("prepare", note)
    account.say("centre", cutouts.centre_text(prepared, spec))
    light = prepared.light if prepared.light is not None and prepared.light.found else None  # subtracted
    networks = guarded.load_networks(
        inputs.bnn, inputs.classifier, inputs.relations, p.settings["classifier"], settings.mc_passes, p.seed
    )
    modelling.configure(p.scratch)
    result = guarded.model_lens(
        prepared.image,
        cutout.noise_map,
        cutout.psf_kernel,
        cutout.pixel_scale,
        networks,
        settings,
        hybrid.RoundStore(p.progress, digest, account),
        account,
        p.seed,
        centre=prepared.centre,
        einstein_radius_range=spec.einstein_radius_range,
        known=cutouts.known_prediction(spec),
        mask_centre=prepared.mask_centre,
        light=light,
        centre_uncertain=prepared.centre_uncertain,
    )
    shutil.rmtree(p.scratch, ignore_errors=True)
row = guarded.catalogue_row(spec.name, result, time.perf_counter() - start, cutout and cutout.position_angle)
row["notes"] = "; ".join(cutout.notes + prepared.notes) if cutout else ""
if cutout is not None:
    row["centre_source"] = prepared.centre_source
    row.update(prepared.light.row() if prepared.light else {})
account.say("end", guarded.end_text(row))
account.close()
data = {} if cutout is None else {"image": cutout.image, "noise_map": cutout.noise_map, "psf_kernel": cutout.psf_kernel}
if light is not None:
    data["lens_light"], data["lens_light_shapes"] = light.image, light.shapes()
if cutout is not None:
    attrs["pixel_scale"] = cutout.pixel_scale
guarded.write_lens(snakemake.output.h5, result, row, data, {**attrs, "account": "\n".join(account.lines)})
final = guarded.final_round(result.records)
joint = final is not None and final.row.get("joint_light", 0.0) == 1.0
# what the final round modelled: the cutout less the lens light, or with it where the light was fitted jointly
shown = cutout if cutout is None or joint else replace(cutout, image=prepared.image)
fig, plotted = figures.lens_page(spec.name, shown, result, row, settings.source_extent, account.lines)
plotting.save(fig, snakemake.output.page.removesuffix(".png"), ["png"], {"plotted": plotted})
