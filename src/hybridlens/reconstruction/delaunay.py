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
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.spatial import Delaunay as Triangulation

# PyAutoArray's threshold below which a triangle counts as degenerate (its sub-pixels get no weight)
DEGENERATE_AREA = 1e-12


@dataclass(frozen=True)
class Located:
    """Where each query point falls on a triangulated mesh."""

    mappings: np.ndarray  # (n, 3) vertex indices; outside the hull: the nearest vertex, then -1, -1
    weights: np.ndarray  # (n, 3) barycentric weights; outside the hull: 1, 0, 0
    sizes: np.ndarray  # (n,) vertices each query maps to: 3 inside the hull, 1 outside


# scipy's tolerance on barycentric coordinates in `Delaunay.find_simplex` (qhull.pyx: 100 x DBL_EPSILON)
FIND_SIMPLEX_EPS = 100.0 * np.finfo(float).eps


@numba.njit(cache=True)
def _walk(queries, vertices, simplices, neighbors, eps):
    """Each query's triangle by scipy's directed walk (`_find_simplex_directed`), without its per-triangle
    affine transforms.

    scipy's `find_simplex` first computes every triangle's barycentric transform
    (a LAPACK inversion each), which costs more than the walk on a triangulation
    used once; here a triangle's coordinates come from its vertices when the walk
    visits it. The rule is scipy's: step to the neighbour opposite the first
    coordinate below -eps, outside the hull when there is none; on a Delaunay
    triangulation the walk ends. Consecutive queries (a pixel's sub-pixels) start
    where the last ended. -1: outside the hull; -2: the walk failed (a degenerate
    triangle in the way), left to scipy.
    """
    nsimplex = simplices.shape[0]
    simplex = np.empty(queries.shape[0], dtype=np.int64)
    current = 0
    for n in range(queries.shape[0]):
        qy, qx = queries[n, 0], queries[n, 1]
        s = current
        found = -2
        for _ in range(1 + 2 * nsimplex // 4 + 8):
            i0, i1, i2 = simplices[s, 0], simplices[s, 1], simplices[s, 2]
            ry, rx = vertices[i2, 0], vertices[i2, 1]
            ay, ax = vertices[i0, 0] - ry, vertices[i0, 1] - rx
            by, bx = vertices[i1, 0] - ry, vertices[i1, 1] - rx
            py, px = qy - ry, qx - rx
            det = ay * bx - ax * by
            c0 = (py * bx - px * by) / det
            c1 = (ay * px - ax * py) / det
            c2 = 1.0 - c0 - c1
            step, inside = -1, True
            for k, c in enumerate((c0, c1, c2)):
                if c < -eps:
                    step = k
                    break
                if not c <= 1.0 + eps:  # above 1, or NaN on a degenerate triangle
                    inside = False
            if step >= 0:
                neighbour = neighbors[s, step]
                if neighbour == -1:
                    found = -1
                    break
                s = neighbour
                continue
            found = s if inside else -2
            break
        simplex[n] = found
        if found != -2:
            current = s
    return simplex


@numba.njit(cache=True)
def _located(queries, vertices, simplices, simplex):
    """Each query's triangle and PyAutoArray's weights (`pixel_weights_delaunay_from`: sub-triangle
    areas over their sum) in one pass; outside the hull (simplex -1) only the -1 marks, filled later."""
    mappings = np.full((queries.shape[0], 3), -1, dtype=np.int64)
    weights = np.zeros((queries.shape[0], 3))
    sizes = np.ones(queries.shape[0], dtype=np.int64)
    for n in range(queries.shape[0]):
        if simplex[n] < 0:
            weights[n, 0] = 1.0
            continue
        i0, i1, i2 = simplices[simplex[n], 0], simplices[simplex[n], 1], simplices[simplex[n], 2]
        mappings[n, 0], mappings[n, 1], mappings[n, 2] = i0, i1, i2
        sizes[n] = 3
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
    return mappings, weights, sizes


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


@numba.njit(cache=True)
def curvature_upper_into(matrix, operator, indexes, lengths, to_pix, weights, pix_lengths):
    """The upper triangle of the curvature matrix F, written into `matrix` (lower triangle left as scratch).

    PyAutoArray's two-stage sparse-operator kernel (`curvature_matrix_via_sparse_operator_from`)
    summed in the same order, so F is bit-identical, with three savings that matter
    when it runs thousands of times per lens: the per-pixel source accumulator is
    spread only over the source pixels it touched (~10 % of them here, not every
    pixel), the matrix is reused rather than freshly allocated (page faults on ~4 MB
    per call), and only the triangle a Cholesky factorisation reads is symmetrised.
    """
    pixels = matrix.shape[0]
    matrix[:] = 0.0
    accumulator = np.zeros(pixels)
    seen = np.zeros(pixels, dtype=np.bool_)
    touched = np.empty(pixels, dtype=np.int64)
    k = 0
    for data_0 in range(lengths.shape[0]):
        pairs, mapped_0 = lengths[data_0], pix_lengths[data_0]
        if mapped_0 == 0:
            k += pairs
            continue
        n_touched = 0
        for _ in range(pairs):
            data_1, value = indexes[k], operator[k]
            k += 1
            for j in range(pix_lengths[data_1]):
                pixel = to_pix[data_1, j]
                if not seen[pixel]:
                    seen[pixel] = True
                    touched[n_touched] = pixel
                    n_touched += 1
                accumulator[pixel] += weights[data_1, j] * value
        for i in range(mapped_0):
            weight, row = weights[data_0, i], matrix[to_pix[data_0, i]]
            for t in range(n_touched):
                row[touched[t]] += weight * accumulator[touched[t]]
        for t in range(n_touched):
            accumulator[touched[t]] = 0.0
            seen[touched[t]] = False
    # F = A + A^T (the operator halves its diagonal pairs), upper triangle only, in cache-sized blocks
    block = 32
    for i0 in range(0, pixels, block):
        for j0 in range(i0, pixels, block):
            for i in range(i0, min(i0 + block, pixels)):
                for j in range(max(i, j0), min(j0 + block, pixels)):
                    matrix[i, j] += matrix[j, i]


def locate(triangulation, queries):
    """The triangle of every query point and its weights; points outside the hull go to the nearest vertex."""
    queries = np.ascontiguousarray(queries, dtype=float)
    vertices = np.ascontiguousarray(triangulation.points)
    simplex = _walk(queries, vertices, triangulation.simplices, triangulation.neighbors, FIND_SIMPLEX_EPS)
    failed = np.flatnonzero(simplex == -2)
    if len(failed):
        simplex[failed] = triangulation.find_simplex(queries[failed])
    mappings, weights, sizes = _located(queries, vertices, triangulation.simplices, simplex)
    outside = np.flatnonzero(simplex < 0)
    if len(outside):
        indptr, indices = triangulation.vertex_neighbor_vertices
        mappings[outside, 0] = _nearest_vertices(queries[outside], vertices, indptr, indices)
    return Located(mappings, weights, sizes)


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
    """log det of a sparse symmetric positive-definite matrix (a mesh's regularisation).

    PyAutoArray factorises it by SuperLU (`inversion_util.log_det_sparse_spd_from`).
    A mesh's neighbour graph is planar: reverse Cuthill-McKee orders it into a band
    ~2 sqrt(n) wide, and LAPACK's banded Cholesky then costs n b^2 flops, a third of
    SuperLU's time. The two agree to rounding (tests/test_delaunay.py).
    """
    order = reverse_cuthill_mckee(matrix.tocsr(), symmetric_mode=True)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    entries = matrix.tocoo()
    rows, cols = rank[entries.row], rank[entries.col]
    upper = rows <= cols
    rows, cols = rows[upper], cols[upper]
    width = int(np.max(cols - rows))
    band = np.zeros((width + 1, matrix.shape[0]))  # LAPACK's upper band storage
    band[width + rows - cols, cols] = entries.data[upper]
    factor = scipy.linalg.cholesky_banded(band, overwrite_ab=True, check_finite=False)  # LinAlgError if not SPD
    return 2.0 * float(np.sum(np.log(factor[width])))


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


def blurring_matrix(mask, kernel):
    """The PSF convolution of a masked image as a sparse matrix: B[i, j] = K[y_i - y_j + c_y, x_i - x_j + c_x].

    What `Convolver.convolved_image_from(..., blurring_image=None)` computes
    (scipy's `convolve`, mode "same", on the masked pixels only), as one sparse
    product: a model image costs ~0.1 ms instead of ~1 ms (padding, a 2-D
    convolution and a warning per call).
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"an even PSF kernel shape {kernel.shape} has no centre pixel")
    centre_y, centre_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    native = np.asarray(mask.derive_indexes.native_for_slim)
    slim = np.full((mask.shape_native[0] + kernel.shape[0], mask.shape_native[1] + kernel.shape[1]), -1)
    slim[native[:, 0] + centre_y, native[:, 1] + centre_x] = np.arange(len(native))  # padded by the kernel
    rows, cols, values = [], [], []
    for (ky, kx), value in np.ndenumerate(kernel):
        if value == 0.0:
            continue
        target = slim[native[:, 0] + ky, native[:, 1] + kx]
        inside = target >= 0
        rows.append(target[inside])
        cols.append(np.flatnonzero(inside))
        values.append(np.full(inside.sum(), value))
    n = len(native)
    return scipy.sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


class Evidence:
    """A masked lens's log evidence through a mass profile, on this mesh with constant regularisation.

    PyAutoArray's own kernels (border relocation, unique mappings, data vector, the
    mapped reconstruction) in the order `FitImaging` runs them, without building a
    tracer, grids, a mapper and an inversion object per call: a sampler calls it
    thousands of times per lens. Where PyAutoArray's step does work a sampler pays for
    on every call, an equal replacement stands in: the curvature kernel into a reused
    matrix, the triangles by a walk, H's log det banded, the PSF as a sparse matrix.
    The value equals `FitImaging.log_evidence` of the same model (tests/test_inversion.py):
    only what stays fixed across calls is computed once (the PSF-weighted data and its
    blurring matrix, the noise normalisation, the grids). Positive-negative solve, border
    relocation on, no lens light, a PSF convolved at the data's resolution.
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
        if getattr(dataset.psf, "convolve_over_sample_size", 1) != 1:
            raise ValueError("this PSF convolves over-sampled images; the evidence blurs at the data's resolution")
        self._blur = blurring_matrix(dataset.mask, dataset.psf.kernel.native.array)
        operator = dataset.sparse_operator
        self._operator = (
            np.ascontiguousarray(operator.psf_precision_operator_sparse, dtype=float),
            np.ascontiguousarray(operator.indexes, dtype=np.int64),
            np.ascontiguousarray(operator.lengths, dtype=np.int64),
        )
        self._matrix = None  # F + H and its Cholesky factor, reused across calls (made on the first)
        self._data = np.asarray(dataset.data.array)
        self._noise = np.asarray(dataset.noise_map.array)
        self._noise_normalization = float(np.sum(np.log(2.0 * np.pi * self._noise**2)))
        self._psf_weighted_data = imaging_numba_util.psf_weighted_data_from(
            image_native=np.array(dataset.data.native.array),
            noise_map_native=np.asarray(dataset.noise_map.native.array),
            kernel_native=np.asarray(dataset.psf.kernel.native.array),
            native_index_for_slim_index=dataset.data.mask.derive_indexes.native_for_slim,
        )

    def __getstate__(self):
        return {**self.__dict__, "_matrix": None}  # scratch, not state

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
        pixels = len(vertices)
        to_pix, pix_weights, lengths = mapper_numba_util.data_slim_to_pixelization_unique_from(
            data_pixels=len(self._data),
            pix_indexes_for_sub_slim_index=located.mappings,
            pix_sizes_for_sub_slim_index=located.sizes,
            pix_weights_for_sub_slim_index=located.weights,
            pix_pixels=pixels,
            sub_size=self._sub_size,
        )
        to_pix, lengths = to_pix.astype(np.int64), lengths.astype(np.int64)
        if self._matrix is None:
            self._matrix = np.empty((pixels, pixels))
        matrix = self._matrix
        curvature_upper_into(matrix, *self._operator, to_pix, pix_weights, lengths)
        data_vector = imaging_numba_util.data_vector_via_psf_weighted_data_from(
            psf_weighted_data=self._psf_weighted_data,
            data_to_pix_unique=to_pix,
            data_weights=pix_weights,
            pix_lengths=lengths,
            pix_pixels=pixels,
        )
        regularization = sparse_constant_regularization_matrix(coefficient, triangulation)
        entries = regularization.tocoo()
        upper = entries.row <= entries.col
        matrix[entries.row[upper], entries.col[upper]] += entries.data[upper]  # F + H; each entry once
        # F + H is symmetric, so the C-ordered upper triangle is LAPACK's Fortran-ordered lower one:
        # factorised in place, no copy
        factor = scipy.linalg.cho_factor(matrix.T, lower=True, overwrite_a=True, check_finite=False)
        reconstruction = scipy.linalg.cho_solve(factor, data_vector, check_finite=False)
        log_det_regularization = sparse_log_det(regularization)
        mapped = imaging_numba_util.mapped_reconstructed_data_via_image_to_pix_unique_from(
            reconstruction=reconstruction, data_to_pix_unique=to_pix, data_weights=pix_weights, pix_lengths=lengths
        )
        chi_squared = float(np.sum(((self._data - self._blur @ mapped) / self._noise) ** 2))
        return -0.5 * (
            chi_squared
            + float(reconstruction @ (regularization @ reconstruction))
            + 2.0 * np.sum(np.log(np.diag(factor[0])))
            - log_det_regularization
            + self._noise_normalization
        )
