"""PyAutoArray's Delaunay source mesh and constant regularisation: the same numbers, less work.

A fit evaluates M21's model thousands of times, and PyAutoArray's general
Delaunay path does work that constant regularisation never reads: it places
and locates four split points per vertex (for gradient regularisations),
computes every vertex's dual area, triangulates the source-plane mesh a second
time to find its neighbours (with a Python loop per vertex), and scatters the
regularisation matrix with `np.add.at`. Here one triangulation gives the
sub-pixels' triangles, their barycentric weights (one compiled pass, PyAutoArray's
formula) and the neighbours, and the matrix is filled by index. Every piece
equals PyAutoArray's (tests/test_delaunay.py) and an inversion's evidence equals
a stock PyAutoLens fit's (tests/test_inversion.py).
"""

from dataclasses import dataclass

import autolens as al
import numba
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from autoarray.inversion.inversion.imaging_numba import inversion_imaging_numba_util as imaging_numba_util
from autoarray.inversion.linear_obj.neighbors import Neighbors
from autoarray.inversion.mappers import mapper_numba_util
from autoarray.inversion.mesh.border_relocator import (
    ellipse_params_via_border_pca_from,
    relocated_grid_via_ellipse_border_from,
)
from autoarray.inversion.mesh.interpolator.delaunay import DelaunayInterface, InterpolatorDelaunay
from autoarray.inversion.mesh.mesh_geometry.delaunay import MeshGeometryDelaunay
from autonerves import cached_property
from scipy.spatial import Delaunay as Triangulation

# PyAutoArray's threshold below which a triangle counts as degenerate (its sub-pixels get no weight)
DEGENERATE_AREA = 1e-12


@dataclass(frozen=True)
class Located:
    """Where each query point falls on a triangulated mesh."""

    mappings: np.ndarray  # (n, 3) vertex indices; outside the hull: the nearest vertex, then -1, -1
    weights: np.ndarray  # (n, 3) barycentric weights; outside the hull: 1, 0, 0


@numba.njit(cache=True)
def _located(queries, vertices, simplices, simplex):
    """Each query's triangle and PyAutoArray's weights (`pixel_weights_delaunay_from`: sub-triangle
    areas over their sum) in one pass; outside the hull (simplex -1) only the -1 marks, filled later."""
    mappings = np.full((queries.shape[0], 3), -1, dtype=np.int32)
    weights = np.zeros((queries.shape[0], 3))
    for n in range(queries.shape[0]):
        if simplex[n] < 0:
            weights[n, 0] = 1.0
            continue
        i0, i1, i2 = simplices[simplex[n], 0], simplices[simplex[n], 1], simplices[simplex[n], 2]
        mappings[n, 0], mappings[n, 1], mappings[n, 2] = i0, i1, i2
        qy, qx = queries[n, 0], queries[n, 1]
        y0, x0 = vertices[i0, 0], vertices[i0, 1]
        y1, x1 = vertices[i1, 0], vertices[i1, 1]
        y2, x2 = vertices[i2, 0], vertices[i2, 1]
        a0 = abs((y2 - y1) * (qx - x1) - (x2 - x1) * (qy - y1))
        a1 = abs((y2 - y0) * (qx - x0) - (x2 - x0) * (qy - y0))
        a2 = abs((y1 - y0) * (qx - x0) - (x1 - x0) * (qy - y0))
        total = a0 + a1 + a2
        if abs(total) > DEGENERATE_AREA:
            weights[n, 0], weights[n, 1], weights[n, 2] = a0 / total, a1 / total, a2 / total
    return mappings, weights


@numba.njit(cache=True)
def _nearest_vertices(queries, vertices, indptr, indices):
    """The nearest vertex of each query by a greedy walk on the triangulation's edges.

    From a vertex that is not the nearest, the segment to the query leaves its Voronoi cell
    into a Delaunay neighbour's, which is nearer: so the walk ends at the nearest vertex.
    Consecutive queries (a pixel's sub-pixels, neighbouring pixels) start where the last ended.
    """
    nearest = np.empty(queries.shape[0], dtype=np.int64)
    current = 0
    for n in range(queries.shape[0]):
        qy, qx = queries[n, 0], queries[n, 1]
        best = (vertices[current, 0] - qy) ** 2 + (vertices[current, 1] - qx) ** 2
        moved = True
        while moved:
            moved = False
            for k in range(indptr[current], indptr[current + 1]):
                v = indices[k]
                d = (vertices[v, 0] - qy) ** 2 + (vertices[v, 1] - qx) ** 2
                if d < best:
                    best, current, moved = d, v, True
        nearest[n] = current
    return nearest


def locate(triangulation, queries):
    """The triangle of every query point and its weights; points outside the hull go to the nearest vertex."""
    queries = np.ascontiguousarray(queries, dtype=float)
    simplex = triangulation.find_simplex(queries)
    vertices = np.ascontiguousarray(triangulation.points)
    mappings, weights = _located(queries, vertices, triangulation.simplices, simplex)
    outside = np.flatnonzero(simplex < 0)
    if len(outside):
        indptr, indices = triangulation.vertex_neighbor_vertices
        mappings[outside, 0] = _nearest_vertices(queries[outside], vertices, indptr, indices)
    return Located(mappings, weights)


