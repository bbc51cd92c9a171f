"""Non-linear lens-model searches with PyAutoFit + Nautilus.

An SIE with a pixelised (Delaunay, constant-regularisation) source is fitted to
a `inversion.MaskedLens`; the Einstein-radius prior is the only thing that
differs between the M21 calibration fits (under / correct / over ranges), the
blind fits and the CNN-informed fits of later stages. PyAutoFit's on-disk output
goes to a scratch folder that the caller owns; what the pipeline keeps is the
returned dictionary, written to HDF5 by the rule.
"""

import time
from pathlib import Path

import autofit as af
import autolens as al
import numpy as np

AUTOLENS_CONFIG = Path(__file__).resolve().parents[3] / "config" / "autolens"


def configure(output_path):
    """Point PyAutoFit at hybridlens' own config and an output folder (never the cwd)."""
    Path(output_path).mkdir(parents=True, exist_ok=True)
    af.conf.instance.push(new_path=str(AUTOLENS_CONFIG), output_path=str(output_path))


def sie_model(einstein_radius_range, settings, n_mesh_points):
    """SIE + pixelised source; theta_E ~ U[range], other priors from `settings`."""
    mass = af.Model(al.mp.Isothermal)
    centre = settings["centre_range"]
    ell = settings["ell_comps_range"]
    mass.centre.centre_0 = af.UniformPrior(lower_limit=centre[0], upper_limit=centre[1])
    mass.centre.centre_1 = af.UniformPrior(lower_limit=centre[0], upper_limit=centre[1])
    mass.ell_comps.ell_comps_0 = af.UniformPrior(lower_limit=ell[0], upper_limit=ell[1])
    mass.ell_comps.ell_comps_1 = af.UniformPrior(lower_limit=ell[0], upper_limit=ell[1])
    mass.einstein_radius = af.UniformPrior(
        lower_limit=float(einstein_radius_range[0]), upper_limit=float(einstein_radius_range[1])
    )
    regularization = af.Model(al.reg.Constant)
    low, high = settings["log10_coefficient_range"]
    regularization.coefficient = af.LogUniformPrior(lower_limit=10.0**low, upper_limit=10.0**high)
    pixelization = af.Model(
        al.Pixelization, mesh=al.mesh.Delaunay(pixels=n_mesh_points), regularization=regularization
    )
    return af.Collection(
        galaxies=af.Collection(
            lens=af.Model(al.Galaxy, redshift=0.5, mass=mass),
            source=af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization),
        )
    )


def fit_sie(masked_lens, einstein_radius_range, settings, name, seed):
    """Run Nautilus on one lens; returns max-likelihood / median parameters and evidence."""
    model = sie_model(einstein_radius_range, settings, len(masked_lens.mesh_grid))
    analysis = al.AnalysisImaging(
        dataset=masked_lens.dataset,
        adapt_images=al.AdaptImages(galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": masked_lens.mesh_grid}),
        settings=masked_lens.solver,
        raise_inversion_positions_likelihood_exception=False,
        use_jax=False,
    )  # fmt: skip
    search = af.Nautilus(
        name=name, n_live=settings["n_live"], n_like_max=settings["max_calls"], number_of_cores=1,
        seed=int(seed), silence=True, verbose=False, iterations_per_full_update=10**9,
    )  # fmt: skip
    start = time.perf_counter()
    result = search.fit(model=model, analysis=analysis)
    seconds = time.perf_counter() - start
    samples = result.samples
    best = samples.max_log_likelihood()
    median = samples.median_pdf()
    return {
        **_sie_values(best, "ml_"),
        **_sie_values(median, "median_"),
        "log_evidence": float(samples.log_evidence),
        "max_log_likelihood": float(np.max(samples.log_likelihood_list)),
        "n_calls": float(len(samples.log_likelihood_list)),
        "seconds": float(seconds),
    }


def _sie_values(instance, prefix):
    mass = instance.galaxies.lens.mass
    q, angle = al.convert.axis_ratio_and_angle_from(ell_comps=mass.ell_comps)
    return {
        f"{prefix}einstein_radius": float(mass.einstein_radius),
        f"{prefix}axis_ratio": float(q),
        f"{prefix}angle": float(angle) % 180.0,
        f"{prefix}centre_y": float(mass.centre[0]),
        f"{prefix}centre_x": float(mass.centre[1]),
        f"{prefix}coefficient": float(instance.galaxies.source.pixelization.regularization.coefficient),
    }
