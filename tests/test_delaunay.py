"""The faster Delaunay pieces against PyAutoArray's own: same triangles, weights, neighbours, matrix."""

import numpy as np
import pytest
from autoarray.inversion.mesh.interpolator.delaunay import pixel_weights_delaunay_from, scipy_delaunay_matern
from autoarray.inversion.mesh.mesh_geometry.delaunay import MeshGeometryDelaunay
from autoarray.inversion.regularization.constant import constant_regularization_matrix_from
from scipy.spatial import Delaunay as Triangulation

import autolens as al
from hybridlens.reconstruction import delaunay


@pytest.fixture(scope="module")
def mesh():
    """A traced-overlay-like mesh (clustered points) and sub-pixels, some beyond its hull."""
    rng = np.random.default_rng(3)
    radius = np.sqrt(rng.uniform(0.0, 1.0, 400)) ** 2
    angle = rng.uniform(0.0, 2.0 * np.pi, 400)
    points = np.column_stack([radius * np.sin(angle), 0.7 * radius * np.cos(angle)])
    queries = rng.uniform(-1.1, 1.1, (5000, 2))
    return points, queries


def test_triangles_and_weights_equal_pyautoarray(mesh):
    points, queries = mesh
    _, _, mappings, _ = scipy_delaunay_matern(points, queries)
    weights = pixel_weights_delaunay_from(queries, points, mappings.astype(int))
    located = delaunay.locate(Triangulation(points), queries)
    outside = mappings[:, 1] == -1
    assert 100 < outside.sum() < len(queries) - 100  # both cases are exercised
    np.testing.assert_array_equal(located.mappings, mappings)
    np.testing.assert_array_equal(located.sizes, np.where(outside, 1, 3))
    np.testing.assert_allclose(located.weights, weights, rtol=0, atol=1e-12)
    assert np.allclose(located.weights.sum(axis=1), 1.0)


def test_neighbours_equal_pyautoarray(mesh):
    points, _ = mesh
    grid = al.Grid2DIrregular(values=points)
    stock = MeshGeometryDelaunay(mesh=al.mesh.Delaunay(pixels=len(points)), mesh_grid=grid, data_grid=None).neighbors
    ours = delaunay.neighbours(Triangulation(points))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(stock))
    np.testing.assert_array_equal(ours.sizes, stock.sizes)


def test_regularisation_matrix_equals_pyautoarray(mesh):
    table = delaunay.neighbours(Triangulation(mesh[0]))
    stock = constant_regularization_matrix_from(2.7, np.asarray(table), table.sizes)
    ours = delaunay.constant_regularization_matrix(2.7, np.asarray(table), table.sizes)
    np.testing.assert_array_equal(ours, stock)
    np.testing.assert_allclose(ours.sum(axis=1), 1e-8, rtol=0, atol=1e-12)  # a graph Laplacian: rows sum to the jitter


def test_sparse_regularisation_and_its_log_det_equal_pyautoarray(mesh):
    triangulation = Triangulation(mesh[0])
    table = delaunay.neighbours(triangulation)
    dense = constant_regularization_matrix_from(2.7, np.asarray(table), table.sizes)
    sparse = delaunay.sparse_constant_regularization_matrix(2.7, triangulation)
    np.testing.assert_array_equal(sparse.toarray(), dense)
    expected = 2.0 * np.sum(np.log(np.diag(np.linalg.cholesky(dense))))
    assert delaunay.sparse_log_det(sparse) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(np.linalg.LinAlgError):  # not positive-definite: numpy's Cholesky error
        delaunay.sparse_log_det(-sparse)


def test_curvature_upper_triangle_is_pyautoarrays_bit_for_bit():
    """The reused-matrix kernel sums PyAutoArray's products in its order: F is the same to the last bit,
    whatever the matrix held before (a failed call leaves a factor there)."""
    from autoarray.inversion.inversion.imaging_numba import inversion_imaging_numba_util as kernels

    rng = np.random.default_rng(5)
    mask = al.Mask2D.circular_annular(shape_native=(30, 30), pixel_scales=0.1, inner_radius=0.4, outer_radius=1.3)
    noise = al.Array2D.no_mask(rng.uniform(0.5, 2.0, (30, 30)), pixel_scales=0.1)
    y, x = np.mgrid[-3:4, -3:4]
    kernel = np.exp(-(x**2 + y**2) / 2.0)
    psf = al.Convolver(kernel=al.Array2D.no_mask(kernel / kernel.sum(), pixel_scales=0.1))
    dataset = al.Imaging(data=noise, noise_map=noise, psf=psf).apply_mask(mask).apply_sparse_operator_cpu()
    operator = dataset.sparse_operator
    pixels, data_pixels = 90, mask.pixels_in_mask
    lengths = rng.integers(0, 9, data_pixels)  # some data pixels map to nothing
    to_pix = np.zeros((data_pixels, 12), dtype=np.int64)
    weights = np.zeros((data_pixels, 12))
    for row, length in enumerate(lengths):
        to_pix[row, :length] = rng.choice(pixels, length, replace=False)
        weights[row, :length] = rng.dirichlet(np.ones(length)) if length else []
    expected = kernels.curvature_matrix_via_sparse_operator_from(
        psf_precision_operator=operator.psf_precision_operator_sparse,
        psf_precision_indexes=operator.indexes,
        psf_precision_lengths=operator.lengths,
        data_to_pix_unique=to_pix,
        data_weights=weights,
        pix_lengths=lengths,
        pix_pixels=pixels,
    )
    matrix = rng.normal(size=(pixels, pixels))
    arguments = (
        operator.psf_precision_operator_sparse,
        operator.indexes.astype(np.int64),
        operator.lengths.astype(np.int64),
    )
    delaunay.curvature_upper_into(matrix, *arguments, to_pix, weights, lengths)
    upper = np.triu_indices(pixels)
    np.testing.assert_array_equal(matrix[upper], expected[upper])
    assert np.count_nonzero(expected) > pixels  # the test covers off-diagonal coupling, not a diagonal matrix


def test_blurring_matrix_is_the_convolvers_masked_convolution_for_an_asymmetric_psf():
    """A lopsided 7x5 kernel: a flipped or transposed kernel, or a centre off by one, would not match."""
    mask = al.Mask2D.circular_annular(shape_native=(24, 26), pixel_scales=0.1, inner_radius=0.3, outer_radius=1.1)
    rng = np.random.default_rng(0)
    kernel = rng.uniform(0.0, 1.0, (7, 5))
    kernel[0, :] = 0.0  # zeros are skipped
    kernel /= kernel.sum()
    psf = al.Convolver(kernel=al.Array2D.no_mask(kernel, pixel_scales=0.1))
    image = rng.normal(size=mask.pixels_in_mask)
    with pytest.warns(UserWarning):  # PyAutoArray warns that no blurring image is given
        expected = psf.convolved_image_from(image=al.Array2D(values=image, mask=mask), blurring_image=None)
    blurred = delaunay.blurring_matrix(mask, kernel) @ image
    np.testing.assert_allclose(blurred, np.asarray(expected.array), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="even PSF"):
        delaunay.blurring_matrix(mask, np.ones((4, 5)))
