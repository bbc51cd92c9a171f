"""Rule adapter: M21's blind fit of one lens (everything uniform, theta_E over the annulus)."""

import shutil

from hybridlens import config, io, runlog
from hybridlens.fitting import hybrid, modelling
from hybridlens.reconstruction import masking

log = runlog.start(snakemake.log[0])
p = snakemake.params
index = int(snakemake.wildcards.lens)
lens = io.read_lens(snakemake.input.sim, snakemake.input.mask, index % p.settings["shard_size"])
digest = config.digest(
    {
        "modelling": p.modelling,
        "inversion": p.inversion,
        "trainingset": p.trainingset,
        "simulation": io.read_attrs(snakemake.input.sim)["config_sha256"],
        "lens": index,
    }
)
attrs = io.provenance("blind_fit", digest, p.seed, lens["survey"], lens=index)
if not masking.usable(lens["simulation_flags"], lens["mask_flags"]):
    log.warning("lens %d unusable (simulation or mask flagged): not fitted", index)
    record = hybrid.unusable_round()
else:
    problem = hybrid.lens_problem(
        lens, p.inversion, p.modelling, p.trainingset, p.class_ratio_ranges, p.seed + 1000 * index
    )
    modelling.configure(p.scratch)
    try:
        row, products = hybrid.fit_round(problem, problem.blind_priors, problem.search, 0)
        record = hybrid.RoundRecord(row, "blind fit", products)
        log.info(
            "blind fit: theta_E %.3f (true %.3f), %d calls in %.0f s%s",
            row["median_einstein_radius"],
            lens["truth"]["einstein_radius"],
            row["n_calls"],
            row["seconds"],
            ", CALL CAP HIT" if row["hit_call_cap"] else "",
        )
    except Exception as error:  # flag this lens; the others go on
        log.exception("blind fit failed")
        record = hybrid.failed_round(0, problem.blind_priors, error)
    shutil.rmtree(p.scratch, ignore_errors=True)
hybrid.write_rounds(snakemake.output[0], [record], attrs)
