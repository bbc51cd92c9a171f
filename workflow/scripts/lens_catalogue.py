"""Rule adapter: every modelled lens's final row -> catalogue.{csv,h5} and a summary figure.

The lenses' COOLEST files are among its inputs so that a catalogue is never without them."""

import numpy as np
import pandas as pd

from hybridlens import config, io, plotting, runlog
from hybridlens.fitting import guarded
from hybridlens.flags import GuardedFlag, is_set
from hybridlens.own_lenses import figures

log = runlog.start(snakemake.log[0])
p = snakemake.params
catalogue = pd.DataFrame([guarded.read_catalogue_row(path) for path in snakemake.input.lenses])
catalogue["flag_meanings"] = [guarded.describe_flags(int(flags)) for flags in catalogue["flags"]]
catalogue.to_csv(snakemake.output.csv, index=False)
numeric = {name: catalogue[name].to_numpy(float) for name in catalogue if catalogue[name].dtype.kind in "fiu"}
text = {name: catalogue[name].astype(str).to_numpy().astype("S") for name in catalogue if name not in numeric}
io.write_shard(
    snakemake.output.h5,
    attrs=io.provenance("lens_catalogue", config.digest(p.settings), p.seed, n_lenses=len(catalogue)),
    params={name: values for name, values in numeric.items() if name != "flags"},
    groups={"text": text},
    flags=catalogue["flags"].to_numpy(np.uint8),
    flag_family=GuardedFlag,
)
fig, plotted = figures.catalogue_summary(catalogue)
plotting.save(fig, snakemake.output.figure.removesuffix(".png"), ["png"], {"plotted": plotted})
failed = catalogue[is_set(catalogue["flags"], GuardedFlag.FAILED)]
log.info("%d lenses, %d not modelled: %s", len(catalogue), len(failed), dict(zip(failed["name"], failed["reason"])))
