"""M21 Fig 3 and P21 Fig 1: the galleries of simulated lenses, and the numbers their JSON holds."""

import numpy as np
import pandas as pd
import pytest
from figure_helpers import saved

from hybridlens.simulation import figures

MASK_BITS = {1: "image has NaN pixels", 2: "nothing above the threshold"}


def mask_table(n, rng):
    return pd.DataFrame(
        {
            "inner_radius": rng.uniform(0.3, 0.6, n),
            "outer_radius": rng.uniform(1.2, 1.8, n),
            "centre_y": rng.uniform(-0.05, 0.05, n),
            "centre_x": rng.uniform(-0.05, 0.05, n),
            "model_flux_fraction": np.r_[np.full(n - 2, 0.995), 0.9, np.nan],
            "flags": np.r_[np.zeros(n - 2, int), 1, 3],
        }
    )


def test_slacs_gallery_records_the_stamps_it_draws(tmp_path):
    rng = np.random.default_rng(3)
    n = 9
    params = pd.DataFrame({"einstein_radius": rng.uniform(0.8, 2.0, n), "axis_ratio": rng.uniform(0.4, 1.0, n)})
    images = rng.uniform(0.0, 10.0, (n, 20, 20))
    components = {name: rng.uniform(0.5, 4.0, (n, 2)) for name in ("sersic_index", "effective_radius", "intensity")}
    masks = mask_table(n, rng)
    fig, summary = figures.slacs_gallery((params, images[:7], components), masks, 6, 0.1, MASK_BITS)
    back = saved(fig, summary, tmp_path)

    shown = back["plotted"]
    assert shown["rows"] == list(range(6))
    assert shown["einstein_radius"] == pytest.approx(params["einstein_radius"][:6])
    assert shown["axis_ratio"] == pytest.approx(params["axis_ratio"][:6])
    assert shown["peaks"] == pytest.approx(images[:6].max(axis=(1, 2)))
    np.testing.assert_allclose(shown["annuli"], masks[shown["annulus_columns"]].to_numpy()[:6])
    # the set's statistics cover every image, not only those drawn
    assert back["n_images"] == n and back["einstein_radius"]["n"] == n
    assert back["einstein_radius"]["median"] == pytest.approx(np.median(params["einstein_radius"]))
    assert back["fraction_of_masks_keeping_99pc_flux"] == pytest.approx(7 / 8)  # the NaN one is not counted
    assert back["mask_flags"] == {"image has NaN pixels": 2, "nothing above the threshold": 1}


def training_set(rng, source_types):
    n = len(source_types)
    params = pd.DataFrame(
        {
            "source_type": np.asarray(source_types, float),
            "n_attempts": np.full(n, 2),
            "flags": np.r_[np.zeros(n - 1, int), 1],
            **{column: rng.uniform(0.5, 2.0, n) for column in figures.TRAINING_COLUMNS},
        }
    )
    return params, rng.uniform(0.0, 5.0, (n, 16, 16)), mask_table(n, rng), {"too faint": 3}


def test_training_gallery_draws_rows_by_source_type_and_records_them(tmp_path):
    rng = np.random.default_rng(4)
    datasets = {"sie": training_set(rng, [0, 1, 0, 2, 1]), "power_law": training_set(rng, [1, 0, 0, 0])}
    fig, summary = figures.training_gallery(datasets, 6, 0.1, MASK_BITS)  # two stamps per source type
    back = saved(fig, summary, tmp_path)

    stamps = back["plotted"]["stamps"]
    assert list(stamps) == sorted(figures.SOURCE_TYPE_NAMES)
    picked = {name: [(s["model"], s["row"]) for s in row if s] for name, row in stamps.items()}
    # the lowest rows of each source type over both sets (stable in the sets' order)
    assert picked["Sérsic"] == [("sie", 0), ("power_law", 1)]
    assert picked["Gaussian"] == [("power_law", 0), ("sie", 1)]
    assert picked["multi-Sérsic"] == [("sie", 3)] and stamps["multi-Sérsic"][1] is None  # one image: one empty place
    for row in stamps.values():
        for stamp in filter(None, row):
            params, images, masks, _ = datasets[stamp["model"]]
            assert stamp["einstein_radius"] == pytest.approx(params.loc[stamp["row"], "einstein_radius"])
            assert stamp["peak"] == pytest.approx(images[stamp["row"]].max())
            assert stamp["annulus"] == pytest.approx(masks.loc[stamp["row"], back["plotted"]["annulus_columns"]])

    sie = back["sie"]
    assert sie["n_images"] == 5 and sie["n_not_simulated"] == 1 and sie["acceptance_rate"] == pytest.approx(4 / 10)
    assert sie["source_type_fraction"] == pytest.approx({"Sérsic": 0.4, "Gaussian": 0.4, "multi-Sérsic": 0.2})
    assert sie["rejections"] == {"too faint": 3} and back["power_law"]["n_images"] == 4
