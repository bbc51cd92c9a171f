"""Does the source mesh resolve the true source? chi^2/N and ln Z at the true model per mesh size.

A fit can only land on the truth if the truth is the evidence's best: where the
magnification-adapted mesh (an image-plane `Overlay` grid traced to the source
plane) is too coarse for a bright, compact source, the true model leaves
residuals of many sigma, and a demagnified model that reproduces the arcs nearly
unlensed wins the evidence. For lenses of `benchmarks/fit_cost.py`'s own stream
(never evaluation lenses) this prints, per `inversion.overlay_shape`, the source
pixels, the evidence-maximised coefficient, ln Z and chi^2/N at the true SIE, and
milliseconds per inversion (the price of a finer mesh).

    python benchmarks/source_resolution.py --lenses 0 1 2 3 4 5 --shapes 30 40 50
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
from hybridlens.reconstruction import inversion


def at_truth(data, settings, calls):
    """(source pixels, coefficient, ln Z, chi^2/N, ms per inversion) at the true SIE."""
    annulus, truth = data["annulus"], data["truth"]
    masked = inversion.MaskedLens(
        data["image"], data["noise_map"], annulus.mask, data["psf"], data["pixel_scale"], settings
    )
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
    parser.add_argument("--shapes", type=int, nargs="+", default=[30, 40, 50], help="overlay grids (n x n)")
    parser.add_argument("--calls", type=int, default=5, help="inversions per timing")
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
        for shape in args.shapes:
            settings = {**cfg["inversion"], "overlay_shape": [shape, shape]}
            pixels, coefficient, log_z, reduced, ms = at_truth(data, settings, args.calls)
            base = log_z if base is None else base
            print(
                f"  overlay {shape}x{shape}: {pixels:5d} source pixels, coefficient {coefficient:.3g}, "
                f"ln Z {log_z:10.1f} ({log_z - base:+.1f}), chi^2/N {reduced:.2f}, {ms:.0f} ms per inversion",
                flush=True,
            )


if __name__ == "__main__":
    main()
