"""The own lenses' figures (one page per lens, the catalogue's summary), and the numbers their JSON holds."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from figure_helpers import plotted

from hybridlens import plotting
from hybridlens.own_lenses import figures


def catalogue_row(**changes):
    """A row shaped as guarded.catalogue_row's, for the page's title."""
    row = {"einstein_radius": 1.234, "einstein_radius_sigma": 0.012, "axis_ratio": 0.81, "angle": 42.0}
    row.update(verdict="C", fits=3, seconds=812.0, final_action="accept", reason="the CNN called two fits correct")
    return {**row, **changes}


def test_lens_page_records_the_panels_colour_limits_and_annulus(tmp_path):
    rng = np.random.default_rng(10)
    shape, pixel_scale = (30, 30), 0.1
    y, x = np.indices(shape)
    mask = np.hypot(y - 14.5, x - 14.5) * pixel_scale
    mask = (mask > 0.4) & (mask < 1.2)
    image = rng.normal(1.0, 0.2, shape) + 5.0 * mask
    residual = rng.normal(0.0, 0.3, shape)
    fitted = SimpleNamespace(products=SimpleNamespace(residual=residual, source=rng.uniform(0, 1, (12, 12))))
    result = SimpleNamespace(
        annulus=SimpleNamespace(mask=mask, inner_radius=0.4, outer_radius=1.2, centre=(0.0, 0.0)),
        records=[fitted, SimpleNamespace(products=None)],  # the last round has no products: the page shows the fit
    )
    cutout = SimpleNamespace(image=image, noise_map=np.full(shape, 0.2), pixel_scale=pixel_scale)
    shown = plotted(figures.lens_page("J0000+0000", cutout, result, catalogue_row(), 1.5), tmp_path)

    assert shown["name"] == "J0000+0000" and shown["title"][1] == "accept: the CNN called two fits correct"
    assert "theta_E 1.234 +- 0.012" in shown["title"][0] and "CNN C, 3 fits" in shown["title"][0]
    assert shown["extent"] == pytest.approx([-1.5, 1.5, -1.5, 1.5])
    titles = [panel["title"] for panel in shown["panels"]]
    assert titles == ["data (e-/s)", "mask", "model", "residual", "normalised residual", "source reconstruction"]
    panels = {panel["title"]: panel for panel in shown["panels"]}
    low, high = plotting.robust_range(image)
    for title in ("data (e-/s)", "mask", "model"):
        assert [panels[title]["vmin"], panels[title]["vmax"]] == pytest.approx([low, high])
    scale = np.abs(residual[mask]).max()  # the residual inside the mask sets its colour scale
    assert [panels["residual"]["vmin"], panels["residual"]["vmax"]] == pytest.approx([-scale, scale])
    assert [panels["normalised residual"]["vmin"], panels["normalised residual"]["vmax"]] == [-4.0, 4.0]
    assert panels["source reconstruction"]["shape"] == [12, 12] and shown["source_half_width"] == pytest.approx(1.8)
    assert shown["annulus"] == {"inner_radius": 0.4, "outer_radius": 1.2, "centre": [0.0, 0.0]}


def test_lens_page_of_refused_input_carries_the_reason_alone(tmp_path):
    row = catalogue_row(einstein_radius=np.nan, einstein_radius_sigma=np.nan, axis_ratio=np.nan, angle=np.nan)
    row.update(verdict="", fits=0, seconds=0.4, final_action="flag", reason="input refused: no WCS")
    result = SimpleNamespace(annulus=None, records=[])
    shown = plotted(figures.lens_page("broken", None, result, row, 1.5), tmp_path)
    assert shown["title"][1] == "flag: input refused: no WCS" and "CNN -" in shown["title"][0]
    assert shown["panels"] == [] and shown["annulus"] is None and shown["extent"] is None


def test_catalogue_summary_records_the_points_by_verdict_and_the_endings(tmp_path):
    catalogue = pd.DataFrame(
        {
            "name": ["a", "b", "c", "d", "e"],
            "einstein_radius": [1.1, 1.4, np.nan, 0.9, 2.0],
            "einstein_radius_sigma": [0.01, 0.02, np.nan, 0.03, 0.05],
            "axis_ratio": [0.8, 0.6, np.nan, 0.7, 0.9],
            "axis_ratio_sigma": [0.02, 0.03, np.nan, 0.01, 0.04],
            "verdict": ["C", "UM", "", "C", "OM"],
            "final_action": ["accept", "flag", "flag", "accept", "refit"],
        }
    )
    shown = plotted(figures.catalogue_summary(catalogue), tmp_path)
    assert shown["n_lenses"] == 5
    assert shown["final_action"] == {"accept": 2, "flag": 2, "refit": 1}
    assert shown["points"]["C"] == {
        "name": ["a", "d"],
        "einstein_radius": [1.1, 0.9],
        "axis_ratio": [0.8, 0.7],
        "einstein_radius_sigma": [0.01, 0.03],
        "axis_ratio_sigma": [0.02, 0.01],
    }
    assert shown["points"]["UM"]["name"] == ["b"] and shown["points"]["OM"]["einstein_radius"] == [2.0]
