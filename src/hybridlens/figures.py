"""Figures, each written with a JSON of the numbers it shows.

The JSON lets a run be compared with the papers (and with another run)
without reading pixels.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from hybridlens.analysis.evaluation import angle_error, describe  # noqa: E402

SOURCE_TYPE_NAMES = ("Sérsic", "Gaussian", "multi-Sérsic")


def save(fig, stem, formats, summary):
    """Write `stem`.<format> for each format and `stem`.json (unless `summary` is None)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    if summary is not None:
        with open(stem.with_suffix(".json"), "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True, default=float)
    return paths


def _show(ax, image, pixel_scale, annulus=None):
    """One stamp, colour scale normalised to its peak (as M21 Fig 3)."""
    half_y, half_x = image.shape[0] * pixel_scale / 2, image.shape[1] * pixel_scale / 2
    peak = np.nanmax(image) if np.isfinite(image).any() else 1.0
    ax.imshow(
        image / peak, origin="upper", cmap="inferno", vmin=0.0, vmax=1.0, extent=(-half_x, half_x, -half_y, half_y)
    )
    if annulus is not None and np.isfinite(annulus[0]):
        inner, outer, cy, cx = annulus
        for radius in (inner, outer):
            ax.add_patch(Circle((cx, cy), radius, fill=False, color="cyan", lw=0.8, ls="--"))
    ax.set_xticks([])
    ax.set_yticks([])


def gallery(images, pixel_scale, annuli, titles, n_cols, row_labels=None):
    """A grid of stamps; `annuli[i]` is (inner, outer, centre_y, centre_x) or None."""
    n_rows = int(np.ceil(len(images) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.0 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.ravel()[i]
        ax.axis("on")
        _show(ax, image, pixel_scale, annuli[i])
        ax.set_title(titles[i], fontsize=7)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


def _annuli(mask_params, rows):
    return [tuple(mask_params.loc[i, ["inner_radius", "outer_radius", "centre_y", "centre_x"]]) for i in rows]


def _flag_counts(flags, bits):
    return {meaning: int(np.count_nonzero(np.asarray(flags) & bit)) for bit, meaning in bits.items()}


def slacs_gallery(sims, masks, n, pixel_scale, mask_bits):
    """M21 Fig 3: SLACS-like lenses, each normalised to its peak, with their annuli.

    `sims` and `masks` are parameter tables (one row per image, shard order) and
    the first images; returns the figure and its summary numbers.
    """
    params, images, components = sims
    mask_params = masks
    rows = list(range(min(n, len(images))))
    titles = [f"θE={params.loc[i, 'einstein_radius']:.2f}″ q={params.loc[i, 'axis_ratio']:.2f}" for i in rows]
    fig = gallery(images[rows], pixel_scale, _annuli(mask_params, rows), titles, n_cols=min(6, len(rows)))
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
    }
    return fig, summary


def training_gallery(datasets, n, pixel_scale, mask_bits):
    """P21 Fig 1: training images by source type (rows), annuli drawn on them.

    `datasets` maps a mass model to (params, images, mask params, shard attrs).
    """
    per_row = max(1, n // len(SOURCE_TYPE_NAMES))
    images, annuli, titles = [], [], []
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
                continue
            model, i, stack, params, mask_params = item
            images.append(stack[i])
            annuli.append(_annuli(mask_params, [i])[0])
            titles.append(f"{model} θE={params.loc[i, 'einstein_radius']:.2f}″")
    fig = gallery(images, pixel_scale, annuli, titles, n_cols=per_row, row_labels=list(SOURCE_TYPE_NAMES))
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
            **{
                column: describe(params[column])
                for column in ("einstein_radius", "axis_ratio", "slope", "magnification", "snr",
                               "source_half_light_radius", "image_separation", "velocity_dispersion")
            },  # fmt: skip
            "mask_model_flux_fraction": describe(mask_params["model_flux_fraction"]),
            "mask_flags": _flag_counts(mask_params["flags"], mask_bits),
        }
    return fig, summary


CLASS_COLOURS = {"under": "tab:blue", "correct": "tab:green", "over": "tab:red"}


def calibration_scatter(table, column, classes, relations=None, reference=None, unit=""):
    """M21 Figs 4-6: inferred vs true parameter per solution class, with fitted lines."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    truth = table[f"truth_{column}"].to_numpy()
    span = np.array([np.nanmin(truth), np.nanmax(truth)]) if np.isfinite(truth).any() else np.array([0.0, 1.0])
    for label, name in enumerate(classes):
        rows = table[table["label"] == label]
        ax.scatter(rows[f"truth_{column}"], rows[f"ml_{column}"], s=14, color=CLASS_COLOURS[name], label=name)
        line = (relations or {}).get(name)
        if line is not None and np.isfinite(line["slope"]):
            ax.plot(span, line["slope"] * span + line["intercept"], color=CLASS_COLOURS[name],
                    label=f"ours: {line['slope']:.2f}x{line['intercept']:+.2f}")  # fmt: skip
        ref = (reference or {}).get(name)
        if ref is not None:
            ax.plot(span, ref["slope"] * span + ref["intercept"], color=CLASS_COLOURS[name], ls=":",
                    label=f"M21: {ref['slope']:.2f}x{ref['intercept']:+.2f}")  # fmt: skip
    ax.plot(span, span, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"true {column.replace('_', ' ')} {unit}")
    ax.set_ylabel(f"inferred {column.replace('_', ' ')} {unit}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def reconstruction_panels(observation, pairs, pixel_scale, classes):
    """M21 Fig 2: observation; per class the reconstruction, residual and chi-squared map."""
    fig, axes = plt.subplots(len(pairs), 4, figsize=(10, 2.6 * len(pairs)), squeeze=False)
    half = observation.shape[0] * pixel_scale / 2
    for row, (label, theta, _, products) in enumerate(pairs):
        ax_obs, ax_src, ax_res, ax_chi = axes[row]
        if row == 0:
            ax_obs.imshow(observation, cmap="inferno", extent=(-half, half, -half, half))
            ax_obs.set_title("observation", fontsize=8)
        ax_obs.axis("off")
        extent = products.source_extent
        low, high = robust_range(products.source)
        ax_src.imshow(products.source, cmap="inferno", vmin=low, vmax=high, extent=(-extent, extent, -extent, extent))
        ax_src.set_title(f"{classes[label]}: θE={theta:.3f}″, ln Z={products.log_evidence:.0f}", fontsize=8)
        limit = robust_range(np.abs(products.residual))[1]
        ax_res.imshow(products.residual, cmap="coolwarm", vmin=-limit, vmax=limit, extent=(-half, half, -half, half))
        ax_res.set_title("residual (data − model)", fontsize=8)
        ax_chi.imshow(
            products.chi_squared_map,
            cmap="viridis",
            vmin=0,
            vmax=robust_range(products.chi_squared_map)[1],
            extent=(-half, half, -half, half),
        )
        ax_chi.set_title(f"χ² = {products.chi_squared:.0f}", fontsize=8)
        for ax in (ax_src, ax_res, ax_chi):
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def robust_range(image, percentiles=(0.5, 99.5)):
    """Colour limits from percentiles of the non-zero pixels.

    An unconstrained (e.g. over-magnified) reconstruction has a few extreme
    pixels; scaled by its min / max it renders as one flat colour.
    """
    values = np.asarray(image, float)
    values = values[np.isfinite(values) & (values != 0)]
    if not values.size:
        return 0.0, 1.0
    low, high = np.percentile(values, percentiles)
    return float(low), float(high) if high > low else float(low) + 1.0


def evidence_slices(slices, class_ranges):
    """M21 Fig 7: ln evidence below its peak along theta_E / theta_true, class ranges shaded."""
    fig, axes = plt.subplots(
        1, len(slices), figsize=(4.2 * len(slices), 3.4), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, (ratios, evidence, title) in zip(axes[0], slices):
        for name, (low, high) in class_ranges.items():
            ax.axvspan(low, high, color=CLASS_COLOURS[name], alpha=0.12, label=name)
        finite = np.isfinite(evidence)
        evidence = np.asarray(evidence)[finite]
        ax.plot(np.asarray(ratios)[finite], evidence - evidence.max(), color="k", lw=1)
        ax.set_yscale("symlog", linthresh=10.0)
        ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.0] + [-(10.0**k) for k in range(1, 9)]))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("θE / θE,true")
        ax.set_title(title, fontsize=8)
    axes[0, 0].set_ylabel("ln Z − max ln Z")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    return fig


def confusion(fractions, classes, title):
    """M21 Figs 11-12: row-normalised confusion matrix."""
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{fractions[i, j]:.3f}", ha="center", va="center",
                    color="white" if fractions[i, j] > 0.5 else "black", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def class_ratio_histograms(ratios, relations, reference, theta_median):
    """theta / theta_true of the training set per class, with where the relations put it at the median theta_E."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
    bins = np.linspace(0.0, max(3.2, np.nanmax([np.nanmax(v) for v in ratios.values() if len(v)] + [0])), 65)
    for name, values in ratios.items():
        ax.hist(values, bins=bins, color=CLASS_COLOURS[name], alpha=0.6, label=f"{name} (n={len(values)})")
        for lines, style, who in ((relations, "-", "ours"), (reference, ":", "M21")):
            line = (lines or {}).get(name)
            if line is not None and np.isfinite(line.get("slope", np.nan)):
                ax.axvline(
                    (line["slope"] * theta_median + line["intercept"]) / theta_median,
                    color=CLASS_COLOURS[name],
                    ls=style,
                    lw=1,
                )
    ax.set_xlabel(f"θE / θE,true  (lines: relations at θE = {theta_median:.2f}″; solid ours, dotted M21)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=7)
    return fig


def hybrid_rounds(table, names, state_after, classes, truth_classes):
    """M21 Fig 13: theta_E and q fractional errors, |phi| error and class counts after each round."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    states = [state_after(table, number) for number in range(len(names))]
    panels = [
        (axes[0, 0], lambda s: s["median_einstein_radius"] / s["truth_einstein_radius"] - 1, r"$f_{\theta_E}$"),
        (axes[0, 1], lambda s: s["median_axis_ratio"] / s["truth_axis_ratio"] - 1, r"$f_q$"),
        (axes[1, 0], lambda s: angle_error(s["median_angle"], s["truth_angle"]), r"$|\Delta\phi|$ (deg)"),
    ]
    for ax, quantity, label in panels:
        values = [np.asarray(quantity(s), float) for s in states]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
        bins = np.linspace(*(np.percentile(finite, [0, 100]) if finite.size else (0, 1)), 21)
        for name, v in zip(names, values):
            ax.hist(v[np.isfinite(v)], bins=bins, histtype="step", lw=1.5, label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("lenses")
    axes[0, 0].legend(fontsize=8)
    ax = axes[1, 1]
    width = 0.8 / len(names)
    for k, (name, state) in enumerate(zip(names, states)):
        cnn = [(state["verdict"] == i).sum() for i in range(len(classes))]
        truth = [(state["truth_class"] == i).sum() for i in range(len(classes))]
        x = np.arange(len(classes)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, cnn, width, label=f"{name}: CNN", alpha=0.8)
        ax.scatter(x, truth, marker="_", s=200, color="k", zorder=3, label="by the truth" if k == 0 else None)
    ax.set_xticks(np.arange(len(classes)), ["UM", "C", "OM"])
    ax.set_ylabel("lenses")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


PARAMETER_LABELS = {
    "einstein_radius": r"$\theta_E$ (″)",
    "axis_ratio": "$q$",
    "angle": r"$\phi$ (°)",
    "slope": r"$\gamma$",
}


def coverage_sweep(rates, validation, gaussian, chosen):
    """P21 Fig 4: validation coverage at 1, 2, 3 sigma against the dropout rate, per parameter."""
    names = list(validation[0])
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for k, colour in zip((1, 2, 3), ("C0", "C1", "C2")):
            ax.plot(rates, [v[name]["coverage"][f"{k}sigma"] for v in validation], "o-", color=colour, label=f"{k}σ")
            ax.axhline(gaussian[k], color=colour, ls="--", lw=0.8)
        ax.axvline(chosen, color="k", lw=0.8)
        ax.set_xlabel("dropout rate")
        ax.set_title(PARAMETER_LABELS.get(name, name))
        ax.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("coverage (validation)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def predicted_vs_true(predictions, truth):
    """P21 Fig 6: predicted against true value with 1-sigma error bars, per parameter."""
    names = list(predictions)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        mean, sigma = predictions[name]
        ax.errorbar(truth[name], mean, yerr=sigma, fmt=".", ms=3, lw=0.6, alpha=0.7)
        low = float(np.nanmin([np.nanmin(truth[name]), np.nanmin(mean)]))
        high = float(np.nanmax([np.nanmax(truth[name]), np.nanmax(mean)]))
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.set_xlabel(f"true {PARAMETER_LABELS.get(name, name)}")
        ax.set_ylabel(f"predicted {PARAMETER_LABELS.get(name, name)}")
    fig.tight_layout()
    return fig


def p21_error_distributions(errors_by_set, parameters, methods):
    """P21 Figs 5-18 style: per test set (rows) and parameter (columns), the error distribution of each method."""
    sets = list(errors_by_set)
    fig, axes = plt.subplots(
        len(sets), len(parameters), figsize=(3.2 * len(parameters), 2.4 * len(sets)), squeeze=False
    )
    for i, testset in enumerate(sets):
        for j, name in enumerate(parameters):
            ax = axes[i, j]
            for method in methods:
                values = np.asarray(errors_by_set[testset].get(method, {}).get(name, []), float)
                values = values[np.isfinite(values)]
                if values.size:
                    ax.hist(values, bins=15, histtype="step", label=method)
            ax.axvline(0.0, color="k", lw=0.5)
            label = {"einstein_radius": "Δθ_E / θ_E", "axis_ratio": "Δq / q", "angle": "Δφ (deg)"}.get(name, f"Δ{name}")
            ax.set_xlabel(label)
            if j == 0:
                ax.set_ylabel(testset)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def p21_timing(seconds_by_method):
    """P21 Fig 19 style: the distribution of wall time per fit for each PyAutoLens method."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, seconds in seconds_by_method.items():
        seconds = np.asarray(seconds, float)
        seconds = seconds[np.isfinite(seconds)]
        if seconds.size:
            ax.hist(seconds, bins=15, histtype="step", label=f"{method} (mean {seconds.mean():.0f} s)")
    ax.set_xlabel("wall time per fit (s)")
    ax.set_ylabel("fits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lens_page(name, cutout, result, row, source_extent_factor):
    """One page per lens: data, mask, model, residual, normalised residual, source reconstruction.

    `cutout` (image, noise_map, pixel_scale) is None for refused input; a lens
    without a fit shows what there is. The title carries the final model and
    how the loop ended, from the catalogue `row`.
    """
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.6))
    lines = [
        f"theta_E {row['einstein_radius']:.3f} +- {row['einstein_radius_sigma']:.3f}\", q {row['axis_ratio']:.2f}, "
        f"phi {row['angle']:.0f} deg, CNN {row['verdict'] or '-'}, {row['fits']} fits, {row['seconds']:.0f} s",
        f"{row['final_action']}: {row['reason']}",
    ]
    fig.suptitle(f"{name}\n" + "\n".join(lines), fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    if cutout is None:
        return fig
    image, noise_map, pixel_scale = cutout.image, cutout.noise_map, cutout.pixel_scale
    half_y, half_x = image.shape[0] * pixel_scale / 2, image.shape[1] * pixel_scale / 2
    extent = (-half_x, half_x, -half_y, half_y)
    low, high = robust_range(image)
    annulus = result.annulus
    mask = annulus.mask if annulus is not None and annulus.mask.any() else None
    final = next((r for r in reversed(result.records) if r.products is not None), None)
    panels = [("data (e-/s)", image, "inferno", (low, high))]
    if mask is not None:
        panels.append(("mask", np.where(mask, image, np.nan), "inferno", (low, high)))
    if final is not None:
        residual = np.where(mask, final.products.residual, np.nan)
        scale = float(np.nanmax(np.abs(residual)))
        panels += [
            ("model", np.where(mask, image - final.products.residual, np.nan), "inferno", (low, high)),
            ("residual", residual, "RdBu_r", (-scale, scale)),
            ("normalised residual", residual / noise_map, "RdBu_r", (-4.0, 4.0)),
        ]
    for ax, (title, array, cmap, (vmin, vmax)) in zip(axes.flat, panels):
        ax.axis("on")
        shown = ax.imshow(array, origin="upper", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent)
        fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(title)
        ax.set_xlabel("x (arcsec)")
        if mask is not None:
            for radius in (annulus.inner_radius, annulus.outer_radius):
                ax.add_patch(Circle(annulus.centre[::-1], radius, fill=False, color="cyan", lw=0.6, ls="--"))
    if final is not None:
        ax = axes.flat[5]
        ax.axis("on")
        half = source_extent_factor * annulus.outer_radius
        shown = ax.imshow(final.products.source, origin="upper", cmap="inferno", extent=(-half, half, -half, half))
        fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title("source reconstruction")
    fig.tight_layout()
    return fig


def catalogue_summary(catalogue):
    """The catalogue at a glance: theta_E against q by verdict, and how each lens ended."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    modelled = catalogue[np.isfinite(catalogue["einstein_radius"])]
    for verdict, colour in (("C", "tab:green"), ("UM", "tab:blue"), ("OM", "tab:red")):
        rows = modelled[modelled["verdict"] == verdict]
        left.errorbar(
            rows["einstein_radius"],
            rows["axis_ratio"],
            xerr=rows["einstein_radius_sigma"],
            yerr=rows["axis_ratio_sigma"],
            fmt="o",
            color=colour,
            label=f"CNN: {verdict} ({len(rows)})",
        )
    left.set_xlabel(r"$\theta_E$ (arcsec)")
    left.set_ylabel("q")
    left.legend(fontsize=8)
    outcomes = catalogue["final_action"].value_counts()
    right.barh(list(outcomes.index), list(outcomes.values), color="grey")
    right.set_xlabel("lenses")
    right.set_title(f"{len(catalogue)} lenses: how the loop ended")
    fig.tight_layout()
    return fig


def guarded_evaluation(summary, labels):
    """Unphysical fraction, theta_E error and cost per lens for each approach."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    names = list(summary)
    titles = ("unphysical final solutions", r"median $|\Delta\theta_E|/\theta_E$", "fit seconds per lens")
    values = [
        [summary[n]["unphysical_fraction"] for n in names],
        [summary[n]["fractional_error_einstein_radius"].get("median", np.nan) for n in names],
        [summary[n]["seconds_per_lens"].get("mean", np.nan) for n in names],
    ]
    for ax, title, column in zip(axes, titles, values):
        ax.bar([labels[n] for n in names], column, color=["grey", "tab:orange", "tab:green"][: len(names)])
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig
