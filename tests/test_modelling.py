"""The (q, phi) SIE model, its priors and the posterior summaries of a fit."""

import autofit as af
import autolens as al
import numpy as np
import pytest

from hybridlens.fitting import modelling

PRIORS = {
    "centre_half_width": 0.3,
    "axis_ratio_range": [0.25, 0.999],
    "angle_range": [0.0, 180.0],
    "log10_coefficient_range": [-3.0, 2.0],
}


def draws(priors, n, seed=0):
    """Model instances at `n` random points of the unit cube, and the vectors that made them."""
    model = modelling.sie_model(priors, al.mesh.Delaunay(pixels=100))
    rng = np.random.default_rng(seed)
    instances, vectors = [], []
    for unit in rng.uniform(size=(n, model.prior_count)):
        vector = model.vector_from_unit_vector(list(unit))
        instances.append(model.instance_from_vector(vector))
        vectors.append(vector)
    return model, instances, np.array(vectors)


def ellipse_of(instance):
    mass = instance.galaxies.lens.mass
    q, angle = al.convert.axis_ratio_and_angle_from(ell_comps=mass.ell_comps)
    return float(q), float(angle) % 180.0


def circular_distance(a, b, period=180.0):
    return np.abs((np.asarray(a) - b + 0.5 * period) % period - 0.5 * period)


def test_m21_priors_hold_and_round_trip_through_ell_comps():
    priors = modelling.uniform_priors((0.0, 0.0), (0.3, 2.0), PRIORS)
    model, instances, vectors = draws(priors, 400)
    columns = {path[-1]: i for i, path in enumerate(model.paths)}
    recovered = np.array([ellipse_of(instance) for instance in instances])
    np.testing.assert_allclose(recovered[:, 0], vectors[:, columns["axis_ratio"]], atol=1e-9)
    assert circular_distance(recovered[:, 1], vectors[:, columns["angle"]]).max() < 1e-7
    # Uniform in q and phi, as M21 states (a square prior on ell_comps is neither).
    assert recovered[:, 0].min() >= 0.25 and np.mean(recovered[:, 0]) == pytest.approx(0.6245, abs=0.03)
    assert np.histogram(recovered[:, 1], bins=4, range=(0, 180))[0].min() > 70


def test_sie_deflects_like_isothermal_with_the_same_ellipse():
    sie = modelling.SIE(centre=(0.05, -0.1), einstein_radius=1.3, axis_ratio=0.6, angle=110.0)
    reference = al.mp.Isothermal(
        centre=(0.05, -0.1), ell_comps=al.convert.ell_comps_from(axis_ratio=0.6, angle=110.0), einstein_radius=1.3
    )
    grid = al.Grid2DIrregular([(0.7, 0.2), (-1.1, 0.4), (0.3, -1.5)])
    np.testing.assert_allclose(sie.deflections_yx_2d_from(grid=grid), reference.deflections_yx_2d_from(grid=grid))


def test_gaussian_angle_prior_wraps_across_zero():
    base = modelling.uniform_priors((0.0, 0.0), (0.3, 2.0), PRIORS)
    priors = base.replace(angle=modelling.Prior.gaussian(178.0, 5.0))
    _, instances, _ = draws(priors, 400, seed=1)
    angles = np.array([ellipse_of(instance)[1] for instance in instances])
    distance = circular_distance(angles, 178.0)
    assert np.percentile(distance, 68) == pytest.approx(5.0, rel=0.2)  # a 5-degree Gaussian about 178...
    assert (angles < 20).mean() > 0.25  # ...whose upper half lands just past 0 degrees


def test_posterior_summary_of_an_angle_straddling_180():
    rng = np.random.default_rng(2)
    samples = (rng.normal(179.0, 3.0, 20_000)) % 180.0
    summary = modelling.posterior_summary({"angle": samples}, np.ones(samples.size))
    assert circular_distance(summary["median"]["angle"], 179.0) < 0.2
    assert summary["upper"]["angle"] - summary["lower"]["angle"] == pytest.approx(6.0, rel=0.05)
    assert 0.0 <= summary["median"]["angle"] < 180.0


def test_weighted_quantiles_follow_the_weights():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    weights = np.array([0.0, 0.0, 1.0, 0.0])
    assert modelling.weighted_quantiles(values, weights + 1e-12, [0.5])[0] == pytest.approx(3.0, abs=1e-6)
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 0.5, 50_000)
    low, median, high = modelling.weighted_quantiles(x, np.ones_like(x), [0.16, 0.5, 0.84])
    assert median == pytest.approx(2.0, abs=0.01) and high - low == pytest.approx(1.0, rel=0.03)


