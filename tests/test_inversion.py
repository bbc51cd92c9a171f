"""Semi-linear inversion: theta_E recovery, U/C/O morphology, flux conservation."""

import autolens as al
import numpy as np
import pytest

from hybridlens.reconstruction import inversion, masking, trainingset
from hybridlens.simulation import simulate
from hybridlens.simulation.survey import NoiseModel
from inversion_helpers import INVERSION

SETTINGS = {**INVERSION, "log10_coefficient_tolerance": 0.05}  # a finer coefficient search than the shared one


@pytest.fixture(scope="module")
def lens(default_config, euclid):
    """A noiseless SLACS-like lens (data = model) with a realistic noise map, and its annulus."""
    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 0), default_config["simulate_slacs"], renderer, euclid)
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    masked = inversion.MaskedLens(sim.model_image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, SETTINGS)
    p = sim.params
    truth = inversion.Mass(p["einstein_radius"], p["axis_ratio"], p["angle"])
    coefficient, _ = masked.best_coefficient(truth)
    return sim, annulus, masked, truth, coefficient, renderer


def test_correct_scan_recovers_theta_e_within_two_percent(lens):
    _, _, masked, truth, coefficient, _ = lens
    theta, _ = trainingset.maximise_in_window(
        lambda t: masked.log_evidence(truth.with_einstein_radius(t), coefficient),
        (0.8 * truth.einstein_radius, 1.2 * truth.einstein_radius),
        9,
        0.002,
    )
    assert theta == pytest.approx(truth.einstein_radius, rel=0.02)


def size(raster, half_width):
    """Flux-weighted rms radius of the positive part of a raster (arcsec)."""
    y, x = inversion.raster_coordinates(raster.shape, half_width)
    weight = np.clip(raster, 0, None)
    cy, cx = (weight * y).sum() / weight.sum(), (weight * x).sum() / weight.sum()
    return float(np.sqrt((weight * ((y - cy) ** 2 + (x - cx) ** 2)).sum() / weight.sum()))


def test_under_and_over_reconstructions_are_larger_than_the_correct_one(lens):
    sim, annulus, masked, truth, coefficient, _ = lens
    extent = annulus.outer_radius
    products = {
        name: masked.products(truth.with_einstein_radius(ratio * truth.einstein_radius), coefficient, (80, 80), extent)
        for name, ratio in (("under", 0.4), ("correct", 1.0), ("over", 2.1))
    }
    sizes = {name: size(p.source, extent) for name, p in products.items()}
    assert sizes["under"] > 1.5 * sizes["correct"] and sizes["over"] > 1.5 * sizes["correct"]
    assert sizes["over"] > sizes["under"]


def test_over_magnified_model_mirrors_the_data_and_under_does_not(lens, euclid):
    """Parity: the fraction of the observed flux where the model's lens mapping has det A < 0.

    The over-magnified model puts every image inside its tangential critical curve, so the
    reconstruction is a mirror image of the data; the under-magnified one maps the data
    without flipping it; the true model flips only the (fainter) counter-image.
    """
    sim, _, _, truth, _, renderer = lens
    fractions = {
        name: mirrored_flux_fraction(truth.with_einstein_radius(ratio * truth.einstein_radius), sim.model_image, euclid)
        for name, ratio in (("under", 0.4), ("correct", 1.0), ("over", 2.1))
    }
    assert fractions["over"] > 0.9
    assert fractions["under"] < 0.2
    assert 0.0 < fractions["correct"] < 0.5


def mirrored_flux_fraction(mass, image, survey):
    grid = al.Grid2D.uniform(shape_native=survey.shape, pixel_scales=survey.pixel_scale, over_sample_size=1)
    profile = inversion.lenses.mass_profile("sie", mass.centre, mass.einstein_radius, mass.axis_ratio, mass.angle)
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=profile), al.Galaxy(redshift=1.0)])
    beta = np.asarray(tracer.traced_grid_2d_list_from(grid=grid)[-1].native)
    step = survey.pixel_scale
    dby_dy, dby_dx = np.gradient(beta[..., 0], -step, step)  # rows run towards -y
    dbx_dy, dbx_dx = np.gradient(beta[..., 1], -step, step)
    determinant = dby_dy * dbx_dx - dby_dx * dbx_dy
    weight = np.clip(image, 0, None)
    return float(weight[determinant < 0].sum() / weight.sum())


