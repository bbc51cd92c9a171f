"""P21's approximate Bayesian CNN: lens-parameter means and aleatoric variances, MC dropout for the rest.

The network (P21 section 3.2.1, Fig 3): six convolutions (kernels 3, 7, 5, 7,
11, 5; stride 1, zero padding) each followed by ReLU, dropout and batch
normalisation, four 2x2 max-pools (100 -> 50 -> 25 -> 12 -> 6), flatten
(6 x 6 x 128 = 4,608), a 512-unit dense layer and an output layer holding a
mean and a log-variance s = log sigma^2 per parameter. Loss: the
heteroscedastic Gaussian negative log-likelihood (P21 eq. 2). At inference the
dropout stays on (MC dropout): the spread of the means over passes is the
epistemic part, the mean of exp(s) the aleatoric part, added in quadrature.

Targets: theta_E, the complex ellipticity (e1, e2) of P21 eq. 1 instead of
(q, phi) (no wrap at 0/180 degrees, no pile-up at q = 1) and, for the power
law, the slope; each scaled linearly to [0, 1] over its training range.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FILTERS = (32, 64, 64, 128, 128, 128)  # P21 Fig 3 at width 1
KERNELS = (3, 7, 5, 7, 11, 5)
POOL_AFTER = (True, True, False, True, True, False)  # four 2x2 max-pools: 100 -> 50 -> 25 -> 12 -> 6
TARGETS = {"sie": ("einstein_radius", "e1", "e2"), "power_law": ("einstein_radius", "e1", "e2", "slope")}


def filters_for(width):
    """P21's filters times `width`; the last stays 128 so the flatten keeps P21's 4,608.

    A width below 1 is the small-scale lever: convolution cost falls ~width^2
    (0.25 -> ~12x cheaper on a CPU), which is what lets a laptop run take
    hundreds of optimiser steps instead of a few dozen.
    """
    return tuple(max(4, int(round(f * width))) for f in FILTERS[:-1]) + FILTERS[-1:]


class LensBNN(nn.Module):
    """P21's network; `binning` > 1 first averages b x b pixel blocks (input size as a tuned setting).

    The binning is a layer of the network, so every caller passes full-size images
    and a cutout is binned exactly as the training images were.
    """

    def __init__(self, n_targets, dropout, width=1.0, input_size=100, dense=512, binning=1):
        super().__init__()
        layers, channels, size = [], 1, input_size // binning
        if binning > 1:
            layers.append(nn.AvgPool2d(binning))
        for filters, kernel, pool in zip(filters_for(width), KERNELS, POOL_AFTER):
            layers += [nn.Conv2d(channels, filters, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
            layers += [nn.Dropout(dropout), nn.BatchNorm2d(filters)]
            if pool:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = filters
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * size * size, dense),
            nn.ReLU(inplace=True),
            nn.Linear(dense, 2 * n_targets),
        )
        self.n_targets = n_targets
        self.to(memory_format=torch.channels_last)  # ~1.2x faster convolutions on a CPU (oneDNN's layout)

    def forward(self, images):
        """(N, 1, H, W) images in [0, 1] -> (means, log-variances), each (N, n_targets), in scaled units."""
        out = self.head(self.features(images.contiguous(memory_format=torch.channels_last)))
        return out[:, : self.n_targets], out[:, self.n_targets :]


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def heteroscedastic_nll(mean, log_variance, target, beta=0.0):
    """P21 eq. 2 per parameter, averaged: (y - yhat)^2 / (2 sigma^2) + s / 2, with s = log sigma^2.

    `beta` > 0 weights each term by sigma^(2 beta), held constant in the gradient
    (beta-NLL, Seitzer et al. 2022): plain NLL scales the means' gradients by
    1/sigma^2, so the hard lenses, given a large sigma early, stop teaching the
    means; beta = 1 gives the means MSE's gradients while sigma still learns.
    """
    nll = 0.5 * torch.exp(-log_variance) * (target - mean) ** 2 + 0.5 * log_variance
    if beta:
        nll = nll * torch.exp(beta * log_variance.detach())
    return nll.mean()


def symmetry_augment(images, targets, scaling, generator):
    """A random dihedral symmetry per image, with the targets it implies (exact, no interpolation).

    A quarter turn moves phi by 90 degrees, so (e1, e2) -> -(e1, e2); a mirror
    sends phi -> -phi, so e2 -> -e2; theta_E and the slope are invariant.
    Targets are in scaled units; negation is done in physical units.
    """
    n = len(images)
    turns = torch.randint(4, (n,), generator=generator).tolist()
    mirror = torch.randint(2, (n,), generator=generator).bool().tolist()
    images = torch.stack([dihedral(x, k, m) for x, k, m in zip(images, turns, mirror)])
    signs = np.stack([dihedral_signs(scaling.names, k, m) for k, m in zip(turns, mirror)])
    return images, scaling.apply_signs(targets, signs)


def scale_images(images):
    """Each image to [0, 1] by its own minimum and maximum (P21's input scaling)."""
    images = torch.as_tensor(images, dtype=torch.float32)
    low = images.amin(dim=(-2, -1), keepdim=True)
    high = images.amax(dim=(-2, -1), keepdim=True)
    return (images - low) / (high - low).clamp_min(1e-12)


# --- parameters <-> targets --------------------------------------------------------------------


def ellipticity(axis_ratio, angle):
    """P21 eq. 1: e1 + i e2 = (1 - q)/(1 + q) exp(2 i phi), phi in degrees."""
    modulus = (1 - np.asarray(axis_ratio, float)) / (1 + np.asarray(axis_ratio, float))
    phase = 2 * np.deg2rad(angle)
    return modulus * np.cos(phase), modulus * np.sin(phase)


def axis_ratio_angle(e1, e2):
    """The inverse of `ellipticity`: q and phi in [0, 180) degrees."""
    modulus = np.clip(np.hypot(e1, e2), 0.0, 1.0 - 1e-9)
    return (1 - modulus) / (1 + modulus), np.rad2deg(0.5 * np.arctan2(e2, e1)) % 180.0


@dataclass(frozen=True)
class TargetScaling:
    """Linear maps of each target to [0, 1] over its training range."""

    names: tuple
    low: tuple
    high: tuple

    @classmethod
    def for_ranges(cls, mass_model, lens_settings):
        """From simulate_training.lens: theta_E and slope ranges; |e| <= (1 - q_min)/(1 + q_min)."""
        names = TARGETS[mass_model]
        e_max = (1 - lens_settings["axis_ratio"]["min"]) / (1 + lens_settings["axis_ratio"]["min"])
        ranges = {
            "einstein_radius": (lens_settings["einstein_radius"]["min"], lens_settings["einstein_radius"]["max"]),
            "e1": (-e_max, e_max),
            "e2": (-e_max, e_max),
            "slope": (lens_settings["slope"]["min"], lens_settings["slope"]["max"]),
        }
        return cls(names, tuple(ranges[n][0] for n in names), tuple(ranges[n][1] for n in names))

    def scale(self, values):
        low, high = np.asarray(self.low), np.asarray(self.high)
        return (np.asarray(values, float) - low) / (high - low)

    def unscale(self, values, sigmas=None):
        width = np.asarray(self.high) - np.asarray(self.low)
        out = np.asarray(values, float) * width + np.asarray(self.low)
        return out if sigmas is None else (out, np.asarray(sigmas, float) * width)

    def apply_signs(self, values, signs):
        """Scaled values (torch, targets on the last axis) with their physical values multiplied by `signs`."""
        low = torch.as_tensor(self.low, dtype=values.dtype)
        width = torch.as_tensor(self.high, dtype=values.dtype) - low
        signs = torch.as_tensor(signs, dtype=values.dtype)
        return (signs * (values * width + low) - low) / width


def targets_from_params(params, names):
    """(N, n_targets) physical targets from a simulation table (theta_E, q, phi[, slope])."""
    e1, e2 = ellipticity(params["axis_ratio"], params["angle"])
    columns = {"einstein_radius": np.asarray(params["einstein_radius"], float), "e1": e1, "e2": e2}
    if "slope" in names:
        columns["slope"] = np.asarray(params["slope"], float)
    return np.column_stack([columns[name] for name in names])


def with_axis_ratio_angle(names, mean, sigma, n_samples=2000, seed=0):
    """Append q and phi (means and 1-sigma) to per-lens e1/e2 predictions by sampling their Gaussians.

    phi is summarised on its 180-degree circle: the circular mean, and the
    standard deviation of the wrapped offsets from it.
    """
    i1, i2 = names.index("e1"), names.index("e2")
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n_samples, len(mean), 2))
    e1 = mean[:, i1] + sigma[:, i1] * draws[..., 0]
    e2 = mean[:, i2] + sigma[:, i2] * draws[..., 1]
    q, phi = axis_ratio_angle(e1, e2)
    centre = np.rad2deg(0.5 * np.angle(np.exp(2j * np.deg2rad(phi)).mean(axis=0))) % 180.0
    offset = (phi - centre + 90.0) % 180.0 - 90.0
    q_mean, phi_mean = axis_ratio_angle(mean[:, i1], mean[:, i2])
    return {"axis_ratio": (q_mean, q.std(axis=0)), "angle": (phi_mean, offset.std(axis=0))}


