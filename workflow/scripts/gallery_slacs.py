"""Rule adapter: M21 Fig 3 gallery of the SLACS-like simulations with their masks."""

import json

from hybridlens import io, plotting, runlog
from hybridlens.flags import MaskFlag
from hybridlens.simulation import figures

runlog.start(snakemake.log[0])
sims, masks = list(snakemake.input.sims), list(snakemake.input.masks)
head = sims[: snakemake.params.gallery_shards]
components = {
    name: io.read_array(sims, f"components/{name}") for name in ("sersic_index", "effective_radius", "intensity")
}
fig, summary = figures.slacs_gallery(
    (io.read_params(sims), io.read_array(head, "image"), components),
    io.read_params(masks),
    snakemake.params.n,
    json.loads(io.read_attrs(sims[0])["survey"])["pixel_scale"],
    MaskFlag.meanings(),
)
plotting.save(
    fig, snakemake.output[0].removesuffix(".json"), [o.rsplit(".", 1)[1] for o in snakemake.output[1:]], summary
)
