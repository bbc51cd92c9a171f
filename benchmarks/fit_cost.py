"""What a lens's first fit costs, and what each speed lever buys, on the same lenses.

Lenses are drawn as M21's blind lenses (`simulate_slacs` of config/config.yaml) from
their own random stream (`fit_cost`), so none of them is a lens the pipeline
evaluates on. Each is masked, the chosen SIE BNN (`--bnn`, a run's
`results/bnn/sie/chosen.h5`) predicts (theta_E, q, phi) +- sigma, or without a run
`--bnn stand-in` moves the truth by the BNN's validation errors (a lever's cost,
not the BNN, is measured), and every lever fits it:

- `blind`: M21's uniform priors (theta_E over the annulus), the config's search;
- `today`: the guarded loop's first fit before the prescan, BNN Gaussian(1 sigma)
  priors truncated to the annulus, centre +-`model_lenses.centre_half_width`;
- `default`: the guarded loop's first fit as configured: the evidence prescan from the
  BNN's model (`fitting.prescan`) and, where the arcs' pair estimate differs, from
  theirs too (`model_lenses.pair_check.second_start`), then `modelling.prescan`'s priors
  and search, on the loop's mesh (`model_lenses.inversion`);
- `one_start`, `one_start_overlay`: the default with the BNN's start only, on the loop's
  mesh or on M21's overlay;
- `windows`, `windows_fixed`, `windows_fixed_1net`: uniform windows about the prescan's
  optimum (`modelling.prescan.half_widths`), the coefficient free (+-1 decade) or held,
  one bound network;
- `gauss_fixed`, `_nlive20`, `_nlive15`, `_nlive20_neff100`: the BNN's Gaussians recentred
  on the optimum (widths kept), centre window, coefficient held; the config's search or
  fewer live points / effective samples;
- `default_adaptive`, `default_nlive15_adaptive`: the default (or 15 live points) with the
  pixelisation's sub-pixels 4x4 only where the data exceeds 1 sigma, 2x2 elsewhere;
- `default_centre_held`: the centre held at the prescan's optimum;
- `rectangular`, `blind_rectangular[_nlive20]`: the default (or M21's blind fit) on a
  source-plane rectangle whose pixels follow the traced grid's density (smooth ln Z);
- `brightness`, `blind_brightness`, `brightness24`: the default (or M21's blind fit) with the
  Delaunay mesh's image-plane points placed by the data's brightness (`inversion.image_mesh:
  brightness`), as many as the overlay (or a 24 x 24 overlay) gives;
- `default_tol1e-4`, `_tol1e-3`, `_iter200`: the bound networks' training stopped
  earlier (`modelling.search.network_tol`, `network_max_iter`; Nautilus: 0, 10,000);
- `default_sklearn_networks`: the default with the bound networks trained by sklearn
  itself (`modelling.search.network_trainer`), the reference for `fitting.bound_networks`;
- `blind_cut`, `today_cut`, `default_cut`: `blind`, `today` or `default` with the position
  cut (`modelling.PositionCut`, `model_lenses.positions`): a model tracing the arcs' peaks
  more than `max_spread` theta_E apart gets a penalty and no inversion.

Printed per fit: seconds (prescan included, and the bound networks' training),
likelihood calls (prescan's inversions included), ln Z, theta_E / theta_true, |q - q_true|, whether the call cap was hit;
then per lever the median seconds and calls, ln Z against `today`'s on the same
lens, and the speed-up. First, the per-call costs on the first lens: plain
PyAutoLens (masked `Imaging`, default path) against ours (sparse operator).

    python benchmarks/fit_cost.py --bnn results/bnn/sie/chosen.h5 --lenses 0 1 2 3 4 5 --jobs 2 \\
        [--levers today prescan] [--json out.json]
"""

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np

from hybridlens import config as hlconfig
from hybridlens.fitting import guarded, informed_priors, modelling, prescan
from hybridlens.reconstruction import inversion, masking, positions
from hybridlens.simulation import simulate
from hybridlens.simulation.survey import Survey

