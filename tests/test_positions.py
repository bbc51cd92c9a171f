"""Positions: the images of one source meet in the source plane through the right model only."""

import autolens as al
import numpy as np
import pytest

from hybridlens.reconstruction import masking, positions
from hybridlens.reconstruction.inversion import Mass
from hybridlens.simulation import lenses

TRUTH = Mass(1.2, 0.75, 40.0, (0.05, -0.05))


@pytest.fixture(scope="module")
def lensed():
    """A compact Sersic source off-axis behind an SIE: a double, with noise; its mask a wide annulus."""
    grid = al.Grid2D.uniform(shape_native=(80, 80), pixel_scales=0.1, over_sample_size=4)
    mass = lenses.mass_profile("sie", TRUTH.centre, TRUTH.einstein_radius, TRUTH.axis_ratio, TRUTH.angle)
    source = al.lp.Sersic(centre=(0.25, 0.3), intensity=2.0, effective_radius=0.1, sersic_index=1.0)
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), al.Galaxy(redshift=1.0, light=source)])
    image = np.asarray(tracer.image_2d_from(grid=grid).native)
    noise = np.full(image.shape, 0.05)
    image = image + np.random.default_rng(4).normal(size=image.shape) * noise
    y, x = masking.pixel_coordinates(image.shape, 0.1)
    mask = (np.hypot(y, x) > 0.3) & (np.hypot(y, x) < 2.5)
    return positions.arc_peaks(image, noise, mask, 0.1)


def test_the_peaks_are_the_separate_images(lensed):
    assert len(lensed) >= 2
    radii = np.hypot(lensed[:, 0] - TRUTH.centre[0], lensed[:, 1] - TRUTH.centre[1])
    assert radii.min() < TRUTH.einstein_radius < radii.max()  # one image inside the Einstein ring, one outside


def test_the_true_model_brings_them_together_and_a_wrong_one_splits_them_the_right_way(lensed):
    right = positions.traced(TRUTH, lensed)
    assert not right.split and right.spread < 0.1
    small = positions.traced(TRUTH.with_einstein_radius(0.8), lensed)
    large = positions.traced(TRUTH.with_einstein_radius(1.6), lensed)
    assert small.split and small.verdict == "under"
    assert large.split and large.verdict == "over"


@pytest.mark.parametrize("radius, images", [(1.5, 2), (1.9, 2), (2.1, 1), (3.0, 1)])
def test_a_point_is_multiply_imaged_by_a_singular_isothermal_sphere_only_inside_twice_its_einstein_radius(
    radius, images
):
    """SIS: a source at beta < theta_E has images at theta_E + beta and beta - theta_E; beyond it, one
    image at theta_E + beta. So a point at r is one of two images exactly when r < 2 theta_E."""
    sis = lenses.mass_profile("sie", (0.1, -0.2), 0.8, 0.999, 0.0)
    point = np.array([0.1, -0.2]) + radius * 0.8 * np.array([np.sin(0.7), np.cos(0.7)])
    assert positions.image_count(sis, point) == images
    assert positions.multiply_imaged(Mass(0.8, 0.999, 0.0, (0.1, -0.2)), [point]) == (images == 2)


def test_a_model_that_images_no_peak_twice_is_under_magnified_with_one_peak_too(lensed):
    assert positions.traced(TRUTH, lensed[:1]).lensed
    small = positions.traced(TRUTH.with_einstein_radius(0.3), lensed[:1])
    assert not small.lensed and small.row()["position_lensed"] == 0.0
    assert np.isnan(small.row()["position_split"])  # one peak: nothing to meet, no images_meet acceptance
    assert positions.traced(TRUTH.with_einstein_radius(1.6), lensed).lensed  # over-magnified still lenses


def test_one_image_cannot_split():
    assert positions.traced_spread(TRUTH, np.array([[1.0, 0.0]])) == 0.0


def test_a_clumpy_sources_other_clumps_do_not_split_the_right_model():
    """Two clumps 0.5" apart: their images trace to two places through the right model; each image pair meets."""
    grid = al.Grid2D.uniform(shape_native=(80, 80), pixel_scales=0.1, over_sample_size=4)
    mass = lenses.mass_profile("sie", TRUTH.centre, TRUTH.einstein_radius, TRUTH.axis_ratio, TRUTH.angle)
    clumps = [
        al.lp.Sersic(centre=(0.25, 0.3), intensity=2.0, effective_radius=0.08, sersic_index=1.0),
        al.lp.Sersic(centre=(-0.2, 0.45), intensity=1.2, effective_radius=0.08, sersic_index=1.0),
    ]
    source = al.Galaxy(redshift=1.0, **{f"light_{k}": c for k, c in enumerate(clumps)})
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), source])
    image = np.asarray(tracer.image_2d_from(grid=grid).native)
    y, x = masking.pixel_coordinates(image.shape, 0.1)
    mask = (np.hypot(y, x) > 0.3) & (np.hypot(y, x) < 2.5)
    peaks = positions.arc_peaks(image, np.full(image.shape, 0.05), mask, 0.1)
    assert len(peaks) >= 3
    assert not positions.traced(TRUTH, peaks).split
    assert positions.traced(TRUTH.with_einstein_radius(0.85), peaks).split


