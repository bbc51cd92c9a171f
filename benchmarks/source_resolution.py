"""Does the source mesh resolve the true source? chi^2/N and ln Z at the true model per mesh size.

A fit can only land on the truth if the truth is the evidence's best: where the
magnification-adapted mesh (an image-plane `Overlay` grid traced to the source
plane) is too coarse for a bright, compact source, the true model leaves
residuals of many sigma, and a demagnified model that reproduces the arcs nearly
unlensed wins the evidence. For lenses of `benchmarks/fit_cost.py`'s own stream
(never evaluation lenses) this prints, per `inversion.overlay_shape`, the source
pixels, the evidence-maximised coefficient, ln Z and chi^2/N at the true SIE, and
milliseconds per inversion (the price of a finer mesh). A mesh is
`overlay:N` (an N x N overlay, M21's) or `brightness:N[:power[:floor]]` (as many
points as that overlay, placed by the smoothed data's brightness:
`inversion.image_mesh: brightness`). With `--wrong` it also searches the under-
(0.1-0.9 theta_true) and over-magnified (1.1-3) windows over the blind priors
(`trainingset.searched`, the same draws on every mesh) and prints the best wrong
model's ln Z minus the truth's: a positive margin is a wrong solution a fit can
end on and be right to.

    python benchmarks/source_resolution.py --lenses 0 1 2 3 4 5 --meshes overlay:30 overlay:40 brightness:30
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np

import fit_cost  # beside this script: the benchmark lenses' stream
from hybridlens import config as hlconfig
from hybridlens.reconstruction import inversion, trainingset

WRONG_WINDOWS = {"under": (0.1, 0.9), "over": (1.1, 3.0)}  # theta_E / theta_true of a wrong model (M21)


def mesh_settings(base, spec):
    """Inversion settings of a mesh spec `kind:N[:power[:floor]]`."""
    kind, shape, *weights = spec.split(":")
    settings = {**base, "overlay_shape": [int(shape), int(shape)], "image_mesh": kind}
    if kind == "brightness":
        power, floor = (list(map(float, weights)) + [1.0, 0.1][len(weights) :])[:2]
        settings["brightness_mesh"] = {**base.get("brightness_mesh", {}), "pixels": None, "smooth_pixels": 1.0}
        settings["brightness_mesh"].update(weight_power=power, weight_floor=floor)
    return settings


def masked_lens(data, settings):
    return inversion.MaskedLens(
        data["image"], data["noise_map"], data["annulus"].mask, data["psf"], data["pixel_scale"], settings
    )


def wrong_margin(masked, truth, log_z_truth, search, seed):
    """(window, ln Z of the best wrong model minus the truth's, its theta_E / theta_true, q)."""
    rows = []
    coefficient, _ = masked.best_coefficient(truth)  # held during each window's search
    for name, (low, high) in WRONG_WINDOWS.items():
        window = (low * truth.einstein_radius, high * truth.einstein_radius)
        rng = np.random.default_rng(seed)
        model = trainingset.searched(masked, truth, window, coefficient, search, rng)
        _, log_z = masked.best_coefficient(model)
        rows.append((name, log_z - log_z_truth, model.einstein_radius / truth.einstein_radius, model.axis_ratio))
    return rows


def at_truth(data, settings, calls):
    """(source pixels, coefficient, ln Z, chi^2/N, ms per inversion) at the true SIE."""
    annulus, truth = data["annulus"], data["truth"]
    masked = masked_lens(data, settings)
    coefficient, log_z = masked.best_coefficient(truth)
    chi_squared = float(masked.fit(truth, coefficient).chi_squared)
    start = time.perf_counter()
    for _ in range(calls):
        masked.log_evidence(truth, coefficient)
    ms = 1000.0 * (time.perf_counter() - start) / calls
    return masked.n_source_pixels, coefficient, log_z, chi_squared / int(annulus.mask.sum()), ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lenses", type=int, nargs="+", default=list(range(6)))
    parser.add_argument(
        "--meshes", nargs="+", default=["overlay:30", "overlay:40", "brightness:30"], help="kind:N[:power[:floor]]"
    )
    parser.add_argument("--calls", type=int, default=5, help="inversions per timing")
    parser.add_argument("--wrong", action="store_true", help="search the wrong windows too (~500 inversions a mesh)")
    parser.add_argument("--draws", type=int, default=64, help="--wrong: Sobol draws per window")
    parser.add_argument("--evaluations", type=int, default=200, help="--wrong: Nelder-Mead inversions per window")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    args = parser.parse_args()
    cfg = hlconfig.load(*args.config)
    for index in args.lenses:
        data = fit_cost.lens(cfg, index)
        mask = data["annulus"].mask
        snr = float(np.max((data["image"] / data["noise_map"])[mask]))
        print(
            f"lens {index}: theta_E {data['truth'].einstein_radius:.2f}, {int(mask.sum())} masked pixels, "
            f"peak S/N {snr:.0f}",
            flush=True,
        )
        base = None
        search = trainingset.WrongSearch(args.draws, args.evaluations, cfg["modelling"]["priors"]["centre_half_width"])
        for spec in args.meshes:
            settings = mesh_settings(cfg["inversion"], spec)
            pixels, coefficient, log_z, reduced, ms = at_truth(data, settings, args.calls)
            base = log_z if base is None else base
            print(
                f"  {spec:>16}: {pixels:5d} source pixels, coefficient {coefficient:.3g}, "
                f"ln Z {log_z:10.1f} ({log_z - base:+.1f}), chi^2/N {reduced:.2f}, {ms:.0f} ms per inversion",
                flush=True,
            )
            if args.wrong:
                rows = wrong_margin(masked_lens(data, settings), data["truth"], log_z, search, cfg["seed"] + index)
                print(
                    "      best wrong - truth: "
                    + ", ".join(
                        f"{name} {margin:+.1f} (theta {ratio:.2f}, q {q:.2f})" for name, margin, ratio, q in rows
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
