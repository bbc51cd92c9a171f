"""M21 section 3.4: a two-input CNN classifying (source reconstruction, residual) pairs.

Beyond M21 the residual's path may take image-plane maps as further channels
(`classifier.image_channels`): the data's signal-to-noise and the model's
critical curve, so that the network sees where the model's Einstein ring runs
against the arcs, not only how well the model fits.

Each input has its own path of three blocks (3x3 convolution, LeakyReLU, 2x2 max
pooling, dropout); the two paths are concatenated, flattened and passed through a
512-unit dense layer to three logits (under, correct, over). M21 quotes a
(13, 13, 256) concatenation: 100x100 inputs reach 13x13 with ceiling pooling
(100 -> 50 -> 25 -> 13) and 128 filters in each path's last block. The softmax is
folded into the cross-entropy loss (M21 drew a sigmoid on the last layer; with a
categorical cross-entropy the two give the same argmax).
"""

import ctypes
import ctypes.util

import torch
import torch.nn.functional as F
from torch import nn

from hybridlens.vocabulary import CLASSES


def _path(filters, kernel_sizes, dropout, negative_slope, channels=1):
    layers = []
    for out, kernel in zip(filters, kernel_sizes):
        layers += [
            nn.Conv2d(channels, out, kernel, padding=kernel // 2),
            nn.LeakyReLU(negative_slope),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Dropout(dropout),
        ]
        channels = out
    return nn.Sequential(*layers)


def pooled_size(size, blocks):
    """Side length after `blocks` ceiling-mode 2x2 poolings."""
    for _ in range(blocks):
        size = -(-size // 2)
    return size


class ReconstructionClassifier(nn.Module):
    def __init__(
        self,
        input_shape=(100, 100),
        filters=(32, 64, 128),
        kernel_sizes=(3, 3, 3),
        dropout=0.2,
        dense=512,
        negative_slope=0.01,
        residual_channels=1,
    ):
        """`residual_channels`: the residual and the image-plane maps stacked with it (`classifier.image_channels`)."""
        super().__init__()
        self.source_path = _path(filters, kernel_sizes, dropout, negative_slope)
        self.residual_path = _path(filters, kernel_sizes, dropout, negative_slope, residual_channels)
        side_y, side_x = (pooled_size(s, len(filters)) for s in input_shape)
        self.concatenated_shape = (side_y, side_x, 2 * filters[-1])
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * filters[-1] * side_y * side_x, dense),
            nn.LeakyReLU(negative_slope),
            nn.Linear(dense, len(CLASSES)),
        )

    def forward(self, source, residual):
        joined = torch.cat([self.source_path(source), self.residual_path(residual)], dim=1)
        return self.head(joined)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def normalise(images):
    """Scale each image by its peak |value|: the CNN sees shapes, not flux units."""
    peak = images.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return images / peak


def augment(source, residual, generator):
    """The same random flip and quarter-turn for both images of each pair.

    Both images are square rasters centred on the lens, so the dihedral group
    of the square maps a valid pair onto a valid pair.
    """
    n = source.shape[0]
    flips = torch.rand(n, generator=generator) < 0.5
    turns = torch.randint(0, 4, (n,), generator=generator)
    out_source, out_residual = source.clone(), residual.clone()
    for i in range(n):
        s, r = source[i], residual[i]
        if flips[i]:
            s, r = s.flip(-1), r.flip(-1)
        out_source[i] = torch.rot90(s, int(turns[i]), dims=(-2, -1))
        out_residual[i] = torch.rot90(r, int(turns[i]), dims=(-2, -1))
    return out_source, out_residual


def dihedral_views(images, n):
    """The first `n` of the square's 8 symmetries of (N, C, H, W) images, the identity first."""
    views = [torch.rot90(x, turns, dims=(-2, -1)) for x in (images, images.flip(-1)) for turns in range(4)]
    return views[:n]


def view_averaged(logits_of, source, residual, n_views):
    """Class probabilities averaged over `n_views` symmetries applied alike to both inputs.

    A lens seen flipped or turned is the same lens, so its verdict should not depend on
    the orientation; averaging over the views the network was trained to see evens out
    what it learned of one orientation only.
    """
    pairs = zip(dihedral_views(source, n_views), dihedral_views(residual, n_views))
    return torch.stack([torch.softmax(logits_of(s, r), 1) for s, r in pairs]).mean(0)


MC_DROPOUT_SEED = 0  # dropout masks of MC verdicts: the same pairs, batched alike, get the same verdict


