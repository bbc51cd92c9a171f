"""Time simulation and masking per image, against plain PyAutoLens.

Baseline: what a script would do with PyAutoLens alone, a fresh grid and
`al.SimulatorImaging(...).via_tracer_from` per image. Ours reuses the padded
over-sampled grid and PSF of the survey (`simulate.Renderer`).

P21 training images: the PyAutoLens path (`simulate.training_image`, one
candidate at a time) against the batched one (`batched.training_images`), run
as the workflow runs shards: one single-threaded process per core.

    python benchmarks/simulate_and_mask.py [--images 20] [--training-images 500] [--processes 2]
"""

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import autolens as al
import numpy as np

from hybridlens import config as hlconfig
from hybridlens.reconstruction import masking
from hybridlens.simulation import batched, lenses, simulate, sources


def timed(function, repeats):
    start = time.perf_counter()
    outputs = [function(i) for i in range(repeats)]
    return (time.perf_counter() - start) / repeats, outputs


def batched_chunk(job):
    """Simulate one chunk of P21 images on one thread, as a `simulate_training` shard does; returns the count."""
    import torch

    torch.set_num_threads(1)
    settings, survey, model, indices = job
    renderer = batched.BatchRenderer.for_survey(survey, settings["over_sample"])
    results = batched.training_images([simulate.image_rng(2, model, i) for i in indices], settings, renderer, model)
    return sum(not r.flags for r in results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--training-images", type=int, default=500, help="per process, batched P21 path")
    parser.add_argument("--processes", type=int, default=2, help="one-thread processes, as the workflow's shards")
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    args = parser.parse_args()
    cfg = hlconfig.load(args.config)
    survey_settings = hlconfig.survey_settings(cfg, "simulate_slacs")
    slacs = cfg["simulate_slacs"]
    survey = simulate.Survey.from_settings(survey_settings)
    renderer = simulate.Renderer(survey, slacs["over_sample"])
    renderer.convolve(renderer.unconvolved(al.Galaxy(redshift=0.5, light=al.lp.Sersic())))  # warm-up

    ours, sims = timed(
        lambda i: simulate.slacs_image(simulate.image_rng(1, "slacs", i), slacs, renderer, survey), args.images
    )

    def baseline(i):
        sim = sims[i]
        p = sim.params
        mass = lenses.mass_profile("sie", (0, 0), p["einstein_radius"], p["axis_ratio"], p["angle"])
        tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), sources.galaxy(sim.components, 1.0)])
        grid = al.Grid2D.uniform(shape_native=survey.shape, pixel_scales=survey.pixel_scale, over_sample_size=4)
        psf = al.Convolver.from_gaussian(
            shape_native=renderer.psf.shape, pixel_scales=survey.pixel_scale, sigma=survey.psf_sigma
        )
        simulator = al.SimulatorImaging(
            exposure_time=survey.exposure_time,
            background_sky_level=survey.sky_level,
            psf=psf,
            add_poisson_noise_to_data=True,
            noise_seed=i,
        )
        return simulator.via_tracer_from(tracer=tracer, grid=grid)

    plain, _ = timed(baseline, args.images)
    print(
        f"M21 simulation : {ours * 1e3:7.1f} ms/image (PyAutoLens SimulatorImaging per image: "
        f"{plain * 1e3:.1f} ms, ratio x{plain / ours:.2f}; ours includes the multiple-image check)"
    )

    training = cfg["simulate_training"]
    tsurvey = simulate.Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_training"))
    trenderer = simulate.Renderer(tsurvey, training["over_sample"])
    for model in training["mass_models"]:
        n_old = max(3, args.images // 4)
        per_image, results = timed(
            lambda i: simulate.training_image(simulate.image_rng(1, model, i), training, trenderer, model), n_old
        )
        attempts = sum(r.params["n_attempts"] for r in results)
        chunks = [range(k * args.training_images, (k + 1) * args.training_images) for k in range(args.processes)]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.processes) as pool:
            done = list(pool.map(batched_chunk, [(training, tsurvey, model, chunk) for chunk in chunks]))
        rate = sum(done) / (time.perf_counter() - start)
        print(
            f"P21 {model:9s}: PyAutoLens path {per_image * 1e3:7.1f} ms/accepted image "
            f"({per_image * len(results) / attempts * 1e3:.1f} ms/draw, acceptance {len(results) / attempts:.2f}); "
            f"batched {rate:.1f} accepted images/s on {args.processes} processes x 1 thread "
            f"(x{rate * per_image:.1f} the PyAutoLens path on one core, x{rate * per_image / args.processes:.1f} per core)"
        )

    images = np.stack([s.image for s in sims])
    per_mask, _ = timed(lambda i: masking.fit_annulus(images[i], survey.pixel_scale), len(images))
    print(f"annular mask   : {per_mask * 1e3:7.2f} ms/image")


if __name__ == "__main__":
    main()
