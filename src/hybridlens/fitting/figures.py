"""Figures of the hybrid loops: M21 Fig 13 (errors and classes per round) and the guarded loop's evaluation.

Each function returns the figure and the numbers it plots (JSON-ready), which
the rule adapters write beside it under "plotted".
"""

import numpy as np

from hybridlens.analysis.evaluation import angle_error
from hybridlens.plotting import histogram, numbers, plt

ROUND_PANELS = ("fractional_error_einstein_radius", "fractional_error_axis_ratio", "absolute_error_angle")
CLASS_TICKS = ["UM", "C", "OM"]


def hybrid_rounds(table, names, state_after, classes, truth_classes):
    """M21 Fig 13: theta_E and q fractional errors, |phi| error and class counts after each round.

    `state_after(table, number)` is each lens's model after round `number`; the
    truth's counts are drawn for `classes` (of `truth_classes`, the first ones).
    Plotted: per error panel the bin edges and the counts of each round, and
    per round the lenses in each class by the CNN and by the truth.
    """
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    states = [state_after(table, number) for number in range(len(names))]
    panels = [
        (axes[0, 0], lambda s: s["median_einstein_radius"] / s["truth_einstein_radius"] - 1, r"$f_{\theta_E}$"),
        (axes[0, 1], lambda s: s["median_axis_ratio"] / s["truth_axis_ratio"] - 1, r"$f_q$"),
        (axes[1, 0], lambda s: angle_error(s["median_angle"], s["truth_angle"]), r"$|\Delta\phi|$ (deg)"),
    ]
    plotted = {"rounds": list(names), "classes": list(classes), "class_counts": {}}
    for key, (ax, quantity, label) in zip(ROUND_PANELS, panels):
        values = [np.asarray(quantity(s), float) for s in states]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
        bins = np.linspace(*(np.percentile(finite, [0, 100]) if finite.size else (0, 1)), 21)
        plotted[key] = {"edges": numbers(bins), "counts": {}}
        for name, v in zip(names, values):
            drawn = histogram(ax, v[np.isfinite(v)], bins, histtype="step", lw=1.5, label=name)
            plotted[key]["counts"][name] = drawn["counts"]
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
        plotted["class_counts"][name] = {"cnn": [int(c) for c in cnn], "truth": [int(t) for t in truth]}
    ax.set_xticks(np.arange(len(classes)), CLASS_TICKS)
    ax.set_ylabel("lenses")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, plotted


GUARDED_PANELS = (
    ("unphysical_fraction", "unphysical final solutions"),
    ("median_fractional_error_einstein_radius", r"median $|\Delta\theta_E|/\theta_E$"),
    ("mean_seconds_per_lens", "fit seconds per lens"),
)


def guarded_evaluation(summary, labels):
    """Unphysical fraction, theta_E error and cost per lens for each approach.

    `summary` is `guarded.evaluate`'s per approach. Plotted: the approaches'
    labels and, per panel, the bar heights in that order.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    names = list(summary)
    values = [
        [summary[n]["unphysical_fraction"] for n in names],
        [summary[n]["fractional_error_einstein_radius"].get("median", np.nan) for n in names],
        [summary[n]["seconds_per_lens"].get("mean", np.nan) for n in names],
    ]
    plotted = {"approaches": names, "labels": [labels[n] for n in names]}
    for ax, (key, title), column in zip(axes, GUARDED_PANELS, values):
        ax.bar([labels[n] for n in names], column, color=["grey", "tab:orange", "tab:green"][: len(names)])
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=8)
        plotted[key] = numbers(column)
    fig.tight_layout()
    return fig, plotted
