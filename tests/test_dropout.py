"""FastDropout: the Bernoulli keep/drop of nn.Dropout, unbiased, seeded by torch, in any memory layout."""

import numpy as np
import pytest
import torch
from torch import nn

from hybridlens.networks import bnn
from hybridlens.networks.dropout import FastDropout, drop_threshold


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_drop_fraction_is_p_and_the_layer_is_unbiased(p, layout):
    torch.manual_seed(3)
    x = torch.ones(64, 8, 50, 50).contiguous(memory_format=layout)
    out = FastDropout(p).train()(x)
    dropped = (out == 0).double().mean().item()
    n = x.numel()
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(out.double().mean().item() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)
    kept = out[out != 0]
    assert torch.all(kept == kept[0])  # one survivor scale, 1 / (kept fraction)
    assert out.is_contiguous(memory_format=layout)


def test_masks_are_independent_across_channels_pixels_and_calls():
    """A channels-last activation's mask is drawn in memory order: no channel or pixel shares another's draws."""
    torch.manual_seed(0)
    layer = FastDropout(0.5).train()
    x = torch.ones(16, 4, 32, 32).contiguous(memory_format=torch.channels_last)
    first, second = (layer(x) != 0 for _ in range(2))
    for a, b in ((first[:, 0], first[:, 1]), (first[:, :, :, :-1], first[:, :, :, 1:]), (first, second)):
        agreement = (a == b).double().mean().item()  # 0.5 for independent fair coins
        assert abs(agreement - 0.5) < 5 * 0.5 / np.sqrt(a.numel())


def test_the_stream_follows_torch_seed_and_eval_mode_is_the_identity():
    layer = FastDropout(0.05).train()
    x = torch.randn(8, 3, 20, 20)
    torch.manual_seed(11)
    a = layer(x)
    torch.manual_seed(11)
    assert torch.equal(a, layer(x))
    assert not torch.equal(a, layer(x))
    assert torch.equal(layer.eval()(x), x)


def test_the_gradient_is_the_mask():
    torch.manual_seed(2)
    x = torch.randn(4, 2, 10, 10, requires_grad=True)
    out = FastDropout(0.2).train()(x)
    out.sum().backward()
    assert torch.allclose(x.grad, out.detach() / x.detach())


def test_the_drop_probability_is_rounded_to_16_bits():
    assert drop_threshold(0.05) == 3277 and abs(drop_threshold(0.05) / 65536 - 0.05) < 1e-5


def test_the_bnn_keeps_nn_dropout_s_type_so_mc_dropout_finds_its_layers():
    model = bnn.LensBNN(3, 0.05, width=0.25, binning=2)
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(layers) == 6 and all(isinstance(m, FastDropout) for m in layers)
    bnn.enable_mc_dropout(model)
    assert all(m.training for m in layers) and not any(
        m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    )
