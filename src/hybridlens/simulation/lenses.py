"""Lens mass models and the geometry of their multiple images.

Angles follow PyAutoLens: position angle in degrees counter-clockwise from +x,
(y, x) coordinates in arcsec. Einstein radii are in the *major-axis*
normalisation of `al.mp.Isothermal` / `al.mp.PowerLaw` wherever the pipeline
ray-traces or fits; SLACS (and so M21's distribution) quotes the
intermediate-axis radius, theta_int = theta_major * 2 sqrt(q) / (1 + q)
(0.6 % smaller at q = 0.8, 5.7 % at q = 0.5). Simulations draw SLACS radii,
convert once (`major_axis_einstein_radius`) and store both.
"""

import autolens as al
import numpy as np
from astropy import constants, units
from astropy.cosmology import Planck15

# Planck 2015 (h = 0.677, Omega_m = 0.307), the papers' cosmology.
COSMOLOGY = Planck15


def major_axis_einstein_radius(intermediate, axis_ratio):
    """PyAutoLens (major-axis) Einstein radius of an SIE whose intermediate-axis radius is `intermediate`."""
    return intermediate * (1.0 + axis_ratio) / (2.0 * np.sqrt(axis_ratio))


def intermediate_axis_einstein_radius(major, axis_ratio):
    """Inverse of `major_axis_einstein_radius`: the SLACS / lenstronomy convention."""
    return major * 2.0 * np.sqrt(axis_ratio) / (1.0 + axis_ratio)


def mass_profile(model, centre, einstein_radius, axis_ratio, angle, slope=2.0):
    """An SIE (`sie`) or elliptical power law (`power_law`) PyAutoLens mass profile."""
    ell_comps = al.convert.ell_comps_from(axis_ratio=float(axis_ratio), angle=float(angle))
    centre = (float(centre[0]), float(centre[1]))
    if model == "sie":
        return al.mp.Isothermal(centre=centre, ell_comps=ell_comps, einstein_radius=float(einstein_radius))
    if model == "power_law":
        return al.mp.PowerLaw(
            centre=centre, ell_comps=ell_comps, einstein_radius=float(einstein_radius), slope=float(slope)
        )
    raise ValueError(f"unknown mass model {model!r}")


def velocity_dispersion(einstein_radius, z_lens, z_source):
    """SIS velocity dispersion (km/s) giving `einstein_radius` (arcsec) between the redshifts."""
    d_s = COSMOLOGY.angular_diameter_distance(z_source)
    d_ls = COSMOLOGY.angular_diameter_distance(z_lens, z_source)
    theta = (np.asarray(einstein_radius) * units.arcsec).to_value(units.rad)
    sigma = constants.c * np.sqrt(theta * (d_s / d_ls).decompose() / (4.0 * np.pi))
    return sigma.to_value(units.km / units.s)


def point_images(image_grid, traced_grid, source_centre, min_magnification=0.0):
    """Image positions and signed magnifications of a point source, by triangle mapping.

    The image-plane grid (native (ny, nx, 2), (y, x)) is cut into triangles; each
    is mapped to the source plane with its vertices. A triangle whose traced copy
    contains the source is (part of) an image; the ratio of image- to source-plane
    signed areas is the magnification, negative for parity-flipped images.
    Neighbouring hit triangles are merged into one image. Images with |mu| below
    `min_magnification` (e.g. the infinitely demagnified core image of an SIE,
    which appears as one huge traced triangle over the singular centre) are dropped.
    Returns (positions (k, 2), magnifications (k,)), brightest first.
    """
    img = np.asarray(image_grid, dtype=float)
    src = np.asarray(traced_grid, dtype=float) - np.asarray(source_centre, dtype=float)
    corners = ((0, 0), (1, 0), (0, 1)), ((1, 1), (0, 1), (1, 0))
    hits_pos, hits_mu, spacing = [], [], np.hypot(*(img[1, 1] - img[0, 0]))
    for triangle in corners:
        a, b, c = [src[dy : dy + src.shape[0] - 1, dx : dx + src.shape[1] - 1] for dy, dx in triangle]
        ia, ib, ic = [img[dy : dy + img.shape[0] - 1, dx : dx + img.shape[1] - 1] for dy, dx in triangle]
        area_src = _cross(b - a, c - a)
        area_img = _cross(ib - ia, ic - ia)
        # Barycentric test: the origin (the source) lies inside abc.
        w_a = _cross(b, c) / area_src
        w_b = _cross(c, a) / area_src
        w_c = 1.0 - w_a - w_b
        inside = (w_a >= 0) & (w_b >= 0) & (w_c >= 0) & (area_src != 0)
        hits_pos.append(((w_a[..., None] * ia + w_b[..., None] * ib + w_c[..., None] * ic))[inside])
        hits_mu.append((area_img / np.where(area_src == 0, np.inf, area_src))[inside])
    positions, mus = _merge_hits(np.concatenate(hits_pos), np.concatenate(hits_mu), 2.5 * spacing)
    keep = np.abs(mus) >= min_magnification
    order = np.argsort(-np.abs(mus[keep]))
    return positions[keep][order], mus[keep][order]


def _cross(u, v):
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _merge_hits(positions, mus, radius):
    """Group hit triangles closer than `radius` into images (mean position and mu)."""
    groups = []
    for pos, mu in zip(positions, mus):
        for group in groups:
            if np.hypot(*(group[0][0] - pos)) < radius:
                group[0].append(pos)
                group[1].append(mu)
                break
        else:
            groups.append(([pos], [mu]))
    if not groups:
        return np.zeros((0, 2)), np.zeros(0)
    return (
        np.array([np.mean(g[0], axis=0) for g in groups]),
        np.array([np.median(g[1]) for g in groups]),
    )