def mc_dropout_averaged(model, source, residual, n_views, passes, seed=MC_DROPOUT_SEED):
    """Class probabilities averaged over `passes` forward passes with dropout on (MC dropout), each `n_views`-averaged.

    A network trained with dropout approximates a Bayesian one (Gal & Ghahramani 2016), and the
    average of its sampled verdicts is better calibrated than one deterministic pass where the
    inputs leave the training pairs' distribution, as real fits' reconstructions do. The masks
    come from a forked generator seeded with `seed`, so verdicts are reproducible and the
    caller's random stream is left as it was; the model's train/eval mode is restored.
    """
    dropouts = [module for module in model.modules() if isinstance(module, nn.Dropout)]
    was_training = model.training
    model.eval()
    for module in dropouts:
        module.train()
    devices = [source.device] if source.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"), torch.no_grad():
            torch.manual_seed(seed)
            return torch.stack([view_averaged(model, source, residual, n_views) for _ in range(passes)]).mean(0)
    finally:
        model.train(was_training)


def _retain_freed_memory():
    """Keep freed blocks in the process heap instead of returning them to the OS.

    glibc hands multi-megabyte blocks back to the kernel on free, so every
    activation tensor of the next batch is page-faulted in again; in a VM that
    costs more than the convolution writing it. Only a speed-up: returns whether
    both thresholds were set, False off glibc (no libc or no `mallopt`).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    results = (mallopt(m_mmap_threshold, 1 << 30), mallopt(m_trim_threshold, (1 << 31) - 1))
    return all(result == 1 for result in results)  # mallopt returns 1 on success


class FastClassifier:
    """Eval-only forward pass of a trained classifier, laid out for CPU throughput.

    The same arithmetic as `model.eval()` (dropout off), reordered where exact:
    pooling before the LeakyReLU (a non-negative slope is monotone, so max and
    activation commute) shrinks the activation work four-fold; convolutions run
    channels-last on small micro-batches whose activations stay in cache; the
    88 MB dense layer runs once per batch. On GPU it is the plain model.
    """

    def __init__(self, model, micro_batch=8):
        self.model = model.eval()
        self.micro_batch = micro_batch
        self.device = next(model.parameters()).device
        self.paths = [self._blocks(path) for path in (model.source_path, model.residual_path)]
        self.cpu = self.device.type == "cpu" and all(blocks is not None for blocks in self.paths)
        if self.cpu:
            _retain_freed_memory()

    @staticmethod
    def _blocks(path):
        """(weight, bias, padding, slope, pool) per block, or None if the path is not conv/leaky/pool/dropout."""
        layers, blocks = list(path), []
        if len(layers) % 4:
            return None
        for conv, act, pool, drop in zip(*[iter(layers)] * 4):
            kinds = (nn.Conv2d, nn.LeakyReLU, nn.MaxPool2d, nn.Dropout)
            if not all(isinstance(layer, kind) for layer, kind in zip((conv, act, pool, drop), kinds)):
                return None
            if act.negative_slope < 0 or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
                return None
            weight = conv.weight.detach()
            if weight.shape[1] > 1:
                weight = weight.contiguous(memory_format=torch.channels_last)
            blocks.append((weight, conv.bias.detach(), conv.padding, act.negative_slope, pool))
        return blocks

    @staticmethod
    def _pool(x, pool):
        plain = not x.is_contiguous(memory_format=torch.channels_last)
        halving = pool.kernel_size == pool.stride == 2 and pool.padding == 0 and pool.dilation == 1
        if plain and halving and x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0:
            # First block (one input channel, plain layout): strided maxima beat the NCHW pooling kernel.
            return torch.maximum(
                torch.maximum(x[..., ::2, ::2], x[..., ::2, 1::2]), torch.maximum(x[..., 1::2, ::2], x[..., 1::2, 1::2])
            )
        x = x.contiguous(memory_format=torch.channels_last)
        return F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)

    def _features(self, blocks, x):
        for i, (weight, bias, padding, slope, pool) in enumerate(blocks):
            if i:
                x = x.contiguous(memory_format=torch.channels_last)
            x = F.conv2d(x, weight, bias, 1, padding)
            x = F.leaky_relu_(self._pool(x, pool), slope)
        return x

    def __call__(self, source, residual):
        """Logits of (N, 1, H, W) source and residual batches (already normalised)."""
        with torch.inference_mode():
            if not self.cpu:
                return self.model(source.to(self.device), residual.to(self.device)).float()
            first = next(layer for layer in self.model.head if isinstance(layer, nn.Linear))
            features = torch.empty(len(source), first.in_features)
            for start in range(0, len(source), self.micro_batch):
                stop = start + self.micro_batch
                joined = torch.cat(
                    [
                        self._features(self.paths[0], source[start:stop]),
                        self._features(self.paths[1], residual[start:stop]),
                    ],
                    dim=1,
                )
                features[start:stop] = joined.flatten(1)
            return self.model.head(features)
