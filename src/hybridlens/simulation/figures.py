"""Figures of the simulations: M21 Fig 3 (SLACS-like lenses) and P21 Fig 1 (training images), with their masks."""

import numpy as np

from hybridlens.analysis.evaluation import describe
from hybridlens.plotting import gallery, numbers

SOURCE_TYPE_NAMES = ("Sérsic", "Gaussian", "multi-Sérsic")
ANNULUS_COLUMNS = ["inner_radius", "outer_radius", "centre_y", "centre_x"]
TRAINING_COLUMNS = (
    "einstein_radius",
    "axis_ratio",
    "slope",
    "magnification",
    "snr",
    "source_half_light_radius",
    "image_separation",
    "velocity_dispersion",
)  # described per mass model in the P21 Fig 1 summary


def _annuli(mask_params, rows):
    return [tuple(mask_params.loc[i, ANNULUS_COLUMNS]) for i in rows]


def _flag_counts(flags, bits):
    return {meaning: int(np.count_nonzero(np.asarray(flags) & bit)) for bit, meaning in bits.items()}


def slacs_gallery(sims, masks, n, pixel_scale, mask_bits):
    """M21 Fig 3: SLACS-like lenses, each normalised to its peak, with their annuli.

    `sims` is (parameter table, the first images, source components) and `masks`
    the mask parameter table (one row per image, shard order); returns the
    figure and its summary: statistics of the whole set, and under "plotted"
    each stamp's row, theta_E, q, peak and annulus.
    """
    params, images, components = sims
    mask_params = masks
    rows = list(range(min(n, len(images))))
    titles = [f"θE={params.loc[i, 'einstein_radius']:.2f}″ q={params.loc[i, 'axis_ratio']:.2f}" for i in rows]
    fig, shown = gallery(images[rows], pixel_scale, _annuli(mask_params, rows), titles, n_cols=min(6, len(rows)))
    fraction = mask_params["model_flux_fraction"]
    summary = {
        "n_images": int(len(params)),
        "einstein_radius": describe(params["einstein_radius"]),
        "axis_ratio": describe(params["axis_ratio"]),
        "source_sersic_index": describe(components["sersic_index"][:, 0]),
        "source_effective_radius": describe(components["effective_radius"][:, 0]),
        "source_intensity": describe(components["intensity"][:, 0]),
        "mask_inner_radius": describe(mask_params["inner_radius"]),
        "mask_outer_radius": describe(mask_params["outer_radius"]),
        "mask_model_flux_fraction": describe(fraction),
        "fraction_of_masks_keeping_99pc_flux": float(np.mean(fraction[np.isfinite(fraction)] >= 0.99)),
        "mask_flags": _flag_counts(mask_params["flags"], mask_bits),
        "plotted": {
            "rows": rows,
            "einstein_radius": numbers(params.loc[rows, "einstein_radius"]),
            "axis_ratio": numbers(params.loc[rows, "axis_ratio"]),
            "peaks": shown["peaks"],
            "annuli": shown["annuli"],
            "annulus_columns": ANNULUS_COLUMNS,
        },
    }
    return fig, summary


def training_gallery(datasets, n, pixel_scale, mask_bits):
    """P21 Fig 1: training images by source type (rows), annuli drawn on them.

    `datasets` maps a mass model to (params, images, mask params, rejections).
    Returns the figure and its summary: per mass model the statistics of its
    set, and under "plotted" per source type the stamps drawn (mass model, row,
    theta_E, peak, annulus; None for an empty place).
    """
    per_row = max(1, n // len(SOURCE_TYPE_NAMES))
    images, annuli, titles, stamps = [], [], [], []
    for source_type in range(len(SOURCE_TYPE_NAMES)):
        picked = []
        for model, (params, stack, mask_params, _) in datasets.items():
            rows = np.flatnonzero(params["source_type"].to_numpy() == source_type)
            picked += [(model, i, stack, params, mask_params) for i in rows]
        picked = sorted(picked, key=lambda item: item[1])[:per_row]
        picked += [None] * (per_row - len(picked))
        for item in picked:
            if item is None:
                images.append(np.full((2, 2), np.nan))
                annuli.append(None)
                titles.append("")
                stamps.append(None)
                continue
            model, i, stack, params, mask_params = item
            images.append(stack[i])
            annuli.append(_annuli(mask_params, [i])[0])
            titles.append(f"{model} θE={params.loc[i, 'einstein_radius']:.2f}″")
            stamps.append({"model": model, "row": int(i), "einstein_radius": float(params.loc[i, "einstein_radius"])})
    fig, shown = gallery(images, pixel_scale, annuli, titles, n_cols=per_row, row_labels=list(SOURCE_TYPE_NAMES))
    summary = {}
    for model, (params, _, mask_params, rejections) in datasets.items():
        attempts = params["n_attempts"].sum()
        accepted = params["flags"].eq(0).sum()
        counts = params["source_type"].value_counts(normalize=True)
        summary[model] = {
            "n_images": int(len(params)),
            "n_not_simulated": int(len(params) - accepted),
            "acceptance_rate": float(accepted / attempts) if attempts else float("nan"),
            "rejections": rejections,
            "source_type_fraction": {
                name: float(counts.get(float(k), 0.0)) for k, name in enumerate(SOURCE_TYPE_NAMES)
            },
            **{column: describe(params[column]) for column in TRAINING_COLUMNS},
            "mask_model_flux_fraction": describe(mask_params["model_flux_fraction"]),
            "mask_flags": _flag_counts(mask_params["flags"], mask_bits),
        }
    for k, stamp in enumerate(stamps):
        if stamp is not None:
            stamp.update(peak=shown["peaks"][k], annulus=shown["annuli"][k])
    summary["plotted"] = {
        "annulus_columns": ANNULUS_COLUMNS,
        "stamps": {name: stamps[row * per_row : (row + 1) * per_row] for row, name in enumerate(SOURCE_TYPE_NAMES)},
    }
    return fig, summary
