"""M21 section 3.4: a two-input CNN classifying (source reconstruction, residual) pairs.

Each input has its own path of three blocks (3x3 convolution, LeakyReLU, 2x2 max
pooling, dropout); the two paths are concatenated, flattened and passed through a
512-unit dense layer to three logits (under, correct, over). M21 quotes a
(13, 13, 256) concatenation: 100x100 inputs reach 13x13 with ceiling pooling
(100 -> 50 -> 25 -> 13) and 128 filters in each path's last block. The softmax is
folded into the cross-entropy loss (M21 drew a sigmoid on the last layer; with a
categorical cross-entropy the two give the same argmax).
"""

import torch
from torch import nn

CLASSES = ("under", "correct", "over")


def _path(filters, kernel_sizes, dropout, negative_slope):
    layers, channels = [], 1
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
    def __init__(self, input_shape=(100, 100), filters=(32, 64, 128), kernel_sizes=(3, 3, 3), dropout=0.2,
                 dense=512, negative_slope=0.01):  # fmt: skip
        super().__init__()
        self.source_path = _path(filters, kernel_sizes, dropout, negative_slope)
        self.residual_path = _path(filters, kernel_sizes, dropout, negative_slope)
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
