"""Would real fits' own reconstructions, labelled by the truth, teach the classifier to judge real fits?

Leave one lens out: a run's classifier (`results/classifier/model.h5`) is trained on
for `--epochs` more epochs on its own training pairs plus every real fit of the
*other* blind lenses (M21's loop and, where run, the guarded loop; `--repeat` copies
of each per epoch), labelled by the truth's class of its theta_E; then it judges the
held-out lens's fits. Printed beside it: the run's classifier as it was, and the
guarded loop's judge (`hybrid.judge_verdicts`, the arcs' traced positions where they
split, else the classifier), which needs no training.

    python benchmarks/classifier_real_fits.py --run RUN_DIR [--config ...] [--epochs 3 --repeat 6] [--held-out 12 13]
    python benchmarks/classifier_real_fits.py --run RUN_DIR --lenses 24 25 ... --judge-only

`--judge-only` trains nothing: the run's classifier and the judge on the chosen lenses' fits, per loop and in all.
With `--model M.h5` (another run's `results/classifier/model.h5`, e.g. one trained on other pairs) that
classifier judges the same fits too, beside the verdicts the loops recorded.

    python benchmarks/classifier_real_fits.py --run RUN_DIR --fresh [--config ... EXTRA.yaml]

`--fresh` trains a classifier anew with the config's `classifier` settings on the run's own
training pairs (the image-plane maps computed for shards made before they were kept) and
judges the run's real fits with it, beside the run's classifier and the judge: classifier
settings compared on real fits without rerunning the loops.
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

import h5py
import numpy as np
import pandas as pd
import torch

from hybridlens import config as hlconfig
from hybridlens import io
from hybridlens.analysis.evaluation import confusion_matrix
from hybridlens.fitting import hybrid
from hybridlens.networks import training
from hybridlens.reconstruction import inversion, positions

IMAGES = hybrid.IMAGE_NAMES
LOOPS = ("hybrid", "guarded")  # results/<loop>/lens-*.h5: M21's loop, the guarded loop
REAL_LENS_OFFSET = 10**6  # real fits' lens indices in the shard, kept apart from the training pairs'


def real_fits(results, cfg):
    """Every fitted round of both loops with a truth class (no 'between'), its images and the judge's verdict."""
    settings = positions.PositionSettings.from_config(cfg["model_lenses"]["positions"])
    size = cfg["hybrid_modelling"]["shard_size"]
    rows = []
    for loop in LOOPS:
        for path in sorted((results / loop).glob("lens-*.h5")):
            table = io.read_params([path])
            index = int(path.stem.split("-")[1])
            shard = f"shard-{index // size:05d}.h5"
            lens = io.read_lens(
                results / "simulate" / "blind" / shard, results / "mask" / "blind" / shard, index % size
            )
            # M21's loop (and fits stored before the multiply-imaged check): traced after the fact
            if settings is not None and "position_lensed" not in table:
                table = table.assign(
                    **hybrid.traced_columns(table, {index: hybrid.lens_peaks(lens, settings)}, settings)
                )
            judged = hybrid.judge_verdicts(table)
            with h5py.File(path, "r") as h5:
                images = {name: h5[name][()] for name in IMAGES if name in h5}
            if any(name not in images for name in IMAGES):
                images.update(stored_before_maps(lens, table, images["residual"]))
            for i, row in enumerate(table.to_dict("records")):
                theta = row.get("median_einstein_radius", np.nan)
                if not np.isfinite(row.get("verdict", np.nan)) or not np.isfinite(images["source"][i]).any():
                    continue
                name = hybrid.truth_class(
                    theta, lens["truth"]["einstein_radius"], cfg["calibrate_relations"]["class_ratio_ranges"]
                )
                if name == "between":
                    continue
                rows.append(
                    {"loop": loop, "lens": index, "label": hybrid.CLASSES.index(name), "verdict": int(row["verdict"])}
                    | {"judge": int(judged[i]), "ratio": theta / lens["truth"]["einstein_radius"]}
                    | {name: row.get(name, np.nan) for name in hybrid.POSITION_COLUMNS}
                    | {name: images[name][i] for name in IMAGES}
                )
    return rows


def stored_before_maps(lens, table, residuals):
    """The image-plane maps of fits stored before they were kept: the mask is where the residual is set."""
    pixel_scale = lens["survey"]["pixel_scale"]
    maps = {name: np.full(residuals.shape, np.nan) for name in hybrid.IMAGE_PLANE_MAPS}
    for i, row in enumerate(table.to_dict("records")):
        if not np.isfinite(row.get("ml_einstein_radius", np.nan)):
            continue
        mass = inversion.Mass.from_parameters(row, "ml_")
        for name, image in image_plane_maps(lens["image"], lens["noise_map"], residuals[i], mass, pixel_scale).items():
            maps[name][i] = image
    return maps


def image_plane_maps(image, noise_map, residual, mass, pixel_scale):
    """`inversion.Products`' maps of a stored pair: the mask is where its residual is set."""
    return {
        "signal_to_noise": inversion.signal_to_noise_map(image, noise_map, residual != 0),
        "critical_curve": inversion.critical_curve_map(inversion.MaskedLens.profile(mass), residual.shape, pixel_scale),
    }


