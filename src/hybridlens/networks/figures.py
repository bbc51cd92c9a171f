"""Figures of the networks: M21 Figs 11-12 (the classifier's confusion), P21 Figs 4 and 6 (the BNN).

Each function returns the figure and the numbers it plots (JSON-ready), which
the rule adapters write beside it under "plotted".
"""

import numpy as np

from hybridlens.plotting import numbers, plt

PARAMETER_LABELS = {
    "einstein_radius": r"$\theta_E$ (″)",
    "axis_ratio": "$q$",
    "angle": r"$\phi$ (°)",
    "slope": r"$\gamma$",
}


def confusion(fractions, classes, title):
    """M21 Figs 11-12: row-normalised confusion matrix.

    Plotted: the classes (rows true, columns predicted) and the fractions shown.
    """
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if fractions[i, j] > 0.5 else "black"
            ax.text(j, i, f"{fractions[i, j]:.3f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig, {"title": title, "classes": list(classes), "fractions": numbers(fractions)}


def coverage_sweep(rates, validation, gaussian, chosen):
    """P21 Fig 4: validation coverage at 1, 2, 3 sigma against the dropout rate, per parameter.

    Plotted: the rates, the chosen rate, the Gaussian levels and per parameter
    the coverage at each rate ({"1sigma": [...], "2sigma": [...], "3sigma": [...]}).
    """
    names = list(validation[0])
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    plotted = {
        "dropout_rates": numbers(rates),
        "chosen_rate": float(chosen),
        "gaussian": {f"{k}sigma": float(gaussian[k]) for k in (1, 2, 3)},
        "coverage": {},
    }
    for ax, name in zip(axes[0], names):
        plotted["coverage"][name] = {}
        for k, colour in zip((1, 2, 3), ("C0", "C1", "C2")):
            coverage = [v[name]["coverage"][f"{k}sigma"] for v in validation]
            ax.plot(rates, coverage, "o-", color=colour, label=f"{k}σ")
            ax.axhline(gaussian[k], color=colour, ls="--", lw=0.8)
            plotted["coverage"][name][f"{k}sigma"] = numbers(coverage)
        ax.axvline(chosen, color="k", lw=0.8)
        ax.set_xlabel("dropout rate")
        ax.set_title(PARAMETER_LABELS.get(name, name))
        ax.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("coverage (validation)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig, plotted


def predicted_vs_true(predictions, truth):
    """P21 Fig 6: predicted against true value with 1-sigma error bars, per parameter.

    `predictions` maps a parameter to (mean, sigma) per lens. Plotted: per
    parameter the points ("true", "mean", "sigma") and the diagonal's ends.
    """
    names = list(predictions)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    plotted = {}
    for ax, name in zip(axes[0], names):
        mean, sigma = predictions[name]
        ax.errorbar(truth[name], mean, yerr=sigma, fmt=".", ms=3, lw=0.6, alpha=0.7)
        low = float(np.nanmin([np.nanmin(truth[name]), np.nanmin(mean)]))
        high = float(np.nanmax([np.nanmax(truth[name]), np.nanmax(mean)]))
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.set_xlabel(f"true {PARAMETER_LABELS.get(name, name)}")
        ax.set_ylabel(f"predicted {PARAMETER_LABELS.get(name, name)}")
        plotted[name] = {
            "true": numbers(truth[name]),
            "mean": numbers(mean),
            "sigma": numbers(sigma),
            "diagonal": [low, high],
        }
    fig.tight_layout()
    return fig, plotted
