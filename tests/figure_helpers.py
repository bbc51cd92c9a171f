"""Writing a figure as the rule adapters do, and reading back what was written, for the figure tests."""

import json

import matplotlib.image
import numpy as np

from hybridlens import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def saved(fig, summary, directory, stem="figure"):
    """Write `fig` and `summary` through `plotting.save`; check the PNG is a real image; return the JSON read back."""
    paths = plotting.save(fig, directory / stem, ["png"], summary)
    png = directory / f"{stem}.png"
    assert paths == [png]
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    pixels = matplotlib.image.imread(png)
    assert min(pixels.shape[:2]) > 100 and np.ptp(pixels[..., :3]) > 0.5  # drawn on, not a blank canvas
    return json.loads((directory / f"{stem}.json").read_text())


def plotted(fig_and_numbers, directory, stem="figure"):
    """A figure function's (figure, plotted numbers) saved as the adapters save them; the numbers read back."""
    fig, numbers = fig_and_numbers
    return saved(fig, {"plotted": numbers}, directory, stem)["plotted"]