def test_truncated_gaussian_axis_ratio_stays_physical():
    base = modelling.uniform_priors((0.0, 0.0), (0.3, 2.0), PRIORS)
    priors = base.replace(axis_ratio=modelling.Prior.gaussian(0.95, 0.1, 0.25, 0.999))
    _, instances, _ = draws(priors, 300, seed=4)
    q = np.array([ellipse_of(instance)[0] for instance in instances])
    assert q.max() <= 0.999 + 1e-9 and np.median(q) < 0.95  # the cut at 0.999 pulls the median below the mean


def test_a_slope_prior_makes_the_lens_a_power_law_with_the_same_ellipse():
    priors = modelling.uniform_priors((0.0, 0.0), (0.3, 2.0), PRIORS)
    model = modelling.sie_model(priors, al.mesh.Delaunay(pixels=100), slope=modelling.Prior.uniform(1.5, 2.5))
    vector = model.vector_from_unit_vector([0.5] * model.prior_count)
    mass = model.instance_from_vector(vector).galaxies.lens.mass
    assert isinstance(mass, al.mp.PowerLaw) and mass.slope == pytest.approx(2.0)
    table = modelling.parameter_table(model, [vector])
    assert list(table) == ["centre_y", "centre_x", "einstein_radius", "axis_ratio", "angle", "slope", "coefficient"]
    # at slope 2 the power law deflects as the SIE of the same parameters
    sie = modelling.SIE(
        centre=mass.centre,
        einstein_radius=mass.einstein_radius,
        axis_ratio=table["axis_ratio"][0],
        angle=table["angle"][0],
    )
    grid = al.Grid2DIrregular([(0.7, 0.2), (-1.1, 0.4)])
    np.testing.assert_allclose(mass.deflections_yx_2d_from(grid=grid), sie.deflections_yx_2d_from(grid=grid), rtol=1e-4)


def test_the_search_settings_reach_the_networks_nautilus_trains():
    """`network_max_iter` / `network_tol` of a config's search block stop each bound network's training.

    A Gaussian likelihood in 3-D, sampled by the same Nautilus class `fit_sie` builds:
    with one epoch allowed, every network of every neural bound stops after one epoch;
    with Nautilus' own stop they train for many.
    """

    def log_likelihood(x):
        return -0.5 * np.sum(((x - 0.5) / 0.02) ** 2, axis=-1)

    def epochs(overrides):
        base = {"n_live": 50, "max_calls": 800, "f_live": 0.05, "n_eff": 100, "n_batch": 50}
        search = modelling.SearchSettings.from_config(base, {"n_networks": 1, **overrides})
        nautilus = modelling._Nautilus(network_kwargs=search.network_kwargs(), name="t", n_live=search.n_live)
        sampler = nautilus.sampler_cls(
            prior=lambda u: u, likelihood=log_likelihood, n_dim=3, n_live=50, vectorized=True, seed=1
        )
        sampler.run(n_like_max=search.max_calls, verbose=False)
        networks = [
            net
            for bound in sampler.bounds[1:]
            for neural in bound.neural_bounds
            for net in neural.emulator.neural_networks
        ]
        assert networks, "no neural bound was built"
        return [net.n_iter_ for net in networks]

    assert set(epochs({"network_max_iter": 1})) == {1}
    assert min(epochs({})) > 10


@pytest.fixture(scope="module")
def cut_lens(default_config, euclid):
    """A noisy SLACS-like lens, masked, with its arcs' peaks as `PositionCut`."""
    from hybridlens.reconstruction import inversion, masking, positions
    from hybridlens.simulation import simulate
    from inversion_helpers import INVERSION

    renderer = simulate.Renderer(euclid, 4)
    sim = simulate.slacs_image(simulate.image_rng(2, "slacs", 1), default_config["simulate_slacs"], renderer, euclid)
    annulus = masking.fit_annulus(sim.image, euclid.pixel_scale)
    masked = inversion.MaskedLens(sim.image, sim.noise_map, annulus.mask, renderer.psf, euclid.pixel_scale, INVERSION)
    peaks = positions.arc_peaks(sim.image, sim.noise_map, annulus.mask, euclid.pixel_scale)
    cut = modelling.PositionCut.from_settings(peaks, positions.PositionSettings())
    return masked, inversion.Mass.from_truth(sim.params), annulus, cut