def test_rasterised_flux_is_conserved(lens):
    sim, annulus, masked, truth, coefficient, renderer = lens
    fit = masked.fit(truth, coefficient)
    points = np.asarray(fit.inversion.linear_obj_list[0].source_plane_mesh_grid)
    values = np.asarray(fit.inversion.reconstruction)
    extent = annulus.outer_radius
    raster = inversion.rasterise(points, values, (200, 200), extent)
    pixel_area = (2 * extent / 200) ** 2
    mesh = inversion.mesh_flux(points, values)
    assert raster.sum() * pixel_area == pytest.approx(mesh, rel=0.02)
    true_flux, _ = renderer.flux_and_half_light_radius(simulate.sources.galaxy(sim.components, 1.0), (0.0, 0.0))
    assert mesh / renderer.survey.pixel_scale**2 == pytest.approx(true_flux, rel=0.1)


def test_products_have_the_cnn_shapes_and_zero_outside_the_mask(lens):
    _, annulus, masked, truth, coefficient, _ = lens
    products = masked.products(truth, coefficient, (100, 100), annulus.outer_radius)
    assert products.source.shape == (100, 100) and products.residual.shape == annulus.mask.shape
    assert not products.residual[~annulus.mask].any() and not products.chi_squared_map[~annulus.mask].any()
    assert products.chi_squared == pytest.approx(products.chi_squared_map.sum(), rel=1e-6)
    assert np.isfinite(products.log_evidence)


@pytest.fixture(scope="module")
def rectangular(lens, euclid):
    """The same lens inverted on a source-plane rectangle adapted to the traced grid's density."""
    sim, annulus, _, truth, _, renderer = lens
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    settings = {**SETTINGS, "mesh": "rectangular"}
    square = inversion.MaskedLens(sim.model_image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)
    coefficient, _ = square.best_coefficient(truth)
    return square, coefficient


def test_rectangular_mesh_evidence_is_smooth_and_peaks_at_the_true_einstein_radius(lens, rectangular):
    """ln Z along theta_E in 0.2 % steps rises to one peak within 0.4 % of the truth and falls.

    The Delaunay overlay's triangulation changes topology as the mass moves, so its ln Z
    jumps by tens between such steps; a sampler then chases the jumps.
    """
    truth = lens[3]
    square, coefficient = rectangular
    ratios = np.linspace(0.98, 1.02, 21)
    evidence = np.array(
        [square.log_evidence(truth.with_einstein_radius(truth.einstein_radius * r), coefficient) for r in ratios]
    )
    steps = np.sign(np.diff(evidence))
    assert np.count_nonzero(np.diff(steps)) == 1, evidence  # up, then down: one turn
    assert abs(ratios[np.argmax(evidence)] - 1.0) <= 0.004


def test_an_unknown_mesh_is_refused_by_its_key(lens, euclid):
    sim, annulus, _, _, _, renderer = lens
    with pytest.raises(ValueError, match="inversion.mesh"):
        inversion.MaskedLens(
            sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, {**SETTINGS, "mesh": "voronoi"}
        )


BRIGHTNESS = {"pixels": None, "weight_power": 1.0, "weight_floor": 0.1, "smooth_pixels": 1.0}


@pytest.fixture(scope="module")
def brightness(lens, euclid):
    """The same lens on a Delaunay mesh whose image-plane points follow the data's brightness."""
    sim, annulus, _, truth, _, renderer = lens
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    settings = {**SETTINGS, "image_mesh": "brightness", "brightness_mesh": BRIGHTNESS}
    args = (sim.model_image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)
    return inversion.MaskedLens(*args), args


