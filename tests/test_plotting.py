"""The figure writer and the helpers every stage's figures share."""

import json

import numpy as np
import pytest
from figure_helpers import saved

from hybridlens import plotting


def test_save_writes_each_format_and_a_json_with_numpy_numbers_and_nan(tmp_path):
    fig, ax = plotting.plt.subplots()
    ax.plot([0, 1, 2], [2, 0, 1])
    summary = {"b": np.float64(0.5), "a": [np.int64(3), float("nan")], "nested": {"n": np.int32(7)}}
    paths = plotting.save(fig, tmp_path / "sub" / "line", ["png", "pdf"], summary)
    assert paths == [tmp_path / "sub" / "line.png", tmp_path / "sub" / "line.pdf"]
    assert all(path.stat().st_size > 1_000 for path in paths)
    text = (tmp_path / "sub" / "line.json").read_text()
    assert text.index('"a"') < text.index('"b"')  # sorted keys: runs diff cleanly
    back = json.loads(text)
    assert back["b"] == 0.5 and back["a"][0] == 3 and np.isnan(back["a"][1]) and back["nested"] == {"n": 7}
    assert not plotting.plt.get_fignums()  # the figure is closed


def test_save_without_summary_writes_no_json(tmp_path):
    fig, ax = plotting.plt.subplots()
    ax.plot([0, 1], [0, 1])
    plotting.save(fig, tmp_path / "page", ["png"], None)
    assert (tmp_path / "page.png").exists() and not (tmp_path / "page.json").exists()


def test_histogram_records_the_bars_drawn(tmp_path):
    values = np.random.default_rng(1).normal(size=200)
    fig, ax = plotting.plt.subplots()
    drawn = plotting.histogram(ax, values, 12, histtype="step")
    back = saved(fig, drawn, tmp_path)
    counts, edges = np.histogram(values, bins=12)
    assert back["counts"] == counts.tolist() and back["edges"] == pytest.approx(edges)
    assert sum(back["counts"]) == 200


def test_gallery_records_each_stamp_peak_annulus_and_title(tmp_path):
    rng = np.random.default_rng(2)
    images = [rng.uniform(0, 5, (16, 16)), rng.uniform(0, 2, (16, 16)), np.full((2, 2), np.nan)]
    annuli = [(0.3, 0.9, 0.05, -0.05), None, None]
    fig, shown = plotting.gallery(images, 0.1, annuli, ["a", "b", ""], n_cols=2, row_labels=["first", "second"])
    back = saved(fig, shown, tmp_path)
    assert back["titles"] == ["a", "b", ""]
    assert back["peaks"] == pytest.approx([images[0].max(), images[1].max(), 1.0])  # an empty place scales by 1
    assert back["annuli"] == [[0.3, 0.9, 0.05, -0.05], None, None]


def test_robust_range_ignores_zero_pixels_and_clips_extremes():
    image = np.zeros((50, 50))
    image[10:40, 10:40] = np.linspace(1.0, 2.0, 900).reshape(30, 30)
    image[0, 1] = 1e6  # one unconstrained pixel
    low, high = plotting.robust_range(image)
    assert 1.0 <= low < 1.05 and high < 1e6
    assert plotting.robust_range(np.zeros((4, 4))) == (0.0, 1.0)
    assert plotting.robust_range(np.full((4, 4), 3.0)) == (3.0, 4.0)  # flat: a unit range above it


def test_numbers_are_plain_floats_with_nan_kept():
    out = plotting.numbers(np.array([1, 2, np.nan]))
    assert out[:2] == [1.0, 2.0] and np.isnan(out[2]) and all(type(v) is float for v in out)
