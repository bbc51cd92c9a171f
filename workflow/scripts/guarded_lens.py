"""Rule adapter: one of M21's blind-modelling lenses through the guarded hybrid loop, judged by its truth.

The centre prior is about the true lens centre, as in M21's loop (the lens light's centre in practice).
"""

import json
import shutil
import time

import h5py

import numpy as np
import torch

from hybridlens import config, io, runlog
from hybridlens.fitting import guarded, hybrid, modelling
from hybridlens.flags import GuardedFlag
from hybridlens.simulation.survey import Survey

log = runlog.start(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, inputs = snakemake.params, snakemake.input
start = time.perf_counter()
index = int(snakemake.wildcards.lens)
settings = guarded.GuardSettings.from_config(p.settings)
with h5py.File(inputs.sim, "r") as h5:
    row = list(h5["index"][()]).index(index)
    image, noise_map = h5["image"][row].astype(float), h5["noise_map"][row].astype(float)
    truth = {name: float(h5["params"][name][row]) for name in h5["params"]}
    simulation_flags = int(h5["flags"][row])
survey = Survey.from_settings(json.loads(io.read_attrs(inputs.sim)["survey"]))
digest = config.digest(
    {
        "simulation": io.read_attrs(inputs.sim)["config_sha256"],
        "lens": index,
        "settings": p.settings,
        "networks": [io.read_attrs(path)["config_sha256"] for path in (inputs.bnn, inputs.classifier)],
        "relations": io.read_relations(inputs.relations),
        "seed": p.seed,
    }
)
if simulation_flags:
    result = guarded.GuardedResult([], None, None, GuardedFlag.UNUSABLE, "simulation flagged: not modelled")
else:
    networks = guarded.load_networks(
        inputs.bnn, inputs.classifier, inputs.relations, p.settings["classifier"], settings.mc_passes, p.seed + index
    )
    modelling.configure(p.scratch)
    result = guarded.model_lens(
        image,
        noise_map,
        survey.psf_kernel(),
        survey.pixel_scale,
        networks,
        settings,
        hybrid.RoundStore(p.progress, digest, log),
        log,
        p.seed + 1000 * index,
        centre=(truth["lens_centre_y"], truth["lens_centre_x"]),
    )
    shutil.rmtree(p.scratch, ignore_errors=True)
row = guarded.catalogue_row(f"lens-{index:05d}", result, time.perf_counter() - start)
log.info("lens %d (true theta_E %.3f): %s", index, truth["einstein_radius"], row)
columns = hybrid.truth_columns(
    result.records, truth, p.settings["class_ratio_ranges"], p.settings["hybrid_modelling"]["max_axis_ratio_error"]
)
columns["lens_index"] = np.full(len(result.records), float(index))
data = {"image": image, "noise_map": noise_map}
attrs = io.provenance("guarded_lens", digest, p.seed, survey.as_dict(), lens=index)
guarded.write_lens(snakemake.output[0], result, row, data, attrs, columns)