def test_brightness_mesh_puts_its_points_on_the_arcs(lens, brightness):
    """As many points as the overlay, but a larger share of them on the bright pixels."""
    sim, annulus, overlay, *_ = lens
    masked, _ = brightness
    assert len(masked.mesh_grid) == len(overlay.mesh_grid)
    bright = (sim.model_image > 0.2 * sim.model_image[annulus.mask].max()) & annulus.mask

    def share_on_bright(grid):
        pixel = np.asarray(grid.array if hasattr(grid, "array") else grid)
        centre = (np.array(annulus.mask.shape) - 1) / 2.0
        rows = np.rint(centre[0] - pixel[:, 0] / 0.1).astype(int)
        cols = np.rint(centre[1] + pixel[:, 1] / 0.1).astype(int)
        return bright[rows, cols].mean()

    assert share_on_bright(masked.mesh_grid) > 1.5 * share_on_bright(overlay.mesh_grid)


def test_brightness_mesh_resolves_the_true_source_better_at_the_same_size(lens, brightness):
    """At the true SIE, the same number of source pixels placed on the arcs fits the arcs better."""
    _, annulus, overlay, truth, coefficient, _ = lens
    masked, _ = brightness
    chi2 = lambda m: float(m.fit(truth, m.best_coefficient(truth)[0]).chi_squared) / int(annulus.mask.sum())
    assert chi2(masked) < chi2(overlay)
    assert masked.best_coefficient(truth)[1] > overlay.best_coefficient(truth)[1]


def test_brightness_mesh_is_the_same_for_the_same_data_and_follows_the_source_image(lens, brightness):
    masked, args = brightness
    again = inversion.MaskedLens(*args)
    np.testing.assert_array_equal(np.asarray(again.mesh_grid), np.asarray(masked.mesh_grid))
    # a joint lens-light fit's mesh follows the lensed source, not the light in the image
    glow = np.exp(-np.hypot(*np.indices(args[0].shape) - 49.5) ** 2 / 200.0) * args[0].max() * 10
    lit = inversion.MaskedLens(args[0] + glow, *args[1:], source_image=args[0])
    np.testing.assert_array_equal(np.asarray(lit.mesh_grid), np.asarray(masked.mesh_grid))


def test_an_unknown_image_mesh_is_refused_by_its_key(lens, euclid):
    sim, annulus, _, _, _, renderer = lens
    settings = {**SETTINGS, "image_mesh": "hilbert", "brightness_mesh": BRIGHTNESS}
    with pytest.raises(ValueError, match="inversion.image_mesh"):
        inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)


def test_evidence_equals_a_stock_autolens_fit_of_the_same_model(lens, euclid):
    """The shortcuts (sparse operator, no split points, lp grid 1x1) change the cost, not ln Z."""
    sim, annulus, masked, truth, coefficient, renderer = lens
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    mask2d = al.Mask2D(mask=~annulus.mask, pixel_scales=euclid.pixel_scale)
    dataset = al.Imaging(
        data=al.Array2D.no_mask(sim.model_image, pixel_scales=euclid.pixel_scale),
        noise_map=al.Array2D.no_mask(noise_map, pixel_scales=euclid.pixel_scale),
        psf=al.Convolver(kernel=al.Array2D.no_mask(renderer.psf, pixel_scales=euclid.pixel_scale)),
        over_sample_size_lp=SETTINGS["over_sample"],
        over_sample_size_pixelization=SETTINGS["over_sample"],
    ).apply_mask(mask2d)
    for ratio in (0.9, 1.0, 1.1):
        mass = truth.with_einstein_radius(ratio * truth.einstein_radius)
        profile = al.mp.Isothermal(
            centre=mass.centre,
            einstein_radius=mass.einstein_radius,
            ell_comps=al.convert.ell_comps_from(axis_ratio=mass.axis_ratio, angle=mass.angle),
        )
        pixelization = al.Pixelization(
            mesh=al.mesh.Delaunay(pixels=len(masked.mesh_grid)), regularization=al.reg.Constant(coefficient=coefficient)
        )
        source = al.Galaxy(redshift=inversion.REDSHIFTS[1], pixelization=pixelization)
        tracer = al.Tracer(galaxies=[al.Galaxy(redshift=inversion.REDSHIFTS[0], mass=profile), source])
        stock = al.FitImaging(
            dataset=dataset,
            tracer=tracer,
            adapt_images=al.AdaptImages(galaxy_image_plane_mesh_grid_dict={source: masked.mesh_grid}),
            settings=al.Settings(use_positive_only_solver=SETTINGS["positive_only"]),
        )
        assert masked.log_evidence(mass, coefficient) == pytest.approx(float(stock.log_evidence), rel=1e-8)


