"""Rule adapter: segment the bundled Hubble Deep Field image into unit-flux galaxy stamps."""

import numpy as np

from hybridlens import config, io, runlog
from hybridlens.simulation import hudf

log = runlog.start(snakemake.log[0])
p = snakemake.params
stamps, info = hudf.galaxy_stamps(hudf.luminance(), p.settings)
size = max(stamp.shape[0] for stamp in stamps)
padded = np.zeros((len(stamps), size, size), np.float32)
for i, stamp in enumerate(stamps):
    offset = (size - stamp.shape[0]) // 2
    padded[i, offset : offset + stamp.shape[0], offset : offset + stamp.shape[1]] = stamp
log.info("%d stamps, padded to %d px", len(stamps), size)
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance("hudf_stamps", config.digest(p.settings), p.seed, origin="skimage.data.hubble_deep_field"),
    arrays={"stamps": padded},
    params={
        "half_light_radius": np.array([hudf.half_light_radius(s) for s in padded]),
        **{key: np.array([row[key] for row in info], float) for key in info[0]},
    },
    units={
        "half_light_radius": "stamp pixels",
        "centre_row": "HDF pixel",
        "centre_col": "HDF pixel",
        "area": "HDF pixels",
        "size": "HDF pixels",
    },
)
