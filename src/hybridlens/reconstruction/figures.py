"""Figures of the inversions and their calibration: M21 Figs 2, 4-7 and the training set's theta / theta_true.

Each function returns the figure and the numbers it plots (JSON-ready), which
the rule adapters write beside it under "plotted".
"""

import matplotlib.ticker
import numpy as np

from hybridlens.plotting import histogram, numbers, plt, robust_range

CLASS_COLOURS = {"under": "tab:blue", "correct": "tab:green", "over": "tab:red"}


def _line(line):
    return {"slope": float(line["slope"]), "intercept": float(line["intercept"])}


def calibration_scatter(table, column, classes, relations=None, reference=None, unit=""):
    """M21 Figs 4-6: inferred vs true parameter per solution class, with fitted lines.

    Plotted: the span of the lines, and per class the points (true, inferred)
    and the lines drawn ("ours", "m21": slope and intercept; None when not drawn).
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    truth = table[f"truth_{column}"].to_numpy()
    span = np.array([np.nanmin(truth), np.nanmax(truth)]) if np.isfinite(truth).any() else np.array([0.0, 1.0])
    plotted = {"column": column, "span": numbers(span), "classes": {}}
    for label, name in enumerate(classes):
        rows = table[table["label"] == label]
        ax.scatter(rows[f"truth_{column}"], rows[f"ml_{column}"], s=14, color=CLASS_COLOURS[name], label=name)
        drawn = {"true": numbers(rows[f"truth_{column}"]), "inferred": numbers(rows[f"ml_{column}"])}
        drawn["ours"] = drawn["m21"] = None
        line = (relations or {}).get(name)
        if line is not None and np.isfinite(line["slope"]):
            ax.plot(
                span,
                line["slope"] * span + line["intercept"],
                color=CLASS_COLOURS[name],
                label=f"ours: {line['slope']:.2f}x{line['intercept']:+.2f}",
            )
            drawn["ours"] = _line(line)
        ref = (reference or {}).get(name)
        if ref is not None:
            ax.plot(
                span,
                ref["slope"] * span + ref["intercept"],
                color=CLASS_COLOURS[name],
                ls=":",
                label=f"M21: {ref['slope']:.2f}x{ref['intercept']:+.2f}",
            )
            drawn["m21"] = _line(ref)
        plotted["classes"][name] = drawn
    ax.plot(span, span, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"true {column.replace('_', ' ')} {unit}")
    ax.set_ylabel(f"inferred {column.replace('_', ' ')} {unit}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, plotted


def reconstruction_panels(observation, pairs, pixel_scale, classes):
    """M21 Fig 2: observation; per class the reconstruction, residual and chi-squared map.

    Plotted: per class (row) the numbers in the titles (theta_E, ln Z, chi^2)
    and each map's shape and colour limits; the pixels stay out of the JSON.
    """
    fig, axes = plt.subplots(len(pairs), 4, figsize=(10, 2.6 * len(pairs)), squeeze=False)
    half = observation.shape[0] * pixel_scale / 2
    plotted = {"observation_shape": list(observation.shape), "half_width": float(half), "rows": []}
    for row, pair in enumerate(pairs):
        label, theta, products = pair.label, pair.einstein_radius, pair.products
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
        chi_max = robust_range(products.chi_squared_map)[1]
        ax_chi.imshow(products.chi_squared_map, cmap="viridis", vmin=0, vmax=chi_max, extent=(-half, half, -half, half))
        ax_chi.set_title(f"χ² = {products.chi_squared:.0f}", fontsize=8)
        for ax in (ax_src, ax_res, ax_chi):
            ax.tick_params(labelsize=6)
        plotted["rows"].append(
            {
                "class": classes[label],
                "einstein_radius": float(theta),
                "log_evidence": float(products.log_evidence),
                "chi_squared": float(products.chi_squared),
                "source_extent": float(extent),
                "source_shape": list(np.shape(products.source)),
                "source_range": [low, high],
                "residual_range": [-limit, limit],
                "chi_squared_range": [0.0, chi_max],
            }
        )
    fig.tight_layout()
    return fig, plotted


def evidence_slices(slices, class_ranges):
    """M21 Fig 7: ln evidence below its peak along theta_E / theta_true, class ranges shaded.

    Plotted: the shaded class ranges and per slice its title and the finite
    points of the curve (ratio, ln Z - max ln Z).
    """
    fig, axes = plt.subplots(
        1, len(slices), figsize=(4.2 * len(slices), 3.4), squeeze=False, sharey=True, layout="constrained"
    )
    plotted = {"class_ranges": {name: numbers(bounds) for name, bounds in class_ranges.items()}, "slices": []}
    for ax, (ratios, evidence, title) in zip(axes[0], slices):
        for name, (low, high) in class_ranges.items():
            ax.axvspan(low, high, color=CLASS_COLOURS[name], alpha=0.12, label=name)
        finite = np.isfinite(evidence)
        evidence = np.asarray(evidence)[finite]
        below_peak = evidence - evidence.max()
        ax.plot(np.asarray(ratios)[finite], below_peak, color="k", lw=1)
        ax.set_yscale("symlog", linthresh=10.0)
        ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.0] + [-(10.0**k) for k in range(1, 9)]))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("θE / θE,true")
        ax.set_title(title, fontsize=8)
        plotted["slices"].append(
            {
                "title": title,
                "ratio": numbers(np.asarray(ratios)[finite]),
                "log_evidence_below_peak": numbers(below_peak),
            }
        )
    axes[0, 0].set_ylabel("ln Z − max ln Z")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    return fig, plotted


def class_ratio_histograms(ratios, relations, reference, theta_median):
    """theta / theta_true of the training set per class, with where the relations put it at the median theta_E.

    Plotted: the bin edges, the counts per class and the vertical lines
    ({class: {"ours", "m21"}}: the relation's theta / theta_true at `theta_median`).
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
    bins = np.linspace(0.0, max(3.2, np.nanmax([np.nanmax(v) for v in ratios.values() if len(v)] + [0])), 65)
    plotted = {"edges": numbers(bins), "counts": {}, "lines": {}, "theta_median": float(theta_median)}
    for name, values in ratios.items():
        drawn = histogram(ax, values, bins, color=CLASS_COLOURS[name], alpha=0.6, label=f"{name} (n={len(values)})")
        plotted["counts"][name] = drawn["counts"]
        plotted["lines"][name] = {}
        for lines, style, who in ((relations, "-", "ours"), (reference, ":", "m21")):
            line = (lines or {}).get(name)
            if line is not None and np.isfinite(line.get("slope", np.nan)):
                at = (line["slope"] * theta_median + line["intercept"]) / theta_median
                ax.axvline(at, color=CLASS_COLOURS[name], ls=style, lw=1)
                plotted["lines"][name][who] = float(at)
    ax.set_xlabel(f"θE / θE,true  (lines: relations at θE = {theta_median:.2f}″; solid ours, dotted M21)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=7)
    return fig, plotted