def test_evidence_with_adaptive_sub_pixels_equals_pyautolens_fit(lens, euclid):
    """Sub-pixels 4x4 on the arcs, 2x2 elsewhere (`over_sample_faint`): the shortcut's ln Z is the
    stock `FitImaging`'s of the same dataset."""
    sim, annulus, _, truth, coefficient, renderer = lens
    noise_map = np.sqrt(NoiseModel(True, True, False, False).variance(euclid, sim.model_image))
    settings = {**SETTINGS, "over_sample_faint": 2, "over_sample_faint_snr": 1.0}
    masked = inversion.MaskedLens(sim.model_image, noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, settings)
    sizes = np.asarray(masked.dataset.grids.pixelization.over_sampler.sub_size)
    assert {2, 4} <= set(sizes.tolist())
    for ratio in (0.95, 1.0):
        mass = truth.with_einstein_radius(ratio * truth.einstein_radius)
        assert masked.log_evidence(mass, coefficient) == pytest.approx(
            float(masked.fit(mass, coefficient).log_evidence), rel=1e-9
        )


def test_critical_curve_map_vanishes_on_pyautolens_tangential_critical_curve():
    """log2(2 kappa) is zero where PyAutoLens' own eigenvalue contour puts an SIE's critical curve."""
    profile = inversion.MaskedLens.profile(inversion.Mass(1.2, 0.7, 30.0, (0.1, -0.05)))
    pixel_scale, shape = 0.05, (100, 100)
    curve_map = inversion.critical_curve_map(profile, shape, pixel_scale)
    grid = al.Grid2D.uniform(shape_native=shape, pixel_scales=pixel_scale)
    (curve,) = al.LensCalc.from_mass_obj(profile).tangential_critical_curve_list_from(grid=grid)
    rows = np.clip(np.round((shape[0] - 1) / 2 - np.asarray(curve)[:, 0] / pixel_scale).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.round((shape[1] - 1) / 2 + np.asarray(curve)[:, 1] / pixel_scale).astype(int), 0, shape[1] - 1)
    on_curve = np.abs(curve_map[rows, cols])
    # one pixel from the curve moves log2(2 kappa) by ~ pixel / (r ln 2) ~ 0.06-0.1 here
    assert np.median(on_curve) < 0.05 and on_curve.max() < 0.15
    assert curve_map[48, 48] == inversion.CRITICAL_CURVE_CLIP  # the pixel by the centre: kappa >> 1, clipped
    assert curve_map[0, 0] < -1.0  # the corner, ~3 theta_E out


def test_products_carry_the_datas_signal_to_noise_and_the_models_critical_curve(lens):
    """The maps the classifier may take: the data's S/N inside the mask only, and the ring of the
    model handed over (for an SIE kappa scales with theta_E, so the map moves by log2 of the ratio)."""
    sim, annulus, masked, truth, coefficient, _ = lens
    products = {
        ratio: masked.products(truth.with_einstein_radius(ratio * truth.einstein_radius), coefficient, (100, 100), 2.0)
        for ratio in (0.7, 1.0)
    }
    snr = products[1.0].signal_to_noise
    assert not snr[~annulus.mask].any()
    assert np.unravel_index(np.argmax(snr), snr.shape) == np.unravel_index(
        np.argmax(np.where(annulus.mask, sim.model_image, -np.inf)), snr.shape
    )
    inside = np.abs(products[1.0].critical_curve) < 2.0
    shift = products[0.7].critical_curve[inside] - products[1.0].critical_curve[inside]
    np.testing.assert_allclose(shift, np.log2(0.7), atol=1e-6)
