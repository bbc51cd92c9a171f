"""The own-lens path on survey-style cutouts with a known truth: centre, theta_E, q, phi, verdicts, cost.

`make` writes N cutouts (doubles and quads, with and without the lens galaxy's light,
the lens up to 3 pixels off the stamp centre; `simulation.survey_cutouts`, its own
random stream) as FITS files, their truths as a CSV and a config file naming them, each
lens's `lens_light` set as its user would (model where the light is in, subtracted
where not). Run the pipeline on them as a user does, then `score` the catalogue:

    python benchmarks/own_cutouts.py make --out results/own_bench --n 12
    snakemake results/lenses/catalogue.csv --cores 2 --configfile config/config.yaml results/own_bench/own.yaml
    python benchmarks/own_cutouts.py score --out results/own_bench [--json out.json]

"Right" is `analysis.evaluation.correct_by_truth`: theta_E within 5 %, centre within
0.1", q within 0.1. The table also gives the centre the loop started from (the lens
light's or the stamp's) and its error.
"""

import argparse
import json
import os
import zlib
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import pandas as pd

from hybridlens import config as hlconfig
from hybridlens.analysis.evaluation import angle_error, correct_by_truth
from hybridlens.simulation import simulate, survey_cutouts
from hybridlens.simulation.survey import Survey

STREAM = "own_cutouts"


def make(out, n, seed):
    cfg = hlconfig.load(ROOT / "config" / "config.yaml")
    settings = cfg["simulate_training"]
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_training"))
    renderer = simulate.Renderer(survey, settings["over_sample"])
    out = Path(out).resolve()
    (out / "cutouts").mkdir(parents=True, exist_ok=True)
    rows, per_lens = [], {}
    for index in range(n):
        kind = ("double", "quad")[index % 2]
        with_light = index % 4 < 2
        rng = np.random.default_rng([seed, zlib.crc32(STREAM.encode()), index])
        cutout = survey_cutouts.survey_cutout(rng, settings, renderer, kind, with_light)
        name = f"{kind}-{'light' if with_light else 'nolight'}-{index:02d}"
        survey_cutouts.write(out / "cutouts" / f"{name}.fits", cutout, survey.pixel_scale)
        rows.append({"name": name, "kind": kind, **cutout.truth})
        per_lens[name] = {"lens_light": "model" if with_light else "subtracted"}
        print(name, {k: round(float(v), 3) for k, v in cutout.truth.items()})
    pd.DataFrame(rows).to_csv(out / "truth.csv", index=False)
    files = os.path.relpath(out / "cutouts", ROOT) + "/*.fits"
    (out / "own.yaml").write_text(
        json.dumps({"model_lenses": {"files": [files], "noise": {"hdu": "NOISE"}, "per_lens": per_lens}}, indent=1)
    )
    print(f"wrote {n} cutouts, {out / 'truth.csv'} and {out / 'own.yaml'}")


def score(out, catalogue, json_path):
    truth = pd.read_csv(Path(out) / "truth.csv").set_index("name")
    found = pd.read_csv(catalogue).set_index("name").join(truth, rsuffix="_true", how="inner")
    start_y = found.get("light_centre_y", pd.Series(np.nan, found.index)).where(found["centre_source"] == "light", 0.0)
    start_x = found.get("light_centre_x", pd.Series(np.nan, found.index)).where(found["centre_source"] == "light", 0.0)
    found["start_centre_error"] = np.hypot(start_y - found["lens_centre_y"], start_x - found["lens_centre_x"])
    found["centre_error"] = np.hypot(
        found["centre_y"] - found["lens_centre_y"], found["centre_x"] - found["lens_centre_x"]
    )
    found["theta_ratio"] = found["einstein_radius"] / found["einstein_radius_true"]
    found["q_error"] = (found["axis_ratio"] - found["axis_ratio_true"]).abs()
    found["phi_error"] = angle_error(found["angle"], found["angle_true"])
    found["right"] = correct_by_truth(
        found["einstein_radius"],
        found["axis_ratio"],
        found["centre_y"],
        found["centre_x"],
        found["einstein_radius_true"],
        found["axis_ratio_true"],
        found["lens_centre_y"],
        found["lens_centre_x"],
    )
    accepted = found["final_action"] == "accept"
    limit = hlconfig.load(ROOT / "config" / "config.yaml")["model_lenses"]["positions"]["max_spread"]
    columns = ["centre_source", "start_centre_error", "centre_error", "theta_ratio", "q_error", "phi_error"]
    columns += ["verdict", "final_action", "fits", "seconds", "right", "position_spread", "joint_light"]
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(found[columns])
    summary = {
        "lenses": int(len(found)),
        "start_centre_error_median": float(found["start_centre_error"].median()),
        "centre_error_median": float(found["centre_error"].median()),
        "accepted": int(accepted.sum()),
        "accepted_right": int((accepted & found["right"]).sum()),
        # an accepted lens whose images do not meet in the source plane: a split source
        "accepted_split": int((accepted & (found["position_spread"] > limit)).sum()),
        "right": int(found["right"].sum()),
        "fits_per_lens": float(found["fits"].mean()),
        "seconds_per_lens_median": float(found["seconds"].median()),
        "by_light": {
            str(k): {
                "lenses": int(len(g)),
                "right": int(g["right"].sum()),
                "accepted": int((g["final_action"] == "accept").sum()),
            }
            for k, g in found.groupby("lens_light")
        },
    }
    print(json.dumps(summary, indent=1))
    if json_path:
        Path(json_path).write_text(
            json.dumps({"summary": summary, "lenses": found[columns].reset_index().to_dict("records")}, default=str)
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["make", "score"])
    parser.add_argument("--out", default="results/own_bench")
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--catalogue", default="results/lenses/catalogue.csv")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.action == "make":
        make(args.out, args.n, args.seed)
    else:
        score(args.out, args.catalogue, args.json)


if __name__ == "__main__":
    main()
