"""Rule adapter: P21 Fig 1 gallery of the training simulations with their masks."""

import json
from pathlib import Path

from hybridlens import io, plotting, runlog
from hybridlens.flags import MaskFlag
from hybridlens.simulation import figures

runlog.start(snakemake.log[0])
datasets = {}
for model in snakemake.params.models:
    sims = [p for p in snakemake.input.sims if Path(p).parent.name == f"training_{model}"]
    masks = [p for p in snakemake.input.masks if Path(p).parent.name == f"training_{model}"]
    rejections = {}
    for path in sims:
        for reason, count in json.loads(io.read_attrs(path)["rejections"]).items():
            rejections[reason] = rejections.get(reason, 0) + count
    head = sims[: snakemake.params.gallery_shards]
    datasets[model] = (io.read_params(sims), io.read_array(head, "image"), io.read_params(masks), rejections)
fig, summary = figures.training_gallery(
    datasets,
    snakemake.params.n,
    json.loads(io.read_attrs(snakemake.input.sims[0])["survey"])["pixel_scale"],
    MaskFlag.meanings(),
)
plotting.save(
    fig, snakemake.output[0].removesuffix(".json"), [o.rsplit(".", 1)[1] for o in snakemake.output[1:]], summary
)
