"""What each P21 PyAutoLens method costs on the same lenses, and the speed-up of informed priors.

Fits test-set lenses that a run has simulated and masked (`snakemake p21_testsets`)
with the three methods of `hybridlens.analysis.comparison`: blind (ring-fit theta_E prior,
the rest over full ranges), + BNN uniform windows and + BNN Gaussian (1 sigma)
priors. The BNN predictions are stand-ins — the truth displaced by a Gaussian
draw of the given 1-sigma errors (default: the default run's measured BNN test
errors) — so the benchmark needs no trained network; the pipeline's own numbers
come from `p21_compare`. Prints seconds, likelihood calls and cap hits per fit,
and the mean speed-up of each method over the blind fit (P21 Fig 19: x1.73 for
+ BNN (1 sigma)).

    python benchmarks/p21_fit_cost.py --root /path/to/run --set sie_real --lenses 0 1 \\
        [--search n_live=15 f_live=0.2 n_eff=50 max_calls=3000]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import yaml

from hybridlens import io, vocabulary
from hybridlens.analysis import comparison
from hybridlens.fitting import informed_priors, modelling
from hybridlens.flags import ComparisonFlag


def stand_in_prediction(truth, sigmas, rng, power_law):
    """The truth displaced by N(0, sigma): a BNN of the given accuracy, calibrated."""
    values = {}
    for name, sigma in sigmas.items():
        if name == "slope" and not power_law:
            continue
        values[name] = float(truth[name] + rng.normal(0.0, sigma))
        values[f"{name}_sigma"] = float(sigma)
    values["axis_ratio"] = float(np.clip(values["axis_ratio"], 0.3, 0.999))
    values["angle"] = float(values["angle"] % 180.0)
    return informed_priors.Prediction(**values)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".", help="a run directory holding results/simulate and results/mask")
    parser.add_argument("--set", default="sie_real")
    parser.add_argument("--lenses", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--methods", nargs="+", default=list(vocabulary.P21_METHODS))
    parser.add_argument("--search", nargs="*", default=[], help="key=value overrides of p21_comparison.search")
    parser.add_argument(
        "--sigmas",
        default='{"einstein_radius": 0.15, "axis_ratio": 0.15, "angle": 45.0, "slope": 0.2}',
        help="stand-in BNN 1-sigma errors (JSON)",
    )
    parser.add_argument("--json", help="write the per-fit rows here")
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    comparison_config = config["p21_comparison"]
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=") for item in args.search)}
    overrides = {**comparison_config.get("search", {}), **overrides}  # as `p21_fit`: the comparison's search
    power_law = args.set.startswith("power_law")
    shard_size = config["p21_testsets"]["shard_size"]
    settings = {
        "modelling": config["modelling"],
        "inversion": {**config["inversion"], **comparison_config.get("inversion", {})},
        "search": overrides,
        "priors": informed_priors.PriorSettings.from_config(
            comparison_config["priors"], config["masking"]["smooth_pixels"]
        ),
        "power_law": power_law,
    }
    search = modelling.SearchSettings.from_config(config["modelling"]["search"], overrides)
    print(f"search: {search}", flush=True)
    rng = np.random.default_rng(7)
    sigmas = json.loads(args.sigmas)
    rows = []
    for index in args.lenses:
        shard = f"shard-{index // shard_size:05d}.h5"
        root = Path(args.root) / "results"
        sim, mask = root / "simulate" / f"p21_{args.set}" / shard, root / "mask" / f"p21_{args.set}" / shard
        lens = io.read_lens(str(sim), str(mask), index % shard_size)
        prediction = stand_in_prediction(lens["truth"], sigmas, rng, power_law)
        for method in args.methods:
            scratch = tempfile.mkdtemp(prefix="p21cost-")
            modelling.configure(scratch)
            start = time.perf_counter()
            row, reason = comparison.fit_lens(lens, method, prediction, settings, 100 + index, _Log())
            wall = time.perf_counter() - start
            shutil.rmtree(scratch, ignore_errors=True)
            out = {
                "lens": index,
                "method": method,
                "reason": reason,
                "wall_s": wall,
                "calls": row.get("n_calls", np.nan),
                "einstein_radius": row.get("ml_einstein_radius", np.nan),
                "true_einstein_radius": lens["truth"]["einstein_radius"],
            }
            rows.append(out)
            print(json.dumps(out), flush=True)
    print(f"\n{'method':14s} {'fits':>4s} {'mean s':>8s} {'mean calls':>10s} {'cap hits':>8s} {'speed-up':>8s}")
    blind = np.mean([r["wall_s"] for r in rows if r["method"] == "blind"]) if "blind" in args.methods else np.nan
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        mean_s = np.mean([r["wall_s"] for r in mine])
        caps = sum(r["reason"] == ComparisonFlag.CALL_CAP.meaning for r in mine)
        calls = np.mean([r["calls"] for r in mine])
        print(f"{method:14s} {len(mine):4d} {mean_s:8.1f} {calls:10.0f} {caps:8d} {blind / mean_s:8.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


class _Log:
    """`fit_lens` logs failures; print them."""

    def exception(self, message, *args):
        print("ERROR", message % args, file=sys.stderr)

    def info(self, message, *args):
        print(message % args)


if __name__ == "__main__":
    main()