def instance_at(masked, mass, coefficient=1.0):
    priors = modelling.uniform_priors(mass.centre, (0.1, 5.0), PRIORS)
    model = modelling.sie_model(priors, masked.mesh())
    return model.instance_from_vector([*mass.centre, mass.einstein_radius, mass.axis_ratio, mass.angle, coefficient])


def test_the_position_cut_passes_the_truth_unchanged_and_skips_split_models(cut_lens):
    """Where the images meet, the cut analysis is PyAutoLens' likelihood to the bit; where they do not,
    a penalty far below it that falls as the images move further apart."""
    masked, truth, _, cut = cut_lens
    assert cut is not None and cut.excess(instance_at(masked, truth).galaxies.lens.mass) < 0.0
    plain, cutting = modelling.analysis_for(masked), modelling.analysis_for(masked, cut)
    at_truth = instance_at(masked, truth)
    assert cutting.log_likelihood_function(at_truth) == plain.log_likelihood_function(at_truth)
    assert cutting.cut_calls == 0
    under = [
        cutting.log_likelihood_function(instance_at(masked, truth.with_einstein_radius(f * truth.einstein_radius)))
        for f in (0.7, 0.5)
    ]
    assert cutting.cut_calls == 2
    assert under[1] < under[0] < modelling.CUT_LOG_LIKELIHOOD < plain.log_likelihood_function(at_truth)


def test_a_blind_fit_with_the_position_cut_ends_where_the_images_meet(cut_lens, tmp_path):
    """M21's blind priors, θ_E over the annulus: the cut answers part of the prior without an
    inversion and the converged fit is the physical solution, images meeting, θ_E within 5 %."""
    masked, truth, annulus, cut = cut_lens
    modelling.configure(tmp_path)
    search = modelling.SearchSettings(n_live=20, max_calls=20_000, f_live=0.05, n_eff=100, n_batch=10)
    priors = modelling.uniform_priors(truth.centre, (annulus.inner_radius, annulus.outer_radius), PRIORS)
    result = modelling.fit_sie(masked, priors, search, "blind", seed=3, cut=cut)
    assert not result.hit_call_cap
    assert result.cut_calls > 0
    best = instance_at(masked, result.mass(), result.max_likelihood["coefficient"]).galaxies.lens.mass
    assert cut.excess(best) < 0.0
    assert result.mass().einstein_radius == pytest.approx(truth.einstein_radius, rel=0.05)


def test_the_fits_likelihood_is_pyautolens_own_for_an_sie_and_a_power_law(cut_lens):
    """The sampler's likelihood (`delaunay.Evidence` behind `analysis_for`) equals PyAutoLens'
    `AnalysisImaging` on the same instance, a P21 power law and extreme models included."""
    masked, truth, _, _ = cut_lens
    assert masked.evidence is not None
    ours = modelling.analysis_for(masked)
    stock = al.AnalysisImaging(
        dataset=masked.dataset,
        adapt_images=al.AdaptImages(
            galaxy_name_image_plane_mesh_grid_dict={"('galaxies', 'source')": masked.mesh_grid}
        ),
        settings=masked.solver,
        raise_inversion_positions_likelihood_exception=False,
        use_jax=False,
    )
    priors = modelling.uniform_priors(truth.centre, (0.1, 5.0), PRIORS)
    values = [*truth.centre, 0.93 * truth.einstein_radius, truth.axis_ratio, truth.angle]
    for slope, extra in ((None, []), (modelling.Prior.uniform(1.5, 2.5), [2.2])):
        model = modelling.sie_model(priors, masked.mesh(), slope=slope)
        instance = model.instance_from_vector([*values, *extra, 0.8])
        assert ours.log_likelihood_function(instance) == pytest.approx(
            stock.log_likelihood_function(instance), rel=1e-9
        )
    # a vanishing coefficient, and a lens far off the mask (every traced point relocated to the border)
    model = modelling.sie_model(priors, masked.mesh())
    for vector in ([*values, 1e-30], [30.0, 30.0, *values[2:], 1.0]):
        instance = model.instance_from_vector(vector, ignore_assertions=True)
        assert ours.log_likelihood_function(instance) == pytest.approx(
            stock.log_likelihood_function(instance), rel=1e-9
        )
