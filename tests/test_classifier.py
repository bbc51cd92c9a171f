"""The M21 classifier network: shapes, size, aligned augmentation, input scaling and the fast inference path."""

import platform

import pytest
import torch

from hybridlens.networks import classifier


def test_paper_architecture_shapes_and_parameter_count():
    model = classifier.ReconstructionClassifier()
    assert model.concatenated_shape == (13, 13, 256)  # M21's concatenation
    n = classifier.count_parameters(model)
    # 2 x (320 + 18,496 + 73,856) convolution + 43,264 x 512 + 512 dense + 512 x 3 + 3 output.
    assert n == 2 * (320 + 18_496 + 73_856) + 43_264 * 512 + 512 + 512 * 3 + 3
    logits = model(torch.zeros(2, 1, 100, 100), torch.zeros(2, 1, 100, 100))
    assert logits.shape == (2, 3)


def test_augmentation_applies_the_same_transform_to_both_images():
    base = torch.arange(8 * 16 * 16, dtype=torch.float32).reshape(8, 1, 16, 16)
    source, residual = classifier.augment(base, base * 2 + 1, torch.Generator().manual_seed(1))
    torch.testing.assert_close(residual, source * 2 + 1)
    assert not torch.equal(source, base)  # something moved
    for i in range(8):  # each output is a dihedral image of its input
        candidates = [torch.rot90(b, k, (-2, -1)) for b in (base[i], base[i].flip(-1)) for k in range(4)]
        assert any(torch.equal(source[i], c) for c in candidates)


@pytest.mark.parametrize(
    "input_shape, filters, micro_batch, channels",
    [((100, 100), (32, 64, 128), 8, 3), ((100, 100), (32, 64, 128), 8, 1), ((30, 27), (4, 8, 16), 3, 3)],
)
def test_fast_inference_matches_the_eager_model(input_shape, filters, micro_batch, channels):
    """Also with the residual's path taking image-plane maps as further channels."""
    torch.manual_seed(11)
    model = classifier.ReconstructionClassifier(
        input_shape=input_shape, filters=filters, dense=64, residual_channels=channels
    )
    with torch.no_grad():  # a spread of logits, as from a trained model
        model.head[-1].weight.mul_(30)
    source = classifier.normalise(torch.randn(10, 1, *input_shape).cumsum(-1))
    residual = torch.asinh(torch.randn(10, channels, *input_shape) * 3)
    model.eval()
    with torch.no_grad():
        eager = torch.softmax(model(source, residual), 1)
    fast = torch.softmax(classifier.FastClassifier(model, micro_batch=micro_batch)(source, residual), 1)
    assert eager.max(1).values.min() < 0.99  # not saturated: the comparison sees small differences
    assert torch.equal(fast.argmax(1), eager.argmax(1))
    torch.testing.assert_close(fast, eager, atol=1e-5, rtol=0)


def test_normalise_scales_each_image_by_its_peak_magnitude_and_keeps_signs():
    images = torch.zeros(3, 1, 4, 4)
    images[0, 0, 1, 2], images[0, 0, 3, 3] = 5.0, -2.0
    images[1, 0, 0, 0], images[1, 0, 2, 1] = -8.0, 4.0
    out = classifier.normalise(images)
    assert out[0, 0, 1, 2] == 1.0 and out[0, 0, 3, 3] == pytest.approx(-0.4)
    assert out[1, 0, 0, 0] == -1.0 and out[1, 0, 2, 1] == pytest.approx(0.5)  # a negative peak counts by size
    assert torch.equal(out[2], images[2])  # an empty image stays empty, no NaN


@pytest.mark.parametrize("size, blocks, expected", [(100, 3, 13), (27, 3, 4), (32, 3, 4), (1, 4, 1)])
def test_ceiling_pooling_sizes(size, blocks, expected):
    assert classifier.pooled_size(size, blocks) == expected
    side = torch.zeros(1, 1, size, size)
    for _ in range(blocks):
        side = torch.nn.functional.max_pool2d(side, 2, ceil_mode=True)
    assert side.shape[-1] == expected  # what the network's MaxPool2d(2, ceil_mode=True) does


def test_fast_inference_falls_back_to_the_plain_model_for_a_path_it_cannot_reorder():
    torch.manual_seed(3)
    # A negative LeakyReLU slope is not monotone: pooling and activation no longer commute.
    model = classifier.ReconstructionClassifier(input_shape=(16, 16), filters=(4, 8, 8), dense=16, negative_slope=-0.1)
    fast = classifier.FastClassifier(model)
    assert not fast.cpu and fast.paths == [None, None]
    source, residual = torch.randn(5, 1, 16, 16), torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        eager = model.eval()(source, residual)
    assert torch.equal(fast(source, residual), eager)


def test_the_allocator_tuning_reports_whether_it_applied():
    applied = classifier._retain_freed_memory()
    assert isinstance(applied, bool)
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def test_eight_view_verdicts_do_not_depend_on_the_pairs_orientation():
    """Averaged over the square's 8 symmetries, a pair turned or flipped (both inputs alike) gets the
    same probabilities; one view alone does not."""
    torch.manual_seed(3)
    model = classifier.ReconstructionClassifier(input_shape=(24, 24), filters=(4, 8, 8), dense=16, residual_channels=3)
    model.eval()
    source, residual = torch.randn(5, 1, 24, 24), torch.randn(5, 3, 24, 24)
    turned = [
        (torch.rot90(source, 1, (-2, -1)), torch.rot90(residual, 1, (-2, -1))),
        (source.flip(-1), residual.flip(-1)),
    ]
    with torch.no_grad():
        averaged = classifier.view_averaged(model, source, residual, 8)
        single = classifier.view_averaged(model, source, residual, 1)
        for s, r in turned:
            torch.testing.assert_close(classifier.view_averaged(model, s, r, 8), averaged, atol=1e-6, rtol=0)
            assert not torch.allclose(classifier.view_averaged(model, s, r, 1), single, atol=1e-4)
