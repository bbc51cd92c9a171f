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
from autoarray.inversion.linear_obj.neighbors import Neighbors
from autoarray.inversion.mesh.interpolator.delaunay import DelaunayInterface, InterpolatorDelaunay
from autoarray.inversion.mesh.mesh_geometry.delaunay import MeshGeometryDelaunay
from autonerves import cached_property
from scipy.spatial import Delaunay as Triangulation
from scipy.spatial import cKDTree

# PyAutoArray's threshold below which a triangle counts as degenerate (its sub-pixels get no weight)
DEGENERATE_AREA = 1e-12


@dataclass(frozen=True)
class Located:
    """Where each query point falls on a triangulated mesh."""

    mappings: np.ndarray  # (n, 3) vertex indices; outside the hull: the nearest vertex, then -1, -1
    weights: np.ndarray  # (n, 3) barycentric weights; outside the hull: 1, 0, 0


@numba.njit(cache=True)
def _barycentric_weights(queries, vertices, mappings):
    """PyAutoArray's weights (`pixel_weights_delaunay_from`): sub-triangle areas over their sum."""
    out = np.zeros((queries.shape[0], 3))
    for n in range(queries.shape[0]):
        if mappings[n, 1] == -1:
            out[n, 0] = 1.0
            continue
        qy, qx = queries[n, 0], queries[n, 1]
        p = vertices[mappings[n]]
        a0 = abs((p[2, 0] - p[1, 0]) * (qx - p[1, 1]) - (p[2, 1] - p[1, 1]) * (qy - p[1, 0]))
        a1 = abs((p[2, 0] - p[0, 0]) * (qx - p[0, 1]) - (p[2, 1] - p[0, 1]) * (qy - p[0, 0]))
        a2 = abs((p[1, 0] - p[0, 0]) * (qx - p[0, 1]) - (p[1, 1] - p[0, 1]) * (qy - p[0, 0]))
        total = a0 + a1 + a2
        if abs(total) > DEGENERATE_AREA:
            out[n, 0], out[n, 1], out[n, 2] = a0 / total, a1 / total, a2 / total
    return out


def locate(triangulation, queries):
    """The triangle of every query point and its weights; points outside the hull go to the nearest vertex."""
    queries = np.ascontiguousarray(queries, dtype=float)
    simplex = triangulation.find_simplex(queries)
    mappings = np.full((len(queries), 3), -1, dtype=np.int32)
    inside = simplex >= 0
    mappings[inside] = triangulation.simplices[simplex[inside]]
    if not inside.all():
        _, nearest = cKDTree(triangulation.points).query(queries[~inside], k=1)
        mappings[~inside, 0] = nearest
    return Located(mappings, _barycentric_weights(queries, np.ascontiguousarray(triangulation.points), mappings))


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