# --- MC dropout --------------------------------------------------------------------------------


def enable_mc_dropout(model):
    """Eval mode (batch-norm running statistics) with every dropout layer sampling."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    return model


@dataclass(frozen=True)
class MCPrediction:
    """An MC-dropout prediction per image and target in scaled units, each array (N, n_targets)."""

    mean: np.ndarray  # mean over passes of the predicted means
    sigma: np.ndarray  # total 1-sigma: aleatoric and epistemic in quadrature
    aleatoric: np.ndarray  # 1-sigma of the predicted variances, averaged over passes
    epistemic: np.ndarray  # 1-sigma spread of the predicted means over passes (0 without dropout)


DIHEDRAL = tuple((turns, mirror) for mirror in (False, True) for turns in range(4))  # the square's 8 symmetries


def dihedral(images, turns, mirror):
    """`turns` quarter turns, then a left-right mirror when `mirror`: exact, no interpolation."""
    images = torch.rot90(images, turns, dims=(-2, -1))
    return torch.flip(images, dims=(-1,)) if mirror else images


def dihedral_signs(names, turns, mirror):
    """Physical-target signs under `dihedral`: an odd quarter turn flips (e1, e2), a mirror e2 (self-inverse)."""
    sign = np.ones(len(names))
    if "e1" in names:
        if turns % 2:
            sign[[names.index("e1"), names.index("e2")]] *= -1.0
        if mirror:
            sign[names.index("e2")] *= -1.0
    return sign


@torch.inference_mode()
def mc_predict(model, images, passes, batch_size=100, generator_seed=0, scaling=None):
    """Mean and total 1-sigma (aleatoric + epistemic in quadrature) per target, scaled units.

    With `scaling`, the passes are spread over the stamp's 8 dihedral symmetries
    (each pass's means mapped back to the original orientation): the network
    was trained on all 8, so every one is an equally valid view of the lens, and
    averaging over them removes the part of the error that depends on the
    orientation on the pixel grid (validation split, default SIE net: theta_E
    4.3 -> 3.7 %) at no extra cost. The passes are batched: each image is
    repeated within a batch, so one forward call serves many passes at once.
    """
    enable_mc_dropout(model)
    device = next(model.parameters()).device
    torch.manual_seed(generator_seed)
    images = torch.as_tensor(images, dtype=torch.float32)
    views = DIHEDRAL if scaling is not None else ((0, False),)
    shares = [passes // len(views) + (k < passes % len(views)) for k in range(len(views))]
    means, variances = [], []
    for (turns, mirror), share in zip(views, shares):
        if share == 0:
            continue
        mean, variance = _forward_passes(model, dihedral(images, turns, mirror), share, batch_size, device)
        if scaling is not None:
            mean = scaling.apply_signs(mean, dihedral_signs(scaling.names, turns, mirror))
        means.append(mean)
        variances.append(variance)
    mean, variance = torch.cat(means, dim=1), torch.cat(variances, dim=1)
    aleatoric = variance.mean(dim=1)
    epistemic = mean.var(dim=1, unbiased=False)
    return MCPrediction(
        mean=mean.mean(dim=1).numpy(),
        sigma=torch.sqrt(aleatoric + epistemic).numpy(),
        aleatoric=torch.sqrt(aleatoric).numpy(),
        epistemic=torch.sqrt(epistemic).numpy(),
    )


def _forward_passes(model, images, passes, batch_size, device):
    """(N, passes, n_targets) means and variances, `passes` dropout draws per image, batched."""
    per_call = max(1, batch_size // passes)
    means, variances = [], []
    for start in range(0, len(images), per_call):
        chunk = images[start : start + per_call].to(device)
        mean, log_variance = model(chunk.repeat_interleave(passes, dim=0))
        shape = (len(chunk), passes, -1)
        means.append(mean.float().reshape(shape).cpu())
        variances.append(torch.exp(log_variance.float()).reshape(shape).cpu())
    return torch.cat(means), torch.cat(variances)


def sigma_scale(predictions, truth):
    """Per parameter, the factor on sigma that puts 68.3 % of |mean - truth| within sigma.

    Found on the validation split for the chosen network (`select_bnn`):
    dropout rates are swept coarsely, so MC dropout's 1-sigma intervals can stay
    tens of per cent too wide or narrow, and q and phi, derived from (e1, e2),
    are not Gaussian; one factor per reported parameter (Levi et al. 2019's
    sigma scaling) fixes each width without moving any mean. `predictions`
    {name: (mean, sigma)}, `truth` {name: values}; phi's errors on its circle.
    """
    out = {}
    for name, (mean, sigma) in predictions.items():
        if name not in truth:
            continue
        error = np.asarray(mean) - np.asarray(truth[name])
        if name == "angle":
            error = (error + 90.0) % 180.0 - 90.0
        out[name] = float(np.quantile(np.abs(error) / np.asarray(sigma), GAUSSIAN_COVERAGE[1]))
    return out


def rescaled(predictions, factors):
    """{name: (mean, sigma x factor)}: `sigma_scale`'s factors applied (names without one unchanged)."""
    return {name: (mean, sigma * factors.get(name, 1.0)) for name, (mean, sigma) in predictions.items()}


def coverage(prediction, sigma, truth, levels=(1, 2, 3)):
    """Fraction of |prediction - truth| <= k sigma, per parameter, for each k (P21 Fig 4)."""
    distance = np.abs(np.asarray(prediction) - np.asarray(truth)) / np.asarray(sigma)
    return {k: (distance <= k).mean(axis=0) for k in levels}


GAUSSIAN_COVERAGE = {k: math.erf(k / math.sqrt(2)) for k in (1, 2, 3)}  # 0.683, 0.954, 0.997


def coverage_distance(measured):
    """How far a dropout rate's coverage is from a calibrated Gaussian's, summed over levels and parameters."""
    return float(sum(np.abs(np.asarray(measured[k]) - GAUSSIAN_COVERAGE[k]).sum() for k in GAUSSIAN_COVERAGE))


def interval68(prediction, truth):
    """P21 Table 1's error: half the central 68 % range of prediction - truth, per parameter."""
    low, high = np.percentile(np.asarray(prediction) - np.asarray(truth), [15.87, 84.13], axis=0)
    return 0.5 * (high - low)


def choose_dropout(rates, coverages):
    """The rate whose validation coverage (per level and parameter) is closest to a calibrated Gaussian's."""
    distances = [coverage_distance(measured) for measured in coverages]
    best = int(np.argmin(distances))
    return best, float(rates[best]), distances


# P21 Table 1, CNN row (SIE test set, 68 % intervals): for orientation beside ours, never used as input.
P21_TABLE1_CNN = {"einstein_radius": 0.0090, "angle": 4.92, "axis_ratio": 0.018}


FRACTIONAL = ("einstein_radius", "axis_ratio")  # reported as fractions of the truth as well (P21)


def evaluation_summary(predictions, truth, train_mean):
    """P21 Table 1 form per parameter: our 68 % error and coverage, beside the training-mean predictor's error.

    `predictions` {name: (mean, sigma)}, `truth` {name: values}, `train_mean` {name: value}.
    The angle's errors are taken on its 180-degree circle.
    """
    out = {}
    for name, (mean, sigma) in predictions.items():
        if name not in truth:
            continue
        error = np.asarray(mean) - truth[name]
        trivial = np.full_like(error, train_mean[name]) - truth[name]
        if name == "angle":
            error, trivial = (error + 90.0) % 180.0 - 90.0, (trivial + 90.0) % 180.0 - 90.0
        measured = coverage(error, sigma, np.zeros_like(error))
        out[name] = {
            "interval68": float(interval68(error, 0.0)),
            # P21 quote theta_E and q errors as fractions of the truth too (Fig 5, Table 1 text)
            "interval68_fractional": float(interval68(error / truth[name], 0.0)) if name in FRACTIONAL else None,
            "interval68_training_mean": float(interval68(trivial, 0.0)),
            "coverage": {f"{k}sigma": float(v) for k, v in measured.items()},
            "median_sigma": float(np.median(sigma)),
            "p21_table1_cnn": P21_TABLE1_CNN.get(name),
        }
    return out
