"""Figures of the own lenses: one page per lens and the catalogue at a glance.

Each function returns the figure and the numbers it plots (JSON-ready), which
the rule adapters write beside it under "plotted".
"""

import numpy as np
from matplotlib.patches import Circle

from hybridlens.plotting import numbers, plt, robust_range

VERDICT_COLOURS = (("C", "tab:green"), ("UM", "tab:blue"), ("OM", "tab:red"))


ACCOUNT_LINE_HEIGHT = 0.13  # inches per line of the account beneath the panels
ACCOUNT_WRAP = 170  # characters per printed line


def lens_page(name, cutout, result, row, source_extent_factor, account=()):
    """One page per lens: data, mask, model, residual, normalised residual, source reconstruction,
    and beneath them the lens's `account` (what the run did, line by line).

    `cutout` (image, noise_map, pixel_scale) is None for refused input; a lens
    without a fit shows what there is. The title carries the final model and
    how the loop ended, from the catalogue `row`. Plotted: the title, the
    image extent, each panel's title, shape and colour limits, the annulus
    drawn and the source plane's half width (None where not drawn).
    """
    import textwrap

    printed = [part for line in account for part in textwrap.wrap(line, ACCOUNT_WRAP, subsequent_indent="    ")]
    text_height = ACCOUNT_LINE_HEIGHT * (len(printed) + 1)
    fig = plt.figure(figsize=(11, 7.6 + text_height))
    grid = fig.add_gridspec(3, 3, height_ratios=[3.6, 3.6, max(text_height, 1e-3)])
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(3)] for r in range(2)])
    text_axis = fig.add_subplot(grid[2, :])
    text_axis.axis("off")
    text_axis.text(0.0, 1.0, "\n".join(printed), family="monospace", fontsize=6, va="top", ha="left")
    lines = [
        f"theta_E {row['einstein_radius']:.3f} +- {row['einstein_radius_sigma']:.3f}\", q {row['axis_ratio']:.2f}, "
        f"phi {row['angle']:.0f} deg, CNN {row['verdict'] or '-'}, {row['fits']} fits, {row['seconds']:.0f} s",
        f"{row['final_action']}: {row['reason']}",
    ]
    fig.suptitle(f"{name}\n" + "\n".join(lines), fontsize=9)
    plotted = {"name": name, "title": lines, "extent": None, "panels": [], "annulus": None, "source_half_width": None}
    plotted["account"] = list(account)
    for ax in axes.flat:
        ax.axis("off")
    if cutout is None:
        return fig, plotted
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
    plotted["extent"] = numbers(extent)
    for ax, (title, array, cmap, (vmin, vmax)) in zip(axes.flat, panels):
        ax.axis("on")
        shown = ax.imshow(array, origin="upper", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent)
        fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(title)
        ax.set_xlabel("x (arcsec)")
        if mask is not None:
            for radius in (annulus.inner_radius, annulus.outer_radius):
                ax.add_patch(Circle(annulus.centre[::-1], radius, fill=False, color="cyan", lw=0.6, ls="--"))
        plotted["panels"].append(
            {"title": title, "shape": list(np.shape(array)), "vmin": float(vmin), "vmax": float(vmax)}
        )
    if mask is not None:
        plotted["annulus"] = {
            "inner_radius": float(annulus.inner_radius),
            "outer_radius": float(annulus.outer_radius),
            "centre": numbers(annulus.centre),
        }
    if final is not None:
        ax = axes.flat[5]
        ax.axis("on")
        half = source_extent_factor * annulus.outer_radius
        shown = ax.imshow(final.products.source, origin="upper", cmap="inferno", extent=(-half, half, -half, half))
        fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title("source reconstruction")
        plotted["source_half_width"] = float(half)
        plotted["panels"].append(
            {
                "title": "source reconstruction",
                "shape": list(np.shape(final.products.source)),
                "vmin": None,
                "vmax": None,
            }
        )
    fig.tight_layout()
    return fig, plotted


def catalogue_summary(catalogue):
    """The catalogue at a glance: theta_E against q by verdict, and how each lens ended.

    Plotted: per CNN verdict the points (name, theta_E, q and their sigmas) and
    the number of lenses per final action (the bars).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    modelled = catalogue[np.isfinite(catalogue["einstein_radius"])]
    plotted = {"n_lenses": int(len(catalogue)), "points": {}, "final_action": {}}
    for verdict, colour in VERDICT_COLOURS:
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
        plotted["points"][verdict] = {
            "name": [str(name) for name in rows["name"]],
            **{
                column: numbers(rows[column])
                for column in ("einstein_radius", "axis_ratio", "einstein_radius_sigma", "axis_ratio_sigma")
            },
        }
    left.set_xlabel(r"$\theta_E$ (arcsec)")
    left.set_ylabel("q")
    left.legend(fontsize=8)
    outcomes = catalogue["final_action"].value_counts()
    right.barh(list(outcomes.index), list(outcomes.values), color="grey")
    right.set_xlabel("lenses")
    right.set_title(f"{len(catalogue)} lenses: how the loop ended")
    plotted["final_action"] = {str(action): int(count) for action, count in outcomes.items()}
    fig.tight_layout()
    return fig, plotted
