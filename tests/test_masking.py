import numpy as np
import pytest

from hybridlens.flags import MaskFlag
from hybridlens.reconstruction import masking

SHAPE, PIXEL = (100, 100), 0.1


def ring(radius, width, centre=(0.0, 0.0), peak=5.0):
    y, x = masking.pixel_coordinates(SHAPE, PIXEL)
    r = np.hypot(y - centre[0], x - centre[1])
    return peak * np.exp(-0.5 * ((r - radius) / width) ** 2)


def noisy(image, sigma=0.05, seed=3):
    return image + np.random.default_rng(seed).normal(0.0, sigma, image.shape)


def test_flat_annulus_radii_are_recovered():
    """A uniform annulus r in [0.8, 1.6]: inner = 0.9 x 0.8, outer = 1.1 x 1.6 (to a pixel)."""
    truth = 5.0 * masking.annular_mask(SHAPE, PIXEL, 0.8, 1.6)
    result = masking.fit_annulus(noisy(truth), PIXEL)
    assert result.flags == 0
    assert result.inner_radius == pytest.approx(0.9 * 0.8, abs=0.9 * PIXEL)
    assert result.outer_radius == pytest.approx(1.1 * 1.6, abs=1.1 * PIXEL)
    assert np.hypot(*result.centre) < 0.5 * PIXEL


def test_gaussian_ring_keeps_99_percent_of_its_flux_and_finds_an_offset_centre():
    centre = (0.35, -0.42)
    truth = ring(1.3, 0.12, centre)
    result = masking.fit_annulus(noisy(truth), PIXEL)
    assert (truth * result.mask).sum() / truth.sum() >= 0.99
    np.testing.assert_allclose(result.centre, centre, atol=PIXEL)
    assert result.inner_radius < 1.3 < result.outer_radius


def test_mask_matches_pyautolens_circular_annular():
    import autolens as al

    ours = masking.annular_mask(SHAPE, PIXEL, 0.7, 2.3, (0.2, -0.3))
    theirs = al.Mask2D.circular_annular(
        shape_native=SHAPE, pixel_scales=PIXEL, inner_radius=0.7, outer_radius=2.3, centre=(0.2, -0.3)
    )
    assert np.array_equal(ours, ~np.asarray(theirs))  # autolens: True = masked out


def test_noise_spikes_do_not_inflate_the_outer_radius():
    image = noisy(ring(1.0, 0.1))
    image[3, 3] = image[96, 90] = 4.0  # isolated hot pixels far from the ring
    result = masking.fit_annulus(image, PIXEL)
    assert result.outer_radius < 1.6


@pytest.mark.parametrize(
    "image, flag",
    [
        (np.full(SHAPE, np.nan), MaskFlag.NONFINITE),
        (np.where(np.eye(100, dtype=bool), np.inf, 0.0), MaskFlag.NONFINITE),
        (np.zeros(SHAPE), MaskFlag.EMPTY),
        (noisy(np.zeros(SHAPE)), MaskFlag.EMPTY),
    ],
)
def test_bad_images_are_flagged_not_crashed_on(image, flag):
    result = masking.fit_annulus(image, PIXEL)
    assert result.flags & flag
    assert not result.mask.any() and np.isnan(result.inner_radius)


def test_a_bad_image_in_a_shard_does_not_stop_the_rest():
    good = noisy(ring(1.2, 0.1))
    images = np.stack([good, np.full(SHAPE, np.nan), np.zeros(SHAPE), good])
    settings = {
        "inner_factor": 0.9,
        "outer_factor": 1.1,
        "min_region_pixels": 8,
        "min_threshold_sigma": 3.0,
        "smooth_pixels": 1.0,
    }
    out = masking.mask_shard(images, PIXEL, settings, input_flags=[0, 1, 0, 0], model_images=images)
    assert list(out["flags"] & MaskFlag.NO_MASK != 0) == [False, True, True, False]
    assert out["flags"][1] & MaskFlag.INPUT_FLAGGED
    assert out["mask"][0].any() and out["mask"][3].any()
    assert np.isfinite(out["params"]["outer_radius"][[0, 3]]).all()
    assert np.isnan(out["params"]["model_flux_fraction"][1])


def test_about_a_given_centre_a_lone_image_gives_a_disc_and_a_ring_an_annulus():
    from hybridlens.flags import MaskFlag

    y, x = masking.pixel_coordinates((80, 80), 0.1)
    ring = 20.0 * np.exp(-0.5 * ((np.hypot(y, x) - 1.5) / 0.1) ** 2)
    blob = 20.0 * np.exp(-0.5 * (np.hypot(y - 1.6, x) / 0.15) ** 2)
    noise = np.random.default_rng(0).normal(size=ring.shape)
    annulus = masking.fit_annulus(ring + noise, 0.1, centre=(0.0, 0.0))
    assert 1.0 < annulus.inner_radius < 1.5 and not annulus.flags
    lone = masking.fit_annulus(blob + noise, 0.1, centre=(0.0, 0.0))
    assert lone.inner_radius == 0.0 and lone.flags & MaskFlag.ONE_SIDED and lone.mask[40, 40]
    assert masking.fit_annulus(blob + noise, 0.1).centre[0] > 1.4  # M21's centroid sits on the image itself


def test_an_annulus_that_misses_the_lens_is_refitted_about_it_and_reaches_both_images():
    """A double with a bright image at +1.5" and a faint counter-image at -0.3" (theta_E 0.9")."""
    y, x = masking.pixel_coordinates(SHAPE, PIXEL)
    bright = 20.0 * np.exp(-0.5 * (np.hypot(y - 1.5, x) / 0.15) ** 2)
    faint = 1.0 * np.exp(-0.5 * (np.hypot(y + 0.3, x) / 0.15) ** 2)
    image = noisy(bright + faint, sigma=0.1, seed=5)
    settings = {"smooth_pixels": 1.0}
    arcs = masking.fit_annulus(image, PIXEL, **settings)
    assert arcs.outer_radius < 0.5 and not masking.encloses(arcs, (0.0, 0.0))  # a disc on the bright image
    annulus = masking.lens_annulus(image, PIXEL, settings, lens_centre=(0.0, 0.0))
    assert annulus.flags & MaskFlag.RECENTRED and annulus.centre == (0.0, 0.0)
    assert annulus.inner_radius < 0.3 and annulus.outer_radius > 1.5  # from the counter-image out past the bright one
    assert annulus.inner_radius < 0.9 < annulus.outer_radius


def test_an_annulus_about_the_arcs_that_holds_the_lens_is_kept():
    image = noisy(ring(1.2, 0.1, centre=(0.1, -0.05)))
    arcs = masking.fit_annulus(image, PIXEL)
    kept = masking.lens_annulus(image, PIXEL, {}, lens_centre=(0.1, -0.05))
    assert not kept.flags & MaskFlag.RECENTRED and kept.centre == arcs.centre
    assert (kept.inner_radius, kept.outer_radius) == (arcs.inner_radius, arcs.outer_radius)