def shards_with_maps(results, scratch):
    """The run's training shards; one made before the image-plane maps were kept is copied with them."""
    paths = []
    for path in sorted((results / "trainingset" / "slacs").glob("shard-*.h5")):
        with h5py.File(path, "r") as h5:
            complete = all(name in h5 for name in hybrid.IMAGE_PLANE_MAPS)
        if complete:
            paths.append(path)
            continue
        copy = Path(scratch) / path.name
        shutil.copy(path, copy)
        with h5py.File(copy, "a") as h5, h5py.File(results / "simulate" / "slacs" / path.name, "r") as sim:
            pixel_scale = json.loads(sim.attrs["survey"])["pixel_scale"]
            params = {name: h5["params"][name][()] for name in h5["params"]}
            maps = {name: np.zeros(h5["residual"].shape, np.float32) for name in hybrid.IMAGE_PLANE_MAPS}
            for j in np.flatnonzero(h5["flags"][()] == 0):
                lens_row, residual = int(params["lens_row"][j]), h5["residual"][j]
                mass = inversion.Mass.from_parameters({name: values[j] for name, values in params.items()})
                image, noise_map = sim["image"][lens_row], sim["noise_map"][lens_row]
                for name, array in image_plane_maps(image, noise_map, residual, mass, pixel_scale).items():
                    maps[name][j] = array
            for name, array in maps.items():
                h5[name] = array
        paths.append(copy)
    return paths


def judge_fresh(rows, results, settings, seed):
    """A classifier trained anew with `settings` on the run's pairs: validation accuracy, then the real fits."""
    with tempfile.TemporaryDirectory() as scratch:
        splits = training.split_by_lens(training.catalogue(shards_with_maps(results, scratch)), settings["split"], seed)
        began = time.perf_counter()
        model, history = training.train(splits, settings, Path(scratch) / "checkpoint.pt", seed, log=lambda _: None)
        print(f"trained anew in {time.perf_counter() - began:.0f} s")
        labels = np.array([entry.label for entry in splits["validation"]])
        shard = Path(scratch) / "real.h5"
        write_shard(shard, rows)
        real = training.catalogue([shard])
        for views in sorted({1, 8, int(settings.get("views", 1))}):
            chosen = {**settings, "views": views}
            validation = np.argmax(training.predict(model, splits["validation"], chosen), 1)
            fits = np.argmax(training.predict(model, real, chosen), 1)
            print(
                f"{views} view(s): validation accuracy {np.mean(validation == labels):.3f}, "
                f"real fits {np.mean(fits == [row['label'] for row in rows]):.3f} on {len(rows)}"
            )
        probabilities = training.predict(model, real, settings)
    for row, p in zip(rows, probabilities):
        row["fresh"] = int(np.argmax(p))
        checked = {key: row[key] for key in hybrid.POSITION_COLUMNS}
        row["judge_fresh"] = int(hybrid.judge_verdicts(pd.DataFrame([checked | {"verdict": row["fresh"]}]))[0])
    for name, chosen in per_loop(rows):
        if chosen:
            print(f"\n{name} fits (rows: truth U / C / O):")
            print(f"  run's classifier               {confusion(chosen, 'verdict')}")
            print(f"  trained anew                   {confusion(chosen, 'fresh')}")
            print(f"  the loop's judge               {confusion(chosen, 'judge')}")
            print(f"  the judge, classifier anew     {confusion(chosen, 'judge_fresh')}")


def write_shard(path, rows):
    """The real fits as a training-set shard (`training.catalogue` reads it); lens indices kept apart from the pairs'."""
    with h5py.File(path, "w") as h5:
        for name in IMAGES:
            h5[name] = np.array([row[name] for row in rows])
        h5["flags"] = np.zeros(len(rows), np.uint8)
        h5["index"] = np.array([REAL_LENS_OFFSET + row["lens"] for row in rows])
        h5["params/label"] = np.array([row["label"] for row in rows])
        h5.attrs["config_sha256"] = "real fits"


def per_loop(rows):
    """(name, fits) of each loop, then ("all", every fit)."""
    return [(loop, [row for row in rows if row["loop"] == loop]) for loop in LOOPS] + [("all", rows)]


def confusion(rows, key):
    counts = confusion_matrix([row["label"] for row in rows], [row[key] for row in rows], 3)
    return f"{np.trace(counts) / max(counts.sum(), 1):.3f} on {counts.sum()}, confusion {counts.tolist()}"


