"""What the stages' figure modules share: the writer, stamp galleries, colour limits, recorded histograms.

Every figure is written with a JSON of the numbers it shows, so that a run can
be compared with the papers (and with another run) without reading pixels.
pyplot is imported here, after the non-interactive backend is chosen, and the
figure modules of the stages (`<stage>/figures.py`) take it from here.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

__all__ = ["plt", "save", "gallery", "robust_range", "histogram", "numbers"]


def save(fig, stem, formats, summary):
    """Write `stem`.<format> for each format and `stem`.json (unless `summary` is None).

    One writer for every stage, so that each figure's files and JSON layout
    (sorted keys, NaN kept, numpy scalars as floats) are the same.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with_suffix = lambda suffix: stem.parent / f"{stem.name}{suffix}"  # a stem may hold dots (a lens "J1.v2")
    paths = []
    for fmt in formats:
        path = with_suffix(f".{fmt}")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    if summary is not None:
        with open(with_suffix(".json"), "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True, default=float)
    return paths


def numbers(values):
    """`values` as a JSON list of floats (NaN kept): the plotted numbers of a figure's JSON."""
    return np.asarray(values, float).tolist()


def histogram(ax, values, bins, **style):
    """Draw a histogram of `values` and return what it shows: {"counts": [...], "edges": [...]}.

    The counts and edges are matplotlib's own, so the JSON holds exactly the
    bars drawn. Shared by the reconstruction, fitting and analysis figures.
    """
    counts, edges, _ = ax.hist(values, bins=bins, **style)
    return {"counts": np.asarray(counts).astype(int).tolist(), "edges": numbers(edges)}


def _show(ax, image, pixel_scale, annulus=None):
    """One stamp, colour scale normalised to its peak (as M21 Fig 3); returns the peak."""
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
    return float(peak)


def gallery(images, pixel_scale, annuli, titles, n_cols, row_labels=None):
    """A grid of stamps; `annuli[i]` is (inner, outer, centre_y, centre_x) or None.

    Returns the figure and, per stamp, what it shows: {"titles", "peaks" (the
    colour scale's 1), "annuli"}. The M21 and P21 galleries both draw with it.
    """
    n_rows = int(np.ceil(len(images) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.0 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    peaks = []
    for i, image in enumerate(images):
        ax = axes.ravel()[i]
        ax.axis("on")
        peaks.append(_show(ax, image, pixel_scale, annuli[i]))
        ax.set_title(titles[i], fontsize=7)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    shown = {
        "titles": list(titles),
        "peaks": peaks,
        "annuli": [None if annulus is None else numbers(annulus) for annulus in annuli],
    }
    return fig, shown


def robust_range(image, percentiles=(0.5, 99.5)):
    """Colour limits from percentiles of the non-zero pixels.

    An unconstrained (e.g. over-magnified) reconstruction has a few extreme
    pixels; scaled by its min / max it renders as one flat colour. Used by the
    reconstruction figures and by the own-lens pages.
    """
    values = np.asarray(image, float)
    values = values[np.isfinite(values) & (values != 0)]
    if not values.size:
        return 0.0, 1.0
    low, high = np.percentile(values, percentiles)
    return float(low), float(high) if high > low else float(low) + 1.0
