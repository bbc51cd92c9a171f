"""Rule adapter: fit the M21 annular mask to every image of one shard."""

import json

from hybridlens import config, io, runlog
from hybridlens.flags import MaskFlag, is_set
from hybridlens.reconstruction import masking

log = runlog.start(snakemake.log[0])
source = snakemake.input[0]
attrs = io.read_attrs(source)
survey = json.loads(attrs["survey"])
images = io.read_array([source], "image")
result = masking.mask_shard(
    images,
    survey["pixel_scale"],
    snakemake.params.settings,
    input_flags=io.read_array([source], "flags"),
    model_images=io.read_array([source], "model_image"),
)
log.info("%d images, %d without a mask", len(images), int(is_set(result["flags"], MaskFlag.NO_MASK).sum()))
io.write_shard(
    snakemake.output[0],
    attrs=io.provenance(
        "mask",
        config.digest(snakemake.params.settings),
        snakemake.params.seed,
        survey,
        dataset=attrs["dataset"],
        shard=attrs["shard"],
        input_config_sha256=attrs["config_sha256"],
    ),
    arrays={"mask": result["mask"], "index": io.read_array([source], "index")},
    params=result["params"],
    units=masking.UNITS,
    flags=result["flags"],
    flag_family=MaskFlag,
)
