"""Dropout whose mask is drawn from 16-bit random words: the BNN's MC-dropout cost on a CPU.

Torch's CPU dropout draws one Bernoulli variate per activation from its
Mersenne twister (~4-5 ns each on one core), which made dropout ~45 % of an
MC-dropout forward pass of the default-width BNN and ~15 % of a training step
(`benchmarks/bnn_dropout.py`). Here a PCG64 stream fills the mask with 16-bit
words (~0.3 ns each) compared with a threshold: the same independent Bernoulli
keep/drop per activation, with the drop probability rounded to 1/65,536 and the
survivors scaled by the rounded keep probability, so the layer is unbiased.

The stream's seed is drawn from torch's global generator at every call, so
`torch.manual_seed`, the training checkpoints' saved RNG state and MC
predictions' `generator_seed` govern it exactly as they govern `nn.Dropout`.
On other devices (CUDA) the layer is torch's own dropout: a host-drawn mask
would cost a copy per call there.
"""

import numpy as np
import torch
from torch import nn

WORD = 1 << 16  # mask resolution: one 16-bit word per activation
STREAM = "pcg64-uint16"  # names the masks' stream in training digests: another stream is another run


def drop_threshold(p):
    """Words below this are dropped: p rounded to 1/65,536."""
    return int(round(float(p) * WORD))


def keep_mask(shape, stride, p):
    """Float32 mask of 0 and 1/(kept fraction), laid out with `stride` (the activations' own layout).

    The words are drawn in memory order, so a channels-last activation gets its
    mask without a transpose.
    """
    n = int(np.prod(shape))
    threshold = drop_threshold(p)
    seed = int(torch.randint(2**62, (), dtype=torch.int64))
    words = np.frombuffer(np.random.Generator(np.random.PCG64(seed)).bytes(2 * n), dtype=np.uint16)
    scale = np.float32(WORD / (WORD - threshold))
    flat = np.multiply(words >= threshold, scale, dtype=np.float32)
    return torch.from_numpy(flat).as_strided(shape, stride)


class FastDropout(nn.Dropout):
    """`nn.Dropout` (same module type, no state) with the mask of `keep_mask` on a CPU."""

    def forward(self, input):
        if not self.training or self.p == 0 or input.device.type != "cpu":
            return super().forward(input)
        if self.p >= 1:
            return input * 0.0
        if not (input.is_contiguous() or input.is_contiguous(memory_format=torch.channels_last)):
            input = input.contiguous()
        mask = keep_mask(tuple(input.shape), input.stride(), self.p)
        if self.inplace:
            return input.mul_(mask)
        return input * mask
