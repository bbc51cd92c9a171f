"""How well do a lens's two opposite arc peaks give theta_E, and how far does the BNN stray from them?

On the simulated SLACS-like lenses of a run (`results/simulate/slacs`, the classifier's
training lenses, not the blind lenses the hybrid loops are judged on), the guarded loop's
annulus about the true centre (`masking.lens_annulus`), its arc peaks
(`positions.arc_peaks`) and the pair estimate (`positions.pair_einstein_radius`) are
compared with the truth; with `--bnn`, the chosen SIE BNN's theta_E too. The spread of
pair / truth and of BNN / pair sets `model_lenses.pair_check`.

    python benchmarks/pair_estimator.py --run RUN_DIR [--bnn] [--limit 100] [--set blind --verbose]
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import h5py
import numpy as np

from hybridlens import config as hlconfig
from hybridlens.flags import MaskFlag
from hybridlens.reconstruction import masking, positions
from hybridlens.simulation.survey import Survey


def quantiles(values, label):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return f"{label}: none"
    q = np.percentile(values, [0, 5, 16, 50, 84, 95, 100])
    return f"{label} (n = {len(values)}): min {q[0]:.3f}, 5/16/50/84/95 % {' / '.join(f'{v:.3f}' for v in q[1:6])}, max {q[6]:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT), help="a run's directory (holding results/)")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")], type=os.path.abspath)
    parser.add_argument("--bnn", action="store_true", help="also the chosen SIE BNN's theta_E")
    parser.add_argument("--limit", type=int, default=None, help="at most this many lenses")
    parser.add_argument("--set", default="slacs", help="results/simulate/<set>: slacs (default) or blind")
    parser.add_argument("--verbose", action="store_true", help="one line per lens")
    args = parser.parse_args()
    cfg = hlconfig.load(*args.config)
    os.chdir(args.run)  # the chosen BNN names its models relative to the run
    results = Path("results")
    settings = positions.PositionSettings.from_config(cfg["model_lenses"]["positions"]) or positions.PositionSettings()
    predict = None
    if args.bnn:
        from hybridlens.fitting import guarded

        chosen = results / "bnn" / "sie" / "chosen.h5"
        predict = guarded.bnn_predictor(chosen, cfg["bnn"]["mc_passes"], cfg["seed"])
    pair_ratio, bnn_ratio, bnn_pair, one_peak = [], [], [], 0
    for path in sorted((results / "simulate" / args.set).glob("shard-*.h5")):
        with h5py.File(path, "r") as h5:
            survey = Survey.from_settings(json.loads(h5.attrs["survey"]))
            images, noise, flags = h5["image"][()], h5["noise_map"][()], h5["flags"][()]
            indices = h5["index"][()]
            truth = {name: h5["params"][name][()] for name in ("einstein_radius", "lens_centre_y", "lens_centre_x")}
        for row in np.flatnonzero(flags == 0):
            if args.limit is not None and len(pair_ratio) >= args.limit:
                break
            image, noise_map = images[row].astype(float), noise[row].astype(float)
            centre = (float(truth["lens_centre_y"][row]), float(truth["lens_centre_x"][row]))
            annulus = masking.lens_annulus(image, survey.pixel_scale, cfg["masking"], None, centre)
            if annulus.flags & MaskFlag.NO_MASK:
                continue
            peaks = positions.arc_peaks(image, noise_map, annulus.mask, survey.pixel_scale, settings)
            theta = float(truth["einstein_radius"][row])
            pair = positions.pair_einstein_radius(peaks, centre)
            one_peak += int(not np.isfinite(pair))
            pair_ratio.append(pair / theta)
            if predict is not None:
                bnn = predict(image).einstein_radius
                bnn_ratio.append(bnn / theta)
                bnn_pair.append(bnn / pair)
            if args.verbose:
                bnn_text = f", BNN / truth {bnn_ratio[-1]:.3f}, BNN / pair {bnn_pair[-1]:.3f}" if predict else ""
                print(f"lens {int(indices[row]):5d}: {len(peaks)} peaks, pair / truth {pair_ratio[-1]:.3f}{bnn_text}")
    print(f"{len(pair_ratio)} lenses; no opposite pair of peaks: {one_peak}")
    print(quantiles(pair_ratio, "pair / truth"))
    if predict is not None:
        print(quantiles(bnn_ratio, "BNN / truth"))
        print(quantiles(bnn_pair, "BNN / pair"))
        for tolerance in (0.15, 0.2, 0.25, 0.3):
            outside = np.abs(np.asarray(bnn_pair) - 1) > tolerance
            wrong = np.abs(np.asarray(bnn_ratio) - 1) > 0.1
            print(
                f"|BNN / pair - 1| > {tolerance:.2f}: {int(np.nansum(outside))} lenses, "
                f"of which the BNN is > 10 % off the truth: {int(np.nansum(outside & wrong))} "
                f"(BNN > 10 % off in all: {int(np.nansum(wrong))})"
            )


if __name__ == "__main__":
    main()
