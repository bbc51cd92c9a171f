"""Where a blind lens-model fit's time goes, and what a converged one costs.

For one default SLACS-like Euclid lens (simulated from config/config.yaml):

1. ms per likelihood call: plain PyAutoLens (`al.AnalysisImaging` on a masked
   `al.Imaging`, default path) against ours (`inversion.MaskedLens`'s numba sparse
   operator through the same `AnalysisImaging`, i.e. what PyAutoFit calls), and the
   bare `FitImaging` evidence without PyAutoFit's analysis wrapper.
2. A blind fit (M21 priors: centre +-0.3", q U[0.25, 0.999], phi U[0, 180),
   theta_E U[r_in, r_out] of the annulus, coefficient log-uniform) with the
   search settings before (`--before`, default n_live 50, 4 networks) and after
   (the config's `modelling.search`): seconds, likelihood calls, ms per call,
   the sampler's own overhead (time not spent in the likelihood), whether it
   converged or hit the call cap, and the solution found.

    python benchmarks/fit_cost.py [--lens 0] [--skip-before] [--calls 30]
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import autolens as al

from hybridlens import config as hlconfig
from hybridlens.fitting import modelling
from hybridlens.reconstruction import inversion, masking
from hybridlens.simulation import simulate
from hybridlens.simulation.survey import Survey


def per_call_ms(function, calls):
    function()  # first call compiles / warms caches
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return 1000.0 * (time.perf_counter() - start) / calls


def plain_analysis(sim, annulus, psf, pixel_scale, settings, mesh_grid):
    """PyAutoLens as a user would set it up: masked Imaging, default (non-sparse) path."""
    mask = al.Mask2D(mask=~annulus.mask, pixel_scales=pixel_scale)
    dataset = al.Imaging(
        data=al.Array2D.no_mask(sim.image, pixel_scales=pixel_scale),
        noise_map=al.Array2D.no_mask(sim.noise_map, pixel_scales=pixel_scale),
        psf=al.Convolver(kernel=al.Array2D.no_mask(psf, pixel_scales=pixel_scale)),
        over_sample_size_lp=settings["over_sample"],
        over_sample_size_pixelization=settings["over_sample"],
    ).apply_mask(mask)
    return al.AnalysisImaging(
        dataset=dataset,
        adapt_images=al.AdaptImages(galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": mesh_grid}),
        settings=al.Settings(use_positive_only_solver=settings["positive_only"]),
        raise_inversion_positions_likelihood_exception=False,
        use_jax=False,
    )


class CountingAnalysis:
    """Wraps `log_likelihood_function` to time the likelihood inside a PyAutoFit fit."""

    def __init__(self, analysis):
        self.analysis, self.seconds, self.calls = analysis, 0.0, 0
        original = analysis.log_likelihood_function

        def timed(instance):
            start = time.perf_counter()
            try:
                return original(instance)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        analysis.log_likelihood_function = timed


def blind_fit(masked, priors, search, label, seed, checkpoint=False):
    scratch = Path(tempfile.mkdtemp(prefix="fit_cost_"))
    modelling.configure(scratch)
    counter = {}
    original = modelling.analysis_for

    def counted(lens):
        counter["c"] = CountingAnalysis(original(lens))
        return counter["c"].analysis

    modelling.analysis_for = counted
    try:
        result = modelling.fit_sie(masked, priors, search, label, seed, checkpoint=checkpoint)
    finally:
        modelling.analysis_for = original
        shutil.rmtree(scratch, ignore_errors=True)
    likelihood = counter["c"].seconds
    return result, likelihood


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lens", type=int, default=0)
    parser.add_argument("--calls", type=int, default=30, help="likelihood calls per per-call timing")
    parser.add_argument(
        "--before",
        default='{"n_live": 50, "n_batch": 100, "f_live": 0.01, "n_eff": 500, "max_calls": 30000}',
        help="JSON search settings of the 'before' fit",
    )
    parser.add_argument("--skip-before", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cfg = hlconfig.load(ROOT / "config" / "config.yaml")
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_slacs"))
    renderer = simulate.Renderer(survey, cfg["simulate_slacs"]["over_sample"])
    rng = simulate.image_rng(cfg["seed"], "slacs", args.lens)
    sim = simulate.slacs_image(rng, cfg["simulate_slacs"], renderer, survey)
    annulus = masking.fit_annulus(sim.image, survey.pixel_scale)
    truth = inversion.Mass.from_truth(sim.params)
    settings = cfg["inversion"]
    masked = inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, survey.pixel_scale, settings)
    coefficient, log_z_truth = masked.best_coefficient(truth)
    print(
        f'lens {args.lens}: theta_E {truth.einstein_radius:.3f}" q {truth.axis_ratio:.2f} phi {truth.angle:.0f}; '
        f"{int(annulus.mask.sum())} masked pixels, {len(masked.mesh_grid)} source pixels, "
        f"{settings['over_sample']}x{settings['over_sample']} sub-pixels; ln Z at truth {log_z_truth:.1f}"
    )

    priors = modelling.uniform_priors(
        truth.centre, (annulus.inner_radius, annulus.outer_radius), cfg["modelling"]["priors"]
    )
    model = modelling.sie_model(priors, len(masked.mesh_grid))
    instance = model.instance_from_vector(
        [truth.centre[0], truth.centre[1], truth.einstein_radius, truth.axis_ratio, truth.angle, coefficient]
    )
    plain = plain_analysis(sim, annulus, renderer.psf, survey.pixel_scale, settings, masked.mesh_grid)
    ours = modelling.analysis_for(masked)
    ms_plain = per_call_ms(lambda: plain.log_likelihood_function(instance), args.calls)
    ms_ours = per_call_ms(lambda: ours.log_likelihood_function(instance), args.calls)
    ms_bare = per_call_ms(lambda: masked.log_evidence(truth, coefficient), args.calls)
    print(
        f"per call: plain al.AnalysisImaging {ms_plain:.1f} ms | ours (sparse operator, same analysis) "
        f"{ms_ours:.1f} ms (x{ms_plain / ms_ours:.1f}) | bare FitImaging evidence {ms_bare:.1f} ms "
        f"(PyAutoFit analysis overhead {ms_ours - ms_bare:+.1f} ms/call)"
    )

    runs = [] if args.skip_before else [("before", json.loads(args.before))]
    runs.append(("after", cfg["modelling"]["search"]))
    seconds = {}
    for label, search_settings in runs:
        search = modelling.SearchSettings.from_config(search_settings)
        result, likelihood = blind_fit(masked, priors, search, label, args.seed)
        best = result.max_likelihood
        seconds[label] = result.seconds
        print(
            f"{label:6s} {json.dumps(search_settings)}: {result.seconds:.0f} s, {result.n_calls} calls, "
            f"{1000 * result.seconds / result.n_calls:.1f} ms/call of which likelihood "
            f"{1000 * likelihood / result.n_calls:.1f}, sampler + PyAutoFit {result.seconds - likelihood:.0f} s; "
            f"{'CALL CAP HIT' if result.hit_call_cap else 'converged'}; ln Z {result.log_evidence:.1f}; "
            f"theta_E {best['einstein_radius']:.3f} ({best['einstein_radius'] / truth.einstein_radius:.2f} x true) "
            f"q {best['axis_ratio']:.2f} phi {best['angle']:.0f}"
        )
    if len(seconds) == 2:
        print(f"after / before: x{seconds['before'] / seconds['after']:.2f} faster")


if __name__ == "__main__":
    main()