def print_judged(rows):
    """Each lens's fits (truth, classifier, judge, theta_E / truth), then the confusion per loop and in all."""
    for loop in LOOPS:
        for lens in sorted({row["lens"] for row in rows if row["loop"] == loop}):
            fits = [row for row in rows if row["loop"] == loop and row["lens"] == lens]
            print(
                f"{loop:8s} lens {lens:3d}: truth {[row['label'] for row in fits]}, classifier "
                f"{[row['verdict'] for row in fits]}, judge {[row['judge'] for row in fits]}, "
                f"theta_E / truth {[round(float(row['ratio']), 3) for row in fits]}"
            )
    for name, chosen in per_loop(rows):
        if chosen:
            print(f"\n{name} fits (rows: truth U / C / O):")
            print(f"  run's classifier {confusion(chosen, 'verdict')}")
            print(f"  the loop's judge {confusion(chosen, 'judge')}")


def judge_with(rows, path, settings):
    """Verdicts of the classifier stored in `path` on the fits (`row["model"]`), printed per loop and in all."""
    model = training.build_model(settings)
    model.load_state_dict(training.state_from_hdf5(path))
    with tempfile.TemporaryDirectory() as scratch:
        shard = Path(scratch) / "real.h5"
        write_shard(shard, rows)
        probabilities = training.predict(model, training.catalogue([shard]), settings)
    for row, p in zip(rows, probabilities):
        row["model"] = int(np.argmax(p))
    for name, chosen in per_loop(rows):
        if chosen:
            print(f"{name} fits, {path}: {confusion(chosen, 'model')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT), help="a run's directory (holding results/)")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    parser.add_argument("--epochs", type=int, default=3, help="epochs trained on from the run's weights")
    parser.add_argument("--repeat", type=int, default=6, help="copies of each real fit per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out", nargs="+", type=int, help="lenses to hold out in turn (default: every lens)")
    parser.add_argument("--lenses", nargs="+", type=int, help="only these blind lenses' fits (default: every one)")
    parser.add_argument("--judge-only", action="store_true", help="no training: the run's classifier and the judge")
    parser.add_argument("--fresh", action="store_true", help="a classifier trained anew with the config's settings")
    parser.add_argument("--model", help="with --judge-only: this classifier (a model.h5) judges the fits too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = hlconfig.load(*args.config)
    settings = {**cfg["classifier"], "progress_bar": False}
    results = Path(args.run) / "results"
    rows = [row for row in real_fits(results, cfg) if args.lenses is None or row["lens"] in args.lenses]
    if args.judge_only:
        print_judged(rows)
        if args.model:
            judge_with(rows, args.model, settings)
        return
    if args.fresh:
        judge_fresh(rows, results, settings, cfg["seed"])
        return
    pairs = training.split_by_lens(
        training.catalogue(sorted((results / "trainingset" / "slacs").glob("shard-*.h5"))),
        settings["split"],
        cfg["seed"],
    )["train"]
    base = training.state_from_hdf5(results / "classifier" / "model.h5")
    with tempfile.TemporaryDirectory() as scratch:
        shard = Path(scratch) / "real.h5"
        write_shard(shard, rows)
        entries = training.catalogue([shard])
        for lens in args.held_out or sorted({row["lens"] for row in rows}):
            began = time.perf_counter()
            model = training.build_model(settings)
            model.load_state_dict(base)
            optimiser = torch.optim.NAdam(model.parameters(), lr=settings["learning_rate"])
            scaler = torch.amp.GradScaler("cpu", enabled=False)
            generator = torch.Generator().manual_seed(cfg["seed"] + lens)
            torch.manual_seed(cfg["seed"] + lens)
            others = [e for e in entries if e.lens_index != REAL_LENS_OFFSET + lens]
            with training.deterministic():
                for _ in range(args.epochs):
                    loader = training._loader(pairs + others * args.repeat, settings, True, generator)
                    training.run_epoch(model, loader, torch.device("cpu"), optimiser, scaler, generator)
            held = [i for i, e in enumerate(entries) if e.lens_index == REAL_LENS_OFFSET + lens]
            probabilities = training.predict(model, [entries[i] for i in held], settings)
            for i, p in zip(held, probabilities):
                rows[i]["trained"] = int(np.argmax(p))
                # the judge with the trained classifier behind the positions
                checked = {key: rows[i][key] for key in hybrid.POSITION_COLUMNS}
                judged = hybrid.judge_verdicts(pd.DataFrame([checked | {"verdict": rows[i]["trained"]}]))
                rows[i]["judge_trained"] = int(judged[0])
            print(
                f"lens {lens:3d}: truth {[rows[i]['label'] for i in held]}, run's classifier "
                f"{[rows[i]['verdict'] for i in held]}, trained on the others' fits "
                f"{[rows[i]['trained'] for i in held]}, judge {[rows[i]['judge'] for i in held]} "
                f"({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    for loop in LOOPS:
        chosen = [row for row in rows if row["loop"] == loop and "trained" in row]
        if chosen:
            print(f"\n{loop} loop's fits (rows: truth U / C / O):")
            print(f"  run's classifier              {confusion(chosen, 'verdict')}")
            print(f"  + other lenses' real fits     {confusion(chosen, 'trained')}")
            print(f"  the loop's judge (untrained)  {confusion(chosen, 'judge')}")
            print(f"  the judge, trained classifier {confusion(chosen, 'judge_trained')}")


if __name__ == "__main__":
    main()
