"""Time the theta_E scan of the fast training set against plain PyAutoLens.

Baseline: what a script would do with PyAutoLens alone, a fresh masked
`al.Imaging`, image-plane mesh and `al.FitImaging` per theta_E value (default,
non-sparse path). Ours: `inversion.MaskedLens` built once (masked dataset, numba
sparse PSF operator, mesh grid), then one fit per theta_E; and the training set's
coarse-to-fine search. Also prints the linear-algebra floor (Cholesky solve and
log-determinant of the regularised curvature matrix) and a profile.

    python benchmarks/theta_e_scan.py [--values 31] [--lens 0]
"""

import argparse
import cProfile
import io as stringio
import os
import pstats
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import autolens as al
import numpy as np
from scipy.linalg import cho_factor, cho_solve

from hybridlens import config as hlconfig
from hybridlens.reconstruction import inversion, masking, trainingset
from hybridlens.simulation import simulate


def fresh_fit(sim, annulus, psf, pixel_scale, settings, mass, coefficient):
    """Everything rebuilt per call, as a plain PyAutoLens loop would."""
    mask = al.Mask2D(mask=~annulus.mask, pixel_scales=pixel_scale)
    dataset = al.Imaging(
        data=al.Array2D.no_mask(sim.image, pixel_scales=pixel_scale),
        noise_map=al.Array2D.no_mask(sim.noise_map, pixel_scales=pixel_scale),
        psf=al.Convolver(kernel=al.Array2D.no_mask(psf, pixel_scales=pixel_scale)),
        over_sample_size_lp=settings["over_sample"],
        over_sample_size_pixelization=settings["over_sample"],
    ).apply_mask(mask)
    grid = al.image_mesh.Overlay(shape=tuple(settings["overlay_shape"])).image_plane_mesh_grid_from(mask=mask)
    lens = al.Galaxy(
        redshift=0.5,
        mass=al.mp.Isothermal(
            centre=mass.centre,
            ell_comps=al.convert.ell_comps_from(mass.axis_ratio, mass.angle),
            einstein_radius=mass.einstein_radius,
        ),
    )
    source = al.Galaxy(
        redshift=1.0,
        pixelization=al.Pixelization(
            mesh=al.mesh.Delaunay(pixels=len(grid)), regularization=al.reg.Constant(coefficient=coefficient)
        ),
    )
    fit = al.FitImaging(
        dataset=dataset,
        tracer=al.Tracer(galaxies=[lens, source]),
        adapt_images=al.AdaptImages(galaxy_image_plane_mesh_grid_dict={source: grid}),
        settings=al.Settings(use_positive_only_solver=settings["positive_only"]),
    )
    return fit.log_evidence


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=31)
    parser.add_argument("--lens", type=int, default=0)
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    args = parser.parse_args()
    cfg = hlconfig.load(args.config)
    survey = simulate.Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_slacs"))
    renderer = simulate.Renderer(survey, cfg["simulate_slacs"]["over_sample"])
    sim = simulate.slacs_image(
        simulate.image_rng(cfg["seed"], "slacs", args.lens), cfg["simulate_slacs"], renderer, survey
    )
    annulus = masking.fit_annulus(sim.image, survey.pixel_scale, **cfg["masking"])
    settings = cfg["inversion"]
    p = sim.params
    truth = inversion.Mass(p["einstein_radius"], p["axis_ratio"], p["angle"])
    thetas = np.linspace(0.5, 1.5, args.values) * truth.einstein_radius

    start = time.perf_counter()
    lens = inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, survey.pixel_scale, settings)
    setup = time.perf_counter() - start
    coefficient, _ = lens.best_coefficient(truth)
    lens.log_evidence(truth, coefficient)  # numba warm-up, not timed

    start = time.perf_counter()
    ours = [lens.log_evidence(truth.with_einstein_radius(t), coefficient) for t in thetas]
    scan = time.perf_counter() - start

    fresh_fit(sim, annulus, renderer.psf, survey.pixel_scale, settings, truth, coefficient)
    start = time.perf_counter()
    plain = [
        fresh_fit(sim, annulus, renderer.psf, survey.pixel_scale, settings, truth.with_einstein_radius(t), coefficient)
        for t in thetas
    ]
    baseline = time.perf_counter() - start
    agreement = np.max(np.abs(np.array(ours) - np.array(plain)) / np.abs(plain))

    calls = []
    start = time.perf_counter()
    theta_best, _ = trainingset.maximise_in_window(
        lambda t: calls.append(t) or lens.log_evidence(truth.with_einstein_radius(t), coefficient),
        (thetas[0], thetas[-1]),
        cfg["trainingset"]["scan_points"],
        cfg["trainingset"]["scan_rtol"],
    )
    search = time.perf_counter() - start

    fit = lens.fit(truth, coefficient)
    matrix = np.asarray(fit.inversion.curvature_reg_matrix)
    vector = np.asarray(fit.inversion.data_vector)
    start = time.perf_counter()
    for _ in range(20):
        factor = cho_factor(matrix)
        cho_solve(factor, vector)
        2.0 * np.log(np.diag(factor[0])).sum()
    floor = (time.perf_counter() - start) / 20

    n = len(thetas)
    print(
        f"lens {args.lens}: theta_E {truth.einstein_radius:.3f}, {annulus.mask.sum()} masked pixels, "
        f"{len(lens.mesh_grid)} source pixels, coefficient {coefficient:.3g}"
    )
    print(f"baseline (fresh FitImaging per theta_E): {baseline / n * 1e3:7.1f} ms/inversion, {n / baseline:6.1f} /s")
    print(
        f"ours (MaskedLens reused)               : {scan / n * 1e3:7.1f} ms/inversion, {n / scan:6.1f} /s"
        f"  -> x{baseline / scan:.1f} (one-off set-up {setup:.2f} s; evidences agree to {agreement:.1e})"
    )
    print(
        f"coarse-to-fine search                  : {len(calls)} inversions, {search:.2f} s "
        f"(dense {n}-point grid: {scan:.2f} s); best theta_E {theta_best:.4f} vs true {truth.einstein_radius:.4f}"
    )
    print(
        f"linear-algebra floor (Cholesky {matrix.shape[0]}^2 solve + log det): {floor * 1e3:.2f} ms "
        f"-> ours is x{scan / n / floor:.1f} the floor"
    )

    profiler = cProfile.Profile()
    profiler.enable()
    for t in thetas:
        lens.log_evidence(truth.with_einstein_radius(t), coefficient)
    profiler.disable()
    out = stringio.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print("\nwhere the time goes (tottime, our scan):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:4000])


if __name__ == "__main__":
    main()
