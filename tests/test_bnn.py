"""P21's approximate Bayesian CNN: architecture, loss, targets, MC dropout and coverage."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from hybridlens.networks import bnn


def test_shapes_and_parameter_count():
    model = bnn.LensBNN(n_targets=3, dropout=0.05)
    mean, log_variance = model(torch.zeros(2, 1, 100, 100))
    assert mean.shape == (2, 3) and log_variance.shape == (2, 3)
    assert model.head[1].in_features == 4608  # P21 Fig 3: flatten 6 x 6 x 128
    conv = sum(
        f_in * f_out * k * k + f_out for f_in, f_out, k in zip((1, 32, 64, 64, 128, 128), bnn.FILTERS, bnn.KERNELS)
    )
    norm = 2 * sum(bnn.FILTERS)
    dense = 4608 * 512 + 512 + 512 * 6 + 6
    assert bnn.count_parameters(model) == conv + norm + dense  # "over 4 million" (P21): 5.36 M
    assert bnn.count_parameters(bnn.LensBNN(4, 0.05)) == bnn.count_parameters(model) + 512 * 2 + 2


def test_width_keeps_the_flatten_and_cuts_the_filters():
    small = bnn.LensBNN(n_targets=3, dropout=0.05, width=0.25)
    assert small.head[1].in_features == 4608
    assert bnn.filters_for(0.25) == (8, 16, 16, 32, 32, 128)
    assert small(torch.zeros(2, 1, 100, 100))[0].shape == (2, 3)


def _sie_image(axis_ratio, angle, shape=(60, 60)):
    import autolens as al

    grid = al.Grid2D.uniform(shape_native=shape, pixel_scales=0.1)
    mass = al.mp.Isothermal(
        centre=(0.0, 0.0), einstein_radius=1.2, ell_comps=al.convert.ell_comps_from(axis_ratio=axis_ratio, angle=angle)
    )
    source = al.lp.SersicCore(centre=(0.0, 0.0), intensity=1.0, effective_radius=0.3, sersic_index=1.0)
    tracer = al.Tracer(galaxies=[al.Galaxy(redshift=0.5, mass=mass), al.Galaxy(redshift=1.0, light=source)])
    return np.asarray(tracer.image_2d_from(grid=grid).native)


def test_symmetry_augmentation_matches_a_lens_simulated_at_the_implied_parameters():
    """Rotated / mirrored images of an SIE equal SIEs simulated at the (q, phi) the augmented targets say."""
    q, phi = 0.6, 25.0
    image = torch.as_tensor(_sie_image(q, phi), dtype=torch.float32)[None, None].repeat(8, 1, 1, 1)
    scaling = bnn.TargetScaling.for_ranges("sie", LENS)
    targets = torch.as_tensor(
        scaling.scale(
            bnn.targets_from_params({"einstein_radius": [1.2], "axis_ratio": [q], "angle": [phi]}, scaling.names)
        ),
        dtype=torch.float32,
    ).repeat(8, 1)
    images, augmented = bnn.symmetry_augment(image, targets, scaling, torch.Generator().manual_seed(3))
    physical = scaling.unscale(augmented.numpy())
    assert np.allclose(physical[:, 0], 1.2, atol=1e-5)  # theta_E invariant
    new_q, new_phi = bnn.axis_ratio_angle(physical[:, 1], physical[:, 2])
    assert len({round(float(a)) for a in new_phi}) >= 3  # several distinct symmetries were drawn
    for picture, q_i, phi_i in zip(images, new_q, new_phi):
        expected = _sie_image(q_i, phi_i)
        assert np.abs(picture[0].numpy() - expected).max() < 1e-3 * expected.max()
    # and the unaugmented image is not equal to a wrongly oriented one (the test can fail)
    assert np.abs(_sie_image(q, phi + 90.0) - _sie_image(q, phi)).max() > 0.05 * _sie_image(q, phi).max()


def test_nll_equals_a_hand_computation():
    mean = torch.tensor([[0.2, 0.5]])
    log_variance = torch.tensor([[math.log(0.04), 0.0]])
    target = torch.tensor([[0.4, 0.5]])
    # (0.2)^2 / (2 * 0.04) + log(0.04) / 2 = 0.5 - 1.6094; second parameter: 0 + 0
    expected = ((0.5 + 0.5 * math.log(0.04)) + 0.0) / 2
    assert bnn.heteroscedastic_nll(mean, log_variance, target).item() == pytest.approx(expected, rel=1e-6)


def test_a_few_optimiser_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = bnn.LensBNN(n_targets=3, dropout=0.0)
    images, targets = torch.rand(8, 1, 100, 100), torch.rand(8, 3)
    optimiser = torch.optim.NAdam(model.parameters(), lr=1e-4)  # batch norm on 8 images: a gentler step than P21's
    losses = []
    for _ in range(10):
        optimiser.zero_grad()
        loss = bnn.heteroscedastic_nll(*model(images), targets)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < losses[0] - 0.3


@pytest.mark.parametrize("angle", [0.0, 1.0, 45.0, 90.0, 135.0, 179.0])
def test_ellipticity_round_trips_including_the_angle_wrap(angle):
    q, phi = bnn.axis_ratio_angle(*bnn.ellipticity(0.7, angle))
    assert q == pytest.approx(0.7) and min(abs(phi - angle), 180 - abs(phi - angle)) < 1e-9
    # an ellipse at -1 degree is the one at 179: same (e1, e2)
    assert np.allclose(bnn.ellipticity(0.6, -1.0), bnn.ellipticity(0.6, 179.0))


def test_scaled_targets_map_back():
    lens = {
        "einstein_radius": {"min": 0.2, "max": 3.2},
        "axis_ratio": {"min": 0.4, "max": 1.0},
        "slope": {"min": 1.5, "max": 2.5},
    }
    scaling = bnn.TargetScaling.for_ranges("power_law", lens)
    values = np.array([[0.2, -3 / 7, 3 / 7, 2.5], [1.7, 0.0, 0.1, 2.0]])
    assert scaling.scale(values)[0] == pytest.approx([0, 0, 1, 1])
    assert scaling.unscale(scaling.scale(values)) == pytest.approx(values)


def test_coverage_of_calibrated_and_over_confident_predictors():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=(200_000, 2))
    sigma = np.full_like(truth, 0.1)
    prediction = truth + sigma * rng.standard_normal(truth.shape)
    calibrated = bnn.coverage(prediction, sigma, truth)
    for k, expected in bnn.GAUSSIAN_COVERAGE.items():
        assert calibrated[k] == pytest.approx([expected, expected], abs=0.005)
    over_confident = bnn.coverage(prediction, 0.5 * sigma, truth)
    assert (over_confident[1] < 0.45).all() and (over_confident[3] < 0.9).all()
    assert bnn.coverage_distance(calibrated) < 0.02 < bnn.coverage_distance(over_confident)


def test_mc_dropout_spreads_only_with_dropout():
    torch.manual_seed(1)
    images = torch.rand(3, 1, 100, 100)
    for dropout, spread in ((0.0, False), (0.3, True)):
        model = bnn.LensBNN(n_targets=3, dropout=dropout)
        p = bnn.mc_predict(model, images, passes=10, batch_size=30)
        assert p.mean.shape == p.sigma.shape == (3, 3)
        assert (p.epistemic > 1e-6).all() == spread
        assert np.allclose(p.sigma**2, p.aleatoric**2 + p.epistemic**2, rtol=1e-5)


def test_the_mc_record_names_its_parts_and_its_sigma_grows_with_dropout():
    torch.manual_seed(2)
    images = torch.rand(4, 1, 100, 100)
    model = bnn.LensBNN(n_targets=3, dropout=0.2, width=0.25)
    with torch.no_grad():  # a confident network: small predicted variances, so the passes' spread shows
        model.head[-1].bias[3:] = torch.tensor([-20.0, -18.0, -22.0])
    on = bnn.mc_predict(model, images, passes=20, batch_size=40, generator_seed=5)
    assert isinstance(on, bnn.MCPrediction)
    again = bnn.mc_predict(model, images, passes=20, batch_size=40, generator_seed=5)
    np.testing.assert_array_equal(again.sigma, on.sigma)  # the seed fixes the dropout masks
    assert [f.name for f in dataclasses.fields(on)] == ["mean", "sigma", "aleatoric", "epistemic"]
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    off = bnn.mc_predict(model, images, passes=20, batch_size=40, generator_seed=5)
    np.testing.assert_array_equal(off.epistemic, 0.0)  # every pass alike: no spread of the means
    np.testing.assert_allclose(off.sigma, off.aleatoric, rtol=1e-6)  # sigma is then the predicted noise alone
    assert (on.epistemic > 0).all() and (on.sigma > on.aleatoric).all()
    assert (on.sigma > 3 * off.sigma).all()  # turning dropout on widens the total
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.2
    one_pass = bnn.mc_predict(model, images, passes=1)
    np.testing.assert_array_equal(one_pass.epistemic, 0.0)  # one pass, dropout or not, has no spread


def test_q_and_phi_from_ellipticity_predictions():
    e1, e2 = bnn.ellipticity(np.array([0.8, 0.5]), np.array([178.0, 30.0]))
    mean = np.column_stack([[1.0, 1.0], e1, e2])
    sigma = np.column_stack([[0.1, 0.1], [0.01, 0.01], [0.01, 0.01]])
    derived = bnn.with_axis_ratio_angle(("einstein_radius", "e1", "e2"), mean, sigma)
    assert derived["axis_ratio"][0] == pytest.approx([0.8, 0.5])
    assert derived["angle"][0] == pytest.approx([178.0, 30.0])
    # the angle's spread is not inflated by the wrap at 0/180 degrees
    assert (derived["angle"][1] < 5.0).all()


LENS = {
    "einstein_radius": {"min": 0.2, "max": 3.2},
    "axis_ratio": {"min": 0.4, "max": 1.0},
    "slope": {"min": 1.5, "max": 2.5},
}


@pytest.mark.parametrize(
    "draw, expected",
    [
        (lambda rng, n: rng.normal(0.3, 2.0, n), 2.0),  # a Gaussian's 68 % half-width is its sigma, offset or not
        (lambda rng, n: rng.uniform(-1.0, 1.0, n), 0.6826),  # uniform: the central 68.26 % of [-1, 1]
        (lambda rng, n: rng.laplace(0.0, 1.0, n), -np.log(1 - 0.6826)),  # Laplace: -b ln(1 - p)
    ],
)
def test_the_68_percent_interval_of_known_distributions(draw, expected):
    errors = draw(np.random.default_rng(4), 400_000)
    assert bnn.interval68(errors, 0.0) == pytest.approx(expected, rel=0.01)


def test_symmetric_passes_make_the_prediction_equivariant():
    """A quarter-turned, mirrored stamp gets the same theta_E and the (e1, e2) the symmetry implies.

    Without dropout the 8 views of a stamp are the 8 views of its turned copy,
    reordered, so the means agree to rounding; plain passes do not.
    """
    torch.manual_seed(5)
    scaling = bnn.TargetScaling.for_ranges("sie", LENS)
    model = bnn.LensBNN(3, dropout=0.0, width=0.25)
    images = torch.rand(4, 1, 100, 100)
    turned = bnn.dihedral(images, 1, True)
    signs = bnn.dihedral_signs(scaling.names, 1, True)
    assert list(signs) == [1.0, -1.0, 1.0]  # quarter turn flips (e1, e2), the mirror flips e2 back
    straight = scaling.unscale(bnn.mc_predict(model, images, 8, 64, 0, scaling=scaling).mean)
    rotated = scaling.unscale(bnn.mc_predict(model, turned, 8, 64, 0, scaling=scaling).mean)
    assert np.allclose(rotated, straight * signs, atol=1e-5)
    plain = scaling.unscale(bnn.mc_predict(model, turned, 8, 64, 0).mean)
    assert not np.allclose(plain, straight * signs, atol=1e-3)


def test_sigma_scale_recovers_a_known_miscalibration_and_restores_coverage():
    rng = np.random.default_rng(1)
    truth = {"einstein_radius": rng.uniform(1, 2, 100_000), "angle": rng.uniform(0, 180, 100_000)}
    # theta_E over-confident by 2; phi under-confident by 2, its errors wrapping at 0/180
    true_sigma, reported = {"einstein_radius": 0.1, "angle": 10.0}, {"einstein_radius": 0.05, "angle": 20.0}

    def draw():
        return {
            name: (truth[name] + true_sigma[name] * rng.standard_normal(100_000), np.full(100_000, reported[name]))
            for name in truth
        }

    factors = bnn.sigma_scale(draw(), truth)
    assert factors == pytest.approx({"einstein_radius": 2.0, "angle": 0.5}, rel=0.02)
    fresh = bnn.rescaled(draw(), factors)
    error = {name: (mean - truth[name] + 90.0) % 180.0 - 90.0 for name, (mean, _) in fresh.items()}
    for name, (_, sigma) in fresh.items():
        assert np.mean(np.abs(error[name]) <= 2 * sigma) == pytest.approx(0.954, abs=0.01)


def test_beta_nll_gives_the_means_mse_gradients_at_beta_one():
    mean = torch.tensor([[0.2, 0.7]], requires_grad=True)
    log_variance = torch.tensor([[math.log(0.04), math.log(9.0)]])
    target = torch.tensor([[0.4, 0.5]])
    bnn.heteroscedastic_nll(mean, log_variance, target, beta=1.0).backward()
    assert mean.grad.numpy() == pytest.approx(np.array([[-0.1, 0.1]]), rel=1e-5)  # (mean - target) / n, whatever sigma
    mean.grad = None
    bnn.heteroscedastic_nll(mean, log_variance, target).backward()
    assert mean.grad.numpy() == pytest.approx(np.array([[-0.2 / 0.04 / 2, 0.2 / 9.0 / 2]]), rel=1e-5)