def neighbours(triangulation):
    """Each vertex's neighbours, -1 padded, and their counts (PyAutoArray's `Neighbors` layout)."""
    indptr, indices = triangulation.vertex_neighbor_vertices
    sizes = np.diff(indptr)
    table = np.full((len(sizes), int(sizes.max())), -1, dtype=int)
    rows = np.repeat(np.arange(len(sizes)), sizes)
    table[rows, np.arange(len(indices)) - indptr[rows]] = indices
    return Neighbors(arr=table, sizes=sizes.astype(int))


def constant_regularization_matrix(coefficient, neighbours_table, sizes):
    """PyAutoArray's constant regularisation matrix, filled by index (each neighbour pair is unique)."""
    weight = coefficient * coefficient
    matrix = np.diag(1e-8 + weight * np.asarray(sizes, float))
    rows, slots = np.nonzero(neighbours_table >= 0)
    matrix[rows, neighbours_table[rows, slots]] -= weight
    return matrix


def sparse_constant_regularization_matrix(coefficient, triangulation):
    """`constant_regularization_matrix` of the triangulation's neighbours as a canonical CSC matrix."""
    weight = coefficient * coefficient
    indptr, indices = triangulation.vertex_neighbor_vertices
    pixels = len(indptr) - 1
    sizes = np.diff(indptr)
    diagonal = np.arange(pixels)
    matrix = scipy.sparse.csc_matrix(
        (
            np.concatenate([np.full(len(indices), -weight), 1e-8 + weight * sizes]),
            (np.concatenate([np.repeat(diagonal, sizes), diagonal]), np.concatenate([indices, diagonal])),
        ),
        shape=(pixels, pixels),
    )
    matrix.sum_duplicates()  # canonical: sorted indices, as PyAutoArray's scan of the dense matrix gives
    return matrix