# lever: (first-fit priors, search overrides, prescan overrides[, inversion overrides]); "default" is the config's
# prescan as the guarded loop runs it
LEVERS = {
    "blind": ("blind", {}, {}),
    "today": ("bnn", {}, {}),
    "default": ("prescan", None, {}),
    "windows": ("prescan", {}, {"priors": "windows", "log10_coefficient": 1.0}),
    "windows_fixed": ("prescan", {}, {"priors": "windows"}),
    "windows_fixed_1net": ("prescan", {"n_networks": 1}, {"priors": "windows"}),
    "gauss_fixed": ("prescan", {}, {}),
    "gauss_fixed_nlive20": ("prescan", {"n_live": 20}, {}),
    "gauss_fixed_nlive15": ("prescan", {"n_live": 15}, {}),
    "gauss_fixed_nlive20_neff100": ("prescan", {"n_live": 20, "n_eff": 100}, {}),
    "default_sklearn_networks": ("prescan", {"n_live": 20, "network_trainer": "sklearn"}, {}),
    "default_1net": ("prescan", {"n_live": 20, "n_networks": 1}, {}),
    "default_2net": ("prescan", {"n_live": 20, "n_networks": 2}, {}),
    "default_centre_held": ("prescan", None, {"centre": 0.0}),
    "default_update40": ("prescan", {"n_live": 20, "n_update": 40}, {}),
    "default_1net_update40": ("prescan", {"n_live": 20, "n_networks": 1, "n_update": 40}, {}),
    "default_0net": ("prescan", {"n_live": 20, "n_networks": 0}, {}),
    "default_0net_nlive40": ("prescan", {"n_live": 40, "n_networks": 0}, {}),
    "default_0net_neff100": ("prescan", {"n_live": 20, "n_networks": 0, "n_eff": 100}, {}),
    "default_adaptive": ("prescan", None, {}, {"over_sample_faint": 2, "over_sample_faint_snr": 1.0}),
    "default_nlive15_adaptive": ("prescan", {"n_live": 15}, {}, {"over_sample_faint": 2, "over_sample_faint_snr": 1.0}),
    # a source-plane rectangle (pixels following the traced grid's density, bilinear): a smooth ln Z
    "rectangular": ("prescan", None, {}, {"mesh": "rectangular"}),
    "blind_rectangular": ("blind", {}, {}, {"mesh": "rectangular"}),
    "blind_rectangular_nlive20": ("blind", {"n_live": 20}, {}, {"mesh": "rectangular"}),
    # image-plane mesh points placed by the data's brightness (inversion.image_mesh), as many as the overlay's
    "brightness": ("prescan", None, {}, {"image_mesh": "brightness"}),
    "blind_brightness": ("blind", {}, {}, {"image_mesh": "brightness"}),
    "brightness24": ("prescan", None, {}, {"image_mesh": "brightness", "overlay_shape": [24, 24]}),
    # the bound networks' training stop (Nautilus: tol 0, i.e. while the loss falls at all)
    "default_tol1e-4": ("prescan", {"n_live": 20, "network_tol": 1e-4}, {}),
    "default_tol1e-3": ("prescan", {"n_live": 20, "network_tol": 1e-3}, {}),
    "default_iter200": ("prescan", {"n_live": 20, "network_max_iter": 200}, {}),
    "default_tol1e-4_nlive30": ("prescan", {"n_live": 30, "network_tol": 1e-4}, {}),
    # models whose arcs' peaks do not meet in the source plane skip the inversion (modelling.PositionCut)
    "blind_cut": ("blind", {}, {}),
    "today_cut": ("bnn", {}, {}),
    "default_cut": ("prescan", None, {}),
    # the recentred Gaussians' widths scaled (the prescan's optimum is good to far less than the BNN's sigma)
    "default_sigma0.5": ("prescan", None, {"sigma_scale": 0.5}),
    "default_sigma0.25": ("prescan", None, {"sigma_scale": 0.25}),
    "default_sigma0.25_centre0.05": ("prescan", None, {"sigma_scale": 0.25, "centre": 0.05}),
    # Nautilus' exploration stopped with more of the evidence still in the live set
    "default_flive0.2": ("prescan", {"n_live": 20, "f_live": 0.2}, {}),
    "default_flive0.5": ("prescan", {"n_live": 20, "f_live": 0.5}, {}),
    # the prescan from the BNN's start alone (no second start from the arcs' pair), on the config's mesh or M21's
    "one_start": ("prescan", None, {"one_start": True}),
    "one_start_overlay": ("prescan", None, {"one_start": True}, {"image_mesh": "overlay"}),
}
CUT_LEVERS = {"blind_cut", "today_cut", "default_cut"}
STREAM = "fit_cost"  # this benchmark's own lenses: never the pipeline's evaluation lenses


def scaled_gaussians(priors, scale):
    """`priors` with every Gaussian's sigma times `scale` (its mean and cut kept)."""
    if scale == 1.0:
        return priors
    scaled = {
        name: replace(prior, sigma=prior.sigma * scale)
        for name in modelling.PARAMETERS
        if (prior := getattr(priors, name)).kind == "gaussian"
    }
    return priors.replace(**scaled)


