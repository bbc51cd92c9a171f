"""Did a run's blind fits miss the truth, or did the evidence prefer their wrong models?

For each blind fit of a run (`results/hybrid/blind/lens-*.h5`), ln Z of one inversion
(coefficient at its evidence maximum) at the fit's maximum-likelihood SIE and at the
true one, per source mesh (`inversion.image_mesh`). A wrong fit below the truth is a
search failure, which M21's reruns (and the guarded loop's priors) exist to repair; one
above it is a wrong model the likelihood itself prefers, which only the classifier
(or a better mesh) can reject.

    python benchmarks/blind_vs_truth.py --run RUN_DIR [--meshes overlay brightness]
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import h5py
import numpy as np

from hybridlens import config as hlconfig
from hybridlens import io
from hybridlens.reconstruction import inversion


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT), help="a run's directory (holding results/)")
    parser.add_argument("--meshes", nargs="+", default=["overlay", "brightness"], help="inversion.image_mesh values")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    args = parser.parse_args()
    cfg = hlconfig.load(*args.config)
    results = Path(args.run) / "results"
    for path in sorted((results / "hybrid" / "blind").glob("lens-*.h5")):
        index = int(path.stem.split("-")[1])
        with h5py.File(path, "r") as fit:
            params = {name: float(np.asarray(value).ravel()[0]) for name, value in fit["params"].items()}
        size = cfg["hybrid_modelling"]["shard_size"]
        shard = f"shard-{index // size:05d}.h5"
        lens = io.read_lens(results / "simulate" / "blind" / shard, results / "mask" / "blind" / shard, index % size)
        truth = inversion.Mass.from_truth(lens["truth"])
        found = inversion.Mass.from_parameters(params, "ml_")
        snr = float(np.max((lens["image"] / lens["noise_map"])[lens["mask"]]))
        cells = []
        for mesh in args.meshes:
            masked = inversion.MaskedLens.from_lens(lens, {**cfg["inversion"], "image_mesh": mesh})
            _, at_truth = masked.best_coefficient(truth)
            _, at_fit = masked.best_coefficient(found)
            cells.append(f"{mesh}: truth {at_truth:9.1f}, fit {at_fit:9.1f} ({at_fit - at_truth:+8.1f})")
        print(
            f"lens {index:3d} (peak S/N {snr:4.0f}): fit theta/true {found.einstein_radius / truth.einstein_radius:.2f}, "
            f"q {found.axis_ratio:.2f} (true {truth.axis_ratio:.2f}) | " + " | ".join(cells),
            flush=True,
        )


if __name__ == "__main__":
    main()