def test_the_loops_judge_overrules_a_fooled_classifier_on_split_fits_only(lensed):
    """M21's fits judged after the fact: a classifier calling every fit correct is right on 2 of 5; the
    judge traces the arcs through each fit's max-likelihood SIE and gets the split ones' direction,
    calls a one-peak lens's fit that images its peak once under, and leaves the one-peak lens's true
    fit to the classifier."""
    import pandas as pd

    from hybridlens.fitting import hybrid

    ranges = {"under": [0.1, 0.9], "correct": [0.95, 1.05], "over": [1.1, 3.0]}
    thetas = {(0, 0): 0.8, (0, 1): 1.6, (0, 2): TRUTH.einstein_radius, (1, 0): 0.5, (2, 0): TRUTH.einstein_radius}
    rows = []
    for (lens, number), theta in thetas.items():
        klass = hybrid.TRUTH_CLASSES.index(hybrid.truth_class(theta, TRUTH.einstein_radius, ranges))
        rows.append(
            {"lens_index": lens, "round": number, "verdict": 1.0, "truth_class": klass, "action": 0, "flags": 0.0}
            | {"hit_call_cap": 0, "seconds": 60.0, "n_calls": 1000.0, "axis_ratio_off": 0.0}
            | {f"{kind}_einstein_radius": theta for kind in ("median", "ml")}
            | {"truth_einstein_radius": TRUTH.einstein_radius, "truth_axis_ratio": TRUTH.axis_ratio}
            | {"truth_angle": TRUTH.angle, "median_axis_ratio": TRUTH.axis_ratio, "median_angle": TRUTH.angle}
            | {"ml_axis_ratio": TRUTH.axis_ratio, "ml_angle": TRUTH.angle}
            | {"ml_centre_y": TRUTH.centre[0], "ml_centre_x": TRUTH.centre[1]}
        )
    table = pd.DataFrame(rows)
    peaks = {0: lensed, 1: lensed[:1], 2: lensed[:1]}
    table = table.assign(**hybrid.traced_columns(table, peaks, positions.PositionSettings()))

    assert table["position_split"].tolist()[:3] == [1.0, 1.0, 0.0] and np.isnan(table["position_split"][3:]).all()
    assert table["position_lensed"].tolist()[2:] == [1.0, 0.0, 1.0]
    summary = hybrid.summarise(table, reruns=2)
    assert summary["classifier_on_fits"]["confusion_counts"] == [[0, 2, 0], [0, 2, 0], [0, 1, 0]]
    assert summary["judge_on_fits"]["confusion_counts"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
    judge = summary["judge_on_fits"]
    assert (judge["n_traced"], judge["n_split"], judge["n_not_lensed"]) == (5, 2, 1)


def test_a_singular_isothermal_spheres_two_images_give_its_einstein_radius_about_any_centre_between_them():
    """SIS: images at theta_E + beta and theta_E - beta on opposite sides; the mean radius is theta_E,
    about the true centre and about any point on the line between the images (an arcs' centroid)."""
    centre, theta, beta, angle = np.array([0.1, -0.2]), 1.1, 0.35, 0.6
    axis = np.array([np.sin(angle), np.cos(angle)])
    images = np.array([centre + (theta + beta) * axis, centre - (theta - beta) * axis])
    assert positions.pair_einstein_radius(images, centre) == pytest.approx(theta)
    assert positions.pair_einstein_radius(images, centre + 0.3 * axis) == pytest.approx(theta)
    assert positions.pair_einstein_radius(images[::-1], centre) == pytest.approx(theta)


def test_the_simulated_doubles_pair_lies_near_its_einstein_radius(lensed):
    assert positions.pair_einstein_radius(lensed, TRUTH.centre) == pytest.approx(TRUTH.einstein_radius, rel=0.1)


def test_one_peak_or_two_on_the_same_side_give_no_pair():
    assert np.isnan(positions.pair_einstein_radius(np.array([[1.0, 0.0]]), (0.0, 0.0)))
    assert np.isnan(positions.pair_einstein_radius(np.array([[1.0, 0.0], [0.8, 0.5]]), (0.0, 0.0)))