def sparse_log_det(matrix):
    """log det of a sparse symmetric positive-definite matrix: PyAutoArray's SuperLU route
    (`inversion_util.log_det_sparse_spd_from`) without scanning a dense copy for its non-zeros."""
    try:
        lu = scipy.sparse.linalg.splu(
            matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
    except RuntimeError as error:  # exactly singular
        raise np.linalg.LinAlgError(str(error)) from error
    pivots = lu.U.diagonal()
    if np.any(pivots <= 0.0):
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return float(np.sum(np.log(pivots)))


class _Geometry(MeshGeometryDelaunay):
    """The mesh geometry, its neighbours from the interpolator's triangulation instead of a second one."""

    def __init__(self, triangulation, **kwargs):
        super().__init__(**kwargs)
        self.triangulation = triangulation

    @cached_property
    def neighbors(self):
        return neighbours(self.triangulation)


class _Interpolator(InterpolatorDelaunay):
    """PyAutoArray's Delaunay interpolator (NumPy backend) with one triangulation and no split points or areas."""

    @property
    def dual_areas(self):
        return None  # computed by the geometry only if something asks (magnification)

    @cached_property
    def triangulation(self):
        return Triangulation(np.asarray(self.mesh_grid_xy, dtype=float))

    @cached_property
    def located(self):
        return locate(self.triangulation, self.data_grid.over_sampled.array)

    @cached_property
    def delaunay(self):
        triangulation = self.triangulation
        simplices = -np.ones((2 * len(triangulation.points), 3), dtype=np.int32)
        simplices[: len(triangulation.simplices)] = triangulation.simplices
        return DelaunayInterface(
            points=triangulation.points,
            simplices=simplices,
            mappings=self.located.mappings,
            split_points=None,
            splitted_mappings=None,
            xp=np,
            dual_areas=None,
        )

    @cached_property
    def _mappings_sizes_weights(self):
        mappings = self.delaunay.mappings.astype("int")
        return mappings, self.delaunay.sizes.astype("int"), self.located.weights

    @cached_property
    def mesh_geometry(self):
        return _Geometry(
            self.triangulation, mesh=self.mesh, mesh_grid=self.mesh_grid, data_grid=self.data_grid, xp=self._xp
        )


class ConstantDelaunay(al.mesh.Delaunay):
    """PyAutoLens' Delaunay mesh for constant regularisation (the NumPy backend's faster interpolator)."""

    @property
    def skip_areas(self):
        return True  # no split points: only gradient regularisations read them

    @property
    def interpolator_cls(self):
        return _Interpolator


class Constant(al.reg.Constant):
    """PyAutoLens' constant regularisation, its matrix filled by index."""

    def regularization_matrix_from(self, linear_obj, xp=np):
        if xp is not np:
            return super().regularization_matrix_from(linear_obj, xp)
        table = linear_obj.neighbors
        return constant_regularization_matrix(self.coefficient, np.asarray(table), table.sizes)


class Evidence:
    """A masked lens's log evidence through a mass profile, on this mesh with constant regularisation.

    PyAutoArray's own kernels (border relocation, sparse-operator curvature and data
    vector, the mapped and blurred reconstruction) in the order `FitImaging` runs them,
    without building a tracer, grids, a mapper and an inversion object per call: a
    sampler calls it thousands of times per lens, and that bookkeeping is ~15 % of a call.
    The value equals `FitImaging.log_evidence` of the same model (tests/test_inversion.py):
    only what stays fixed across calls is computed once (the PSF-weighted data, the noise
    normalisation, the grids). Positive-negative solve, border relocation on, no lens light.
    """

    def __init__(self, dataset, image_mesh_grid):
        grid = dataset.grids.pixelization
        self._sub_size = np.asarray(grid.over_sampler.sub_size).astype(int)
        # one grid traced per call: the sub-pixels, the border pixels' centres (whose traced ellipse
        # bounds the relocation, as in BorderRelocator) and the mesh's image-plane points
        sub = np.asarray(grid.over_sampled.array)
        border = np.asarray(grid.array)[dataset.grids.border_relocator.border_slim]
        self._grid = al.Grid2DIrregular(np.concatenate([sub, border, np.asarray(image_mesh_grid.array)]))
        self._ends = np.cumsum([len(sub), len(border)])
        self._mask = dataset.mask
        self._psf = dataset.psf
        self._operator = dataset.sparse_operator
        self._data = np.asarray(dataset.data.array)
        self._noise = np.asarray(dataset.noise_map.array)
        self._noise_normalization = float(np.sum(np.log(2.0 * np.pi * self._noise**2)))
        self._psf_weighted_data = imaging_numba_util.psf_weighted_data_from(
            image_native=np.array(dataset.data.native.array),
            noise_map_native=np.asarray(dataset.noise_map.native.array),
            kernel_native=np.asarray(dataset.psf.kernel.native.array),
            native_index_for_slim_index=dataset.data.mask.derive_indexes.native_for_slim,
        )

    def __call__(self, mass, coefficient):
        """ln Z of the source reconstructed through `mass` (any PyAutoLens mass profile); raises where
        PyAutoLens' fit would (e.g. `np.linalg.LinAlgError` on a matrix that is not positive-definite)."""
        traced = self._grid.array - np.asarray(mass.deflections_yx_2d_from(grid=self._grid).array)
        sub, border, vertices = np.split(traced, self._ends)
        origin, a, b, phi = ellipse_params_via_border_pca_from(border)
        sub = relocated_grid_via_ellipse_border_from(sub, origin, a, b, phi)
        vertices = relocated_grid_via_ellipse_border_from(vertices, origin, a, b, phi)
        triangulation = Triangulation(vertices)
        located = locate(triangulation, sub)
        mappings = located.mappings.astype(int)
        sizes = np.sum(mappings >= 0, axis=1)
        pixels = len(vertices)
        to_pix, pix_weights, lengths = mapper_numba_util.data_slim_to_pixelization_unique_from(
            data_pixels=len(self._data),
            pix_indexes_for_sub_slim_index=mappings,
            pix_sizes_for_sub_slim_index=sizes,
            pix_weights_for_sub_slim_index=located.weights,
            pix_pixels=pixels,
            sub_size=self._sub_size,
        )
        unique = {
            "data_to_pix_unique": to_pix.astype(int),
            "data_weights": pix_weights,
            "pix_lengths": lengths.astype(int),
        }
        curvature = imaging_numba_util.curvature_matrix_via_sparse_operator_from(
            psf_precision_operator=self._operator.psf_precision_operator_sparse,
            psf_precision_indexes=self._operator.indexes,
            psf_precision_lengths=self._operator.lengths,
            pix_pixels=pixels,
            **unique,
        )
        data_vector = imaging_numba_util.data_vector_via_psf_weighted_data_from(
            psf_weighted_data=self._psf_weighted_data, pix_pixels=pixels, **unique
        )
        regularization = sparse_constant_regularization_matrix(coefficient, triangulation)
        entries = regularization.tocoo()
        curvature[entries.row, entries.col] += entries.data  # F + H in place; each (row, column) once
        factor = scipy.linalg.cho_factor(curvature, lower=True, overwrite_a=True, check_finite=False)
        reconstruction = scipy.linalg.cho_solve(factor, data_vector, check_finite=False)
        log_det_regularization = sparse_log_det(regularization)
        mapped = imaging_numba_util.mapped_reconstructed_data_via_image_to_pix_unique_from(
            reconstruction=reconstruction, **unique
        )
        model = self._psf.convolved_image_from(image=al.Array2D(values=mapped, mask=self._mask), blurring_image=None)
        chi_squared = float(np.sum(((self._data - np.asarray(model.array)) / self._noise) ** 2))
        return -0.5 * (
            chi_squared
            + float(reconstruction @ (regularization @ reconstruction))
            + 2.0 * np.sum(np.log(np.diag(factor[0])))
            - log_det_regularization
            + self._noise_normalization
        )
