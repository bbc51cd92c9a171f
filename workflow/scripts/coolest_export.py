"""Rule adapter: one modelled lens's HDF5 -> its COOLEST template (JSON) and FITS files."""

from hybridlens import runlog
from hybridlens.own_lenses import coolest_export

log = runlog.start(snakemake.log[0])
path = coolest_export.export(
    snakemake.input[0], snakemake.output.json, snakemake.output.files, snakemake.params.inversion
)
log.info("wrote %s", path)
