"""Figures of the P21 comparison: error distributions per test set and method, wall time per fit (Fig 19).

Each function returns the figure and the numbers it plots (JSON-ready), which
the rule adapter writes beside it under "plotted".
"""

import numpy as np

from hybridlens.plotting import histogram, plt

ERROR_LABELS = {"einstein_radius": "Δθ_E / θ_E", "axis_ratio": "Δq / q", "angle": "Δφ (deg)"}


def p21_error_distributions(errors_by_set, parameters, methods):
    """P21 Figs 5-18 style: per test set (rows) and parameter (columns), the error distribution of each method.

    Plotted: {test set: {parameter: {method: {"counts", "edges"}}}} for each
    histogram drawn (a method without finite errors draws none).
    """
    sets = list(errors_by_set)
    fig, axes = plt.subplots(
        len(sets), len(parameters), figsize=(3.2 * len(parameters), 2.4 * len(sets)), squeeze=False
    )
    plotted = {}
    for i, testset in enumerate(sets):
        plotted[testset] = {}
        for j, name in enumerate(parameters):
            ax = axes[i, j]
            plotted[testset][name] = {}
            for method in methods:
                values = np.asarray(errors_by_set[testset].get(method, {}).get(name, []), float)
                values = values[np.isfinite(values)]
                if values.size:
                    plotted[testset][name][method] = histogram(ax, values, 15, histtype="step", label=method)
            ax.axvline(0.0, color="k", lw=0.5)
            ax.set_xlabel(ERROR_LABELS.get(name, f"Δ{name}"))
            if j == 0:
                ax.set_ylabel(testset)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig, plotted


def p21_timing(seconds_by_method):
    """P21 Fig 19 style: the distribution of wall time per fit for each PyAutoLens method.

    Plotted: per method with finite times {"counts", "edges", "mean_seconds"}.
    """
    fig, ax = plt.subplots(figsize=(5, 3.5))
    plotted = {}
    for method, seconds in seconds_by_method.items():
        seconds = np.asarray(seconds, float)
        seconds = seconds[np.isfinite(seconds)]
        if seconds.size:
            label = f"{method} (mean {seconds.mean():.0f} s)"
            plotted[method] = {
                **histogram(ax, seconds, 15, histtype="step", label=label),
                "mean_seconds": float(seconds.mean()),
            }
    ax.set_xlabel("wall time per fit (s)")
    ax.set_ylabel("fits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, plotted