def per_call_ms(function, calls):
    function()  # first call compiles / warms caches
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return 1000.0 * (time.perf_counter() - start) / calls


def plain_analysis(image, noise_map, mask, psf, pixel_scale, settings, mesh_grid):
    """PyAutoLens as a user would set it up: masked Imaging, default (non-sparse) path."""
    import autolens as al

    dataset = al.Imaging(
        data=al.Array2D.no_mask(image, pixel_scales=pixel_scale),
        noise_map=al.Array2D.no_mask(noise_map, pixel_scales=pixel_scale),
        psf=al.Convolver(kernel=al.Array2D.no_mask(psf, pixel_scales=pixel_scale)),
        over_sample_size_lp=settings["over_sample"],
        over_sample_size_pixelization=settings["over_sample"],
    ).apply_mask(al.Mask2D(mask=~mask, pixel_scales=pixel_scale))
    return al.AnalysisImaging(
        dataset=dataset,
        adapt_images=al.AdaptImages(galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": mesh_grid}),
        settings=al.Settings(use_positive_only_solver=settings["positive_only"]),
        raise_inversion_positions_likelihood_exception=False,
        use_jax=False,
    )


def lens(cfg, index):
    """One lens of the benchmark's stream: image, noise, truth, annulus, PSF, pixel scale."""
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_slacs"))
    renderer = simulate.Renderer(survey, cfg["simulate_slacs"]["over_sample"])
    sim = simulate.slacs_image(simulate.image_rng(cfg["seed"], STREAM, index), cfg["simulate_slacs"], renderer, survey)
    annulus = masking.fit_annulus(sim.image, survey.pixel_scale, **cfg["masking"])
    return {
        "index": index,
        "image": sim.image,
        "noise_map": sim.noise_map,
        "truth": inversion.Mass.from_truth(sim.params),
        "annulus": annulus,
        "psf": renderer.psf,
        "pixel_scale": survey.pixel_scale,
    }


def timed_network_training():
    """Wrap the bound networks' training (Nautilus' own and ours) so its seconds add up in the returned list's first item."""
    import nautilus.neural

    from hybridlens.fitting import bound_networks

    spent = [0.0]

    def timer(train):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return train(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return timed

    nautilus.neural.train_network = timer(nautilus.neural.train_network)
    bound_networks.train_network = timer(bound_networks.train_network)
    return spent


def second_start(data, masked, scanned, prediction, settings, seed):
    """The guarded loop's second prescan start from the arcs' pair (`model_lenses.pair_check.second_start`)."""
    import logging
    from types import SimpleNamespace

    annulus, centre = data["annulus"], data["truth"].centre
    if settings.positions is None or scanned is None:
        return scanned, "bnn"
    peaks = positions.arc_peaks(data["image"], data["noise_map"], annulus.mask, data["pixel_scale"], settings.positions)
    alternative = guarded.pair_start(prediction, positions.pair_einstein_radius(peaks, centre), settings.pair_check)
    problem = SimpleNamespace(masked=masked, bounds=(annulus.inner_radius, annulus.outer_radius), seed=seed)
    log = logging.getLogger("fit_cost")
    scanned, _, start, _ = guarded.best_prescan(problem, scanned, prediction, alternative, centre, settings, False, log)
    return scanned, start


def fit(job):
    """One (lens, lever) fit in a worker: returns its row."""
    cfg, index, lever, prediction, seed = job
    network_seconds = timed_network_training()
    data = lens(cfg, index)
    settings = guarded.GuardSettings.from_config(cfg)
    annulus, truth = data["annulus"], data["truth"]
    bounds = (annulus.inner_radius, annulus.outer_radius)
    kind, search_overrides, prescan_overrides, *inversion_overrides = LEVERS[lever]
    masked = inversion.MaskedLens(
        data["image"],
        data["noise_map"],
        annulus.mask,
        data["psf"],
        data["pixel_scale"],
        {**settings.inversion, **(inversion_overrides[0] if inversion_overrides else {})},
    )
    blind = modelling.uniform_priors(truth.centre, bounds, settings.modelling_priors)
    bnn_priors, off_mask = guarded.first_priors(prediction, bounds, blind, truth.centre, settings)
    overrides = settings.prescan.search if search_overrides is None else search_overrides
    search = replace(settings.search, **overrides)
    mode = prescan_overrides.get("priors", settings.prescan.priors)
    sigma_scale = prescan_overrides.get("sigma_scale", 1.0)
    widths = {
        **settings.prescan.half_widths,
        **{k: v for k, v in prescan_overrides.items() if k not in ("priors", "sigma_scale", "one_start")},
    }
    prescan_settings = replace(settings.prescan, priors=mode, half_widths=widths)
    scanned, start = None, "bnn"
    if kind == "blind":
        priors = blind
    elif kind == "bnn":
        priors = bnn_priors
    else:
        scanned = guarded.first_prescan(masked, prediction, truth.centre, bounds, settings, seed)
        if not prescan_overrides.get("one_start"):
            scanned, start = second_start(data, masked, scanned, prediction, settings, seed)
        priors = bnn_priors if scanned is None else prescan_settings.narrowed(scanned, bnn_priors)
        priors = scaled_gaussians(priors, sigma_scale)
    scratch = Path(tempfile.mkdtemp(prefix="fit_cost_"))
    modelling.configure(scratch)
    cut = None
    if lever in CUT_LEVERS:
        peaks = positions.arc_peaks(
            data["image"], data["noise_map"], annulus.mask, data["pixel_scale"], settings.positions
        )
        cut = modelling.PositionCut.from_settings(peaks, settings.positions)
    try:
        result = modelling.fit_sie(masked, priors, search, lever, seed, cut=cut)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = result.seconds + (scanned.seconds if scanned else 0.0)
    calls = result.n_calls + (scanned.evaluations if scanned else 0)
    best = result.median
    return {
        "lens": index,
        "lever": lever,
        "seconds": seconds,
        "prescan_seconds": scanned.seconds if scanned else 0.0,
        "network_seconds": network_seconds[0],
        "calls": calls,
        "cut_calls": result.cut_calls,
        "log_evidence": result.log_evidence,
        "hit_call_cap": result.hit_call_cap,
        "theta_ratio": best["einstein_radius"] / truth.einstein_radius,
        "axis_ratio_error": abs(best["axis_ratio"] - truth.axis_ratio),
        "prescan_start": start,
        "prescan_theta_ratio": scanned.mass.einstein_radius / truth.einstein_radius if scanned else float("nan"),
        "bnn_theta_ratio": prediction.einstein_radius / truth.einstein_radius,
        "bnn_off_mask": bool(off_mask),
        "max_likelihood": result.max_likelihood,
        "median": result.median,
        "max_log_likelihood": result.max_log_likelihood,
        "truth": {"einstein_radius": truth.einstein_radius, "axis_ratio": truth.axis_ratio, "angle": truth.angle},
    }


def print_per_call(cfg, data, calls):
    settings = cfg["inversion"]
    annulus, truth = data["annulus"], data["truth"]
    masked = inversion.MaskedLens(
        data["image"], data["noise_map"], annulus.mask, data["psf"], data["pixel_scale"], settings
    )
    coefficient, log_z = masked.best_coefficient(truth)
    priors = modelling.uniform_priors(
        truth.centre, (annulus.inner_radius, annulus.outer_radius), cfg["modelling"]["priors"]
    )
    instance = modelling.sie_model(priors, masked.mesh()).instance_from_vector(
        [*truth.centre, truth.einstein_radius, truth.axis_ratio, truth.angle, coefficient]
    )
    plain = plain_analysis(
        data["image"], data["noise_map"], annulus.mask, data["psf"], data["pixel_scale"], settings, masked.mesh_grid
    )
    ours = modelling.analysis_for(masked)
    ms_plain = per_call_ms(lambda: plain.log_likelihood_function(instance), calls)
    ms_ours = per_call_ms(lambda: ours.log_likelihood_function(instance), calls)
    print(
        f"lens {data['index']}: {int(annulus.mask.sum())} masked pixels, {masked.n_source_pixels} source pixels; "
        f"ln Z at truth {log_z:.1f}; per call: plain al.AnalysisImaging {ms_plain:.1f} ms, ours {ms_ours:.1f} ms "
        f"(x{ms_plain / ms_ours:.1f})",
        flush=True,
    )


def stand_in_predictor(errors, seed, q_range):
    """A BNN stand-in without a trained network: the truth moved by Gaussian errors of the given
    1-sigma sizes (theta_E fraction, q, phi degrees), which it also reports as its sigmas; q kept
    inside the fits' `q_range`."""
    theta_frac, q_sigma, phi_sigma = errors

    def predict(data):
        from hybridlens.fitting.informed_priors import Prediction

        rng = np.random.default_rng([seed, data["index"]])
        truth = data["truth"]
        theta = truth.einstein_radius * (1.0 + theta_frac * rng.normal())
        return Prediction(
            einstein_radius=theta,
            einstein_radius_sigma=theta_frac * theta,
            axis_ratio=float(np.clip(truth.axis_ratio + q_sigma * rng.normal(), *q_range)),
            axis_ratio_sigma=q_sigma,
            angle=float((truth.angle + phi_sigma * rng.normal()) % 180.0),
            angle_sigma=phi_sigma,
        )

    return predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bnn",
        default=str(ROOT / "results" / "bnn" / "sie" / "chosen.h5"),
        help="a run's chosen SIE BNN, or 'stand-in': the truth moved by --stand-in-errors",
    )
    parser.add_argument(
        "--stand-in-errors",
        type=float,
        nargs=3,
        default=[0.04, 0.09, 14.0],
        help="1-sigma theta_E fraction, q, phi (deg) of the stand-in (the default run's SIE BNN on its validation split)",
    )
    parser.add_argument("--lenses", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--levers", nargs="+", default=["today", "default"], choices=list(LEVERS))
    parser.add_argument("--jobs", type=int, default=1, help="fits at a time, one core each")
    parser.add_argument("--calls", type=int, default=20, help="likelihood calls per per-call timing (0: skip)")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write every row here")
    args = parser.parse_args()
    cfg = hlconfig.load(*args.config)
    cfg["class_ratio_ranges"] = cfg["calibrate_relations"]["class_ratio_ranges"]  # as the workflow hands it
    lenses = [lens(cfg, index) for index in args.lenses]
    if args.calls:
        print_per_call(cfg, lenses[0], args.calls)
    settings = guarded.GuardSettings.from_config(cfg)
    if args.bnn == "stand-in":
        stand_in = stand_in_predictor(args.stand_in_errors, args.seed, settings.modelling_priors["axis_ratio_range"])
        predictions = {data["index"]: stand_in(data) for data in lenses}
    else:
        predict = guarded.bnn_predictor(args.bnn, settings.mc_passes, args.seed)
        predictions = {data["index"]: predict(data["image"]) for data in lenses}
    for data in lenses:
        p, t = predictions[data["index"]], data["truth"]
        print(
            f"lens {data['index']}: truth theta_E {t.einstein_radius:.3f} q {t.axis_ratio:.2f} phi {t.angle:.0f}; "
            f"BNN {p.einstein_radius:.3f}+-{p.einstein_radius_sigma:.3f} q {p.axis_ratio:.2f}+-{p.axis_ratio_sigma:.2f} "
            f"phi {p.angle:.0f}+-{p.angle_sigma:.0f}; annulus {data['annulus'].inner_radius:.2f}-"
            f"{data['annulus'].outer_radius:.2f}",
            flush=True,
        )
    jobs = [(cfg, i, lever, predictions[i], args.seed) for i in args.lenses for lever in args.levers]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(fit, jobs):
            rows.append(row)
            print(
                f"lens {row['lens']} {row['lever']:16s} {row['seconds']:6.1f} s (prescan {row['prescan_seconds']:4.1f}, "
                f"networks {row['network_seconds']:5.1f}) "
                f"{row['calls']:5d} calls ({row['cut_calls']} cut)  ln Z {row['log_evidence']:9.1f}  theta/true {row['theta_ratio']:.3f} "
                f"(prescan {row['prescan_theta_ratio']:.3f} from the {row['prescan_start']}, BNN {row['bnn_theta_ratio']:.3f})  "
                f"|dq| {row['axis_ratio_error']:.3f}{'  CALL CAP HIT' if row['hit_call_cap'] else ''}",
                flush=True,
            )
    summarise(rows, args.levers)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def summarise(rows, levers):
    by = {(r["lens"], r["lever"]): r for r in rows}
    base = "today" if "today" in levers else levers[0]
    print(f"\nper lever, median over {len({r['lens'] for r in rows})} lenses (ln Z and speed against '{base}'):")
    for lever in levers:
        mine = [r for r in rows if r["lever"] == lever]
        paired = [(r, by[(r["lens"], base)]) for r in mine if (r["lens"], base) in by]
        delta = [r["log_evidence"] - b["log_evidence"] for r, b in paired]
        speed = sum(b["seconds"] for _, b in paired) / max(sum(r["seconds"] for r, _ in paired), 1e-9)
        correct = sum(0.95 <= r["theta_ratio"] <= 1.05 for r in mine)
        print(
            f"{lever:16s} median {np.median([r['seconds'] for r in mine]):6.1f} s, "
            f"{np.median([r['calls'] for r in mine]):6.0f} calls; ln Z - {base}'s: min {min(delta):+.1f}, "
            f"median {np.median(delta):+.1f}; x{speed:.2f} faster in total; theta_E within 5 %: {correct}/{len(mine)}; "
            f"cap hits {sum(r['hit_call_cap'] for r in mine)}"
        )


if __name__ == "__main__":
    main()
