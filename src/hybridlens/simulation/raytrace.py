"""Batched, vectorised PyTorch ray-tracing that reproduces PyAutoLens' numbers.

Training sets need thousands of images a minute; PyAutoLens evaluates one
profile on one grid at a time. These pure functions evaluate a whole batch of
B lenses / sources at once on tensors of any dtype (float32 or float64) and
device (the grid's), so the same code runs on a GPU.

Shapes: parameters are (B,) tensors (or anything `torch.as_tensor` takes, one
value per batch element); grids are (N,) tensors shared by the batch or (B, N);
results are (B, N).

Conventions, read from autogalaxy / autoarray 2026.10 and checked against them
in tests/test_simulation_raytrace.py:

* (y, x) in arcsec; `angle` in degrees counter-clockwise from +x; `axis_ratio`
  q = b/a. A profile first shifts to its centre and rotates clockwise by
  `angle` (`transform_grid_2d_to_reference_frame`); deflections are rotated back.
* Sub-pixels (`Grid2D.uniform(..., over_sample_size=s)`): pixel-major order
  (pixel (0, 0) top-left, y decreasing downwards, x increasing rightwards), then
  each pixel's s x s sub-pixels in the same row-major order, uniformly spaced at
  pixel_scale / s with the outer ones half a sub-pixel inside the pixel edge.
  Images are the plain mean over each pixel's sub-pixels.
* Light profiles use the eccentric radius r = sqrt(q x'^2 + y'^2 / q) (x' along
  the major axis), so `effective_radius` is a circularised radius. The Sersic
  constant is Ciotti & Bertin's (1999) asymptotic series
  b_n = 2n - 1/3 + 4/(405 n) + 46/(25515 n^2) + 131/(1148175 n^3) - 2194697/(30690717750 n^4).
  The Gaussian is I exp(-(q^2 x'^2 + y'^2) / (2 sigma^2)) (autogalaxy divides
  sigma by sqrt(q) and uses the eccentric radius).
* Einstein radii are in the major-axis convention of `al.mp.Isothermal` /
  `al.mp.PowerLaw`. The SIE is Kormann et al. (1994) with Psi = sqrt(q^2 x'^2 + y'^2);
  the power law is Tessore & Metcalf (2015): the angular part is their eq. 29
  series, truncated where the geometric tail bound f^N / (1 - f),
  f = (1 - q) / (1 + q), drops below 1e-10 (autogalaxy's `_omega_n_terms_from`),
  here summed with Clenshaw's recurrence in real arithmetic.
"""

import functools
import math

import numpy as np
import torch

from hybridlens.simulation import lenses

# Added to squared radii as autogalaxy does, so the exact centre gives finite deflections.
_R2_FLOOR = 1e-16
# 1 - q^2 floor for the SIE: arctanh(s t)/s = t (1 + s^2 t^2 / 3 + ...), so s^2 = 1e-20 is q = 1 to ~1e-20.
_S2_FLOOR = 1e-20
# Relative truncation error of the power-law angular series (autogalaxy's `_OMEGA_SERIES_RTOL` in float64).
_OMEGA_RTOL = {torch.float64: 1e-10, torch.float32: 1e-8}
# Elements (batch x points) per CPU block, so that a block's temporaries stay in L2 cache (measured optimum).
_CPU_BLOCK = 1 << 17
# Grid cells per CPU block of the point-image search (about one 200x200 grid; measured optimum).
_CPU_BLOCK_CELLS = 1 << 16


def _columns(like, *params):
    """Parameters as (B, 1) columns in `like`'s dtype and device, so they broadcast against (B, N) grids."""
    return [torch.as_tensor(p, dtype=like.dtype, device=like.device).reshape(-1, 1) for p in params]


def _cpu_blocked(profile):
    """Evaluate `profile` over cache-sized slices of the points on CPU: 3-7x faster than whole-array passes."""

    @functools.wraps(profile)
    def blocked(y, x, *params, **named):
        shape = y.shape if y.dim() >= x.dim() else x.shape  # (N,) or (B, N): torch.broadcast_shapes costs ~1 ms
        values = [*params, *named.values()]
        batch = max([shape[0] if len(shape) > 1 else 1] + [torch.as_tensor(p).numel() for p in values])
        step = max(256, _CPU_BLOCK // batch)
        if y.device.type != "cpu" or shape[-1] <= step:
            return profile(y, x, *params, **named)
        parts = [
            profile(y[..., i : i + step], x[..., i : i + step], *params, **named) for i in range(0, shape[-1], step)
        ]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(component, dim=-1) for component in zip(*parts))
        return torch.cat(parts, dim=-1)

    return blocked


def _to_frame(y, x, centre_y, centre_x, angle):
    """Shift to the centre and rotate clockwise by `angle` (autoarray's `transform_grid_2d_to_reference_frame`)."""
    centre_y, centre_x, angle = _columns(y, centre_y, centre_x, angle)
    radians = torch.deg2rad(angle)
    cos, sin = torch.cos(radians), torch.sin(radians)
    dy, dx = y - centre_y, x - centre_x
    return dy * cos - dx * sin, dx * cos + dy * sin, cos, sin


def _from_frame(vector_y, vector_x, cos, sin):
    """Rotate a profile-frame vector back to the sky (autoarray's `transform_grid_2d_from_reference_frame`)."""
    return vector_x * sin + vector_y * cos, vector_x * cos - vector_y * sin


def pixel_grid(shape, pixel_scale, over_sample=1, dtype=torch.float64, device=None):
    """Flat (y, x) sub-pixel centres of a uniform grid, in autoarray's over-sampled order, for `bin_pixels`."""
    ny, nx = shape
    scale_y, scale_x = (pixel_scale, pixel_scale) if np.isscalar(pixel_scale) else pixel_scale
    s = int(over_sample)
    f64 = dict(dtype=torch.float64, device=device)
    centre_y = ((ny - 1) / 2.0 - torch.arange(ny, **f64)) * scale_y
    centre_x = (torch.arange(nx, **f64) - (nx - 1) / 2.0) * scale_x
    offset_y = torch.linspace(scale_y / 2 - scale_y / s / 2, -scale_y / 2 + scale_y / s / 2, s, **f64)
    offset_x = torch.linspace(-scale_x / 2 + scale_x / s / 2, scale_x / 2 - scale_x / s / 2, s, **f64)
    y = centre_y[:, None, None, None] + offset_y[None, None, :, None]
    x = centre_x[None, :, None, None] + offset_x[None, None, None, :]
    y, x = torch.broadcast_tensors(y, x)
    return y.reshape(-1).to(dtype), x.reshape(-1).to(dtype)


def bin_pixels(values, shape, over_sample=1):
    """Average each pixel's s x s sub-pixel values (`pixel_grid` order) into an (..., ny, nx) image."""
    ny, nx = shape
    return values.reshape(*values.shape[:-1], ny, nx, int(over_sample) ** 2).mean(dim=-1)


@_cpu_blocked
def sie_deflections(y, x, centre_y, centre_x, einstein_radius, axis_ratio, angle):
    """SIE deflections (alpha_y, alpha_x) of `al.mp.Isothermal`, the workhorse lens of the training sets."""
    y_f, x_f, cos, sin = _to_frame(y, x, centre_y, centre_x, angle)
    q, theta = _columns(y_f, axis_ratio, einstein_radius)
    # Flooring 1 - q^2 replaces autogalaxy's Taylor branch near q = 1: same numbers, no 0/0, one code path.
    s = torch.sqrt(torch.clamp(1.0 - q * q, min=_S2_FLOOR))
    factor = 2.0 * theta * q / ((1.0 + q) * s)
    inv_psi = torch.rsqrt(q * q * x_f * x_f + y_f * y_f + _R2_FLOOR)
    alpha_y = factor * torch.atanh(s * y_f * inv_psi)
    alpha_x = factor * torch.atan(s * x_f * inv_psi)
    return _from_frame(alpha_y, alpha_x, cos, sin)


def _omega_terms(factor, dtype):
    """Number of series terms for the flattest lens of the batch (autogalaxy's `_omega_n_terms_from`)."""
    f = float(factor.max())
    if f <= 0.0:
        return 1
    return max(2, math.ceil((math.log(_OMEGA_RTOL.get(dtype, 1e-10)) + math.log1p(-f)) / math.log(f)))


@_cpu_blocked
def power_law_deflections(y, x, centre_y, centre_x, einstein_radius, axis_ratio, angle, slope):
    """Elliptical power-law deflections of `al.mp.PowerLaw` (Tessore & Metcalf 2015), for P21's power-law lenses."""
    y_f, x_f, cos, sin = _to_frame(y, x, centre_y, centre_x, angle)
    q, theta, slope = _columns(y_f, axis_ratio, einstein_radius, slope)
    t = slope - 1.0
    b = 2.0 / (q**-0.5 + q**0.5) * theta * torch.sqrt(q)
    f = (1.0 - q) / (1.0 + q)
    qx = q * x_f
    r2 = qx * qx + y_f * y_f
    # z = exp(i phi) of the elliptical angle; the exact centre takes phi = 0 as autogalaxy does.
    on_centre = r2 == 0
    inv_r = torch.rsqrt(torch.where(on_centre, torch.ones_like(r2), r2))
    z_re = torch.where(on_centre, torch.ones_like(r2), qx * inv_r)
    z_im = y_f * inv_r
    cos2 = z_re * z_re - z_im * z_im
    sin2 = 2.0 * z_re * z_im
    # omega / z = sum_n a_n (-f)^n exp(2 i n phi), a_n = a_{n-1} (2n - (2 - t)) / (2n + (2 - t)), a_0 = 1: Clenshaw
    # sums c_n cos(n theta) and c_n sin(n theta) (theta = 2 phi) with one real multiply-add per term.
    n_terms = _omega_terms(f, y_f.dtype)
    coefficients = [torch.ones_like(f)]
    for n in range(1, n_terms):
        coefficients.append(coefficients[-1] * (-f) * (2.0 * n - (2.0 - t)) / (2.0 * n + (2.0 - t)))
    two_cos2 = 2.0 * cos2
    b1 = torch.zeros_like(cos2)
    b2 = torch.zeros_like(cos2)
    for c in coefficients[:0:-1]:
        b1, b2 = torch.addcmul(c - b2, two_cos2, b1), b1
    sum_re = 1.0 + cos2 * b1 - b2
    sum_im = sin2 * b1
    omega_re = z_re * sum_re - z_im * sum_im
    omega_im = z_re * sum_im + z_im * sum_re
    radius = torch.sqrt(r2 + _R2_FLOOR)
    prefactor = 2.0 * b / (1.0 + q) * ((1.0 + q) / 2.0) ** (t - 1.0) * b ** (t - 1.0) * radius ** (1.0 - t)
    return _from_frame(prefactor * omega_im, prefactor * omega_re, cos, sin)


def sersic_constant(sersic_index):
    """autogalaxy's b_n (Ciotti & Bertin 1999 series), so that `effective_radius` holds half the light."""
    n = sersic_index
    return (
        2.0 * n
        - 1.0 / 3.0
        + 4.0 / (405.0 * n)
        + 46.0 / (25515.0 * n**2)
        + 131.0 / (1148175.0 * n**3)
        - 2194697.0 / (30690717750.0 * n**4)
    )


@_cpu_blocked
def sersic(y, x, centre_y, centre_x, axis_ratio, angle, intensity, effective_radius, sersic_index):
    """Surface brightness of `al.lp.Sersic`, the lens light and analytic sources of the training sets."""
    y_f, x_f, _, _ = _to_frame(y, x, centre_y, centre_x, angle)
    q, intensity, r_e, n = _columns(y_f, axis_ratio, intensity, effective_radius, sersic_index)
    b_n = sersic_constant(n)
    # (r / r_e)^(1/n) from the squared eccentric radius: one pow per point, no sqrt.
    ratio = torch.pow(q * x_f * x_f + y_f * y_f / q, 0.5 / n) * r_e ** (-1.0 / n)
    return intensity * torch.exp(torch.addcmul(b_n, -b_n, ratio))


@_cpu_blocked
def gaussian(y, x, centre_y, centre_x, axis_ratio, angle, intensity, sigma):
    """Surface brightness of `al.lp.Gaussian` (sigma along the minor axis, autogalaxy's convention)."""
    y_f, x_f, _, _ = _to_frame(y, x, centre_y, centre_x, angle)
    q, intensity, sigma = _columns(y_f, axis_ratio, intensity, sigma)
    return intensity * torch.exp((q * q * x_f * x_f + y_f * y_f) * (-0.5 / (sigma * sigma)))


def convolve(padded_images, kernel):
    """PSF blur, 'valid' mode like `fftconvolve(image, kernel, mode="valid")`, so padding absorbs the edges.

    torch.fft, not conv2d with the flipped kernel: for 32 stamps of 110x110 and
    an 11x11 PSF on one CPU thread it is ~7x faster in float32 and ~50x in
    float64 (whose conv2d has no fast CPU path). Circular convolution at the
    padded size wraps only into the discarded border. `kernel` is (k, k), or
    (B, k, k) for one PSF per image.
    """
    kernel = torch.as_tensor(kernel, dtype=padded_images.dtype, device=padded_images.device)
    shape = padded_images.shape[-2:]
    product = torch.fft.rfft2(padded_images) * torch.fft.rfft2(kernel, s=shape)
    return torch.fft.irfft2(product, s=shape)[..., kernel.shape[-2] - 1 :, kernel.shape[-1] - 1 :]


def _cross(u_y, u_x, v_y, v_x):
    """z-component of u x v in `lenses._cross`'s (y, x) order, operation for operation."""
    return u_y * v_x - u_x * v_y


# The two triangles of each grid cell, as (dy, dx) offsets of their vertices a, b, c (as `lenses.point_images`).
_TRIANGLES = (((0, 0), (1, 0), (0, 1)), ((1, 1), (0, 1), (1, 0)))


def _barycentric(a_y, a_x, b_y, b_x, c_y, c_x):
    """Barycentric weights of the origin in triangle abc and its signed area, in `lenses.point_images`' arithmetic."""
    area = _cross(b_y - a_y, b_x - a_x, c_y - a_y, c_x - a_x)
    w_a = _cross(b_y, b_x, c_y, c_x) / area
    w_b = _cross(c_y, c_x, a_y, a_x) / area
    w_c = 1.0 - w_a - w_b
    return w_a, w_b, w_c, area


def point_images(image_y, image_x, traced_y, traced_x, source_y, source_x, min_magnification=0.0):
    """Batched `lenses.point_images`: the all-triangle test runs in torch, only the hits come back to numpy.

    image_y, image_x: native (ny, nx) image-plane grid; traced_y, traced_x:
    (B, ny, nx) source-plane positions; source_y, source_x: (B,). Returns a list
    of B (positions (k, 2), magnifications (k,)) numpy pairs, identical (same
    hits in the same order, same merging) to `lenses.point_images` per element.
    """
    traced_y, traced_x, image_y, image_x = (g.detach() for g in (traced_y, traced_x, image_y, image_x))
    source_y, source_x = _columns(traced_y, source_y, source_x)
    src_y = traced_y - source_y[..., None]
    src_x = traced_x - source_x[..., None]
    ny, nx = image_y.shape

    def corner(grid, dy, dx):
        return grid[..., dy : dy + ny - 1, dx : dx + nx - 1]

    def contains_source(block):
        inside = []
        for triangle in _TRIANGLES:
            vertices = [corner(g[block], dy, dx) for dy, dx in triangle for g in (src_y, src_x)]
            w_a, w_b, w_c, area = _barycentric(*vertices)
            inside.append((w_a >= 0) & (w_b >= 0) & (w_c >= 0) & (area != 0))
        return torch.stack(inside, dim=1)

    # On CPU, one or a few grids at a time keep the temporaries in cache (3x faster than the whole batch).
    step = traced_y.shape[0] if traced_y.device.type != "cpu" else max(1, _CPU_BLOCK_CELLS // (ny * nx))
    inside = torch.cat([contains_source(slice(i, i + step)) for i in range(0, traced_y.shape[0], step)])
    # nonzero's lexicographic (batch, triangle, row, column) order is the numpy code's concatenation order.
    batch, kind, row, col = torch.nonzero(inside, as_tuple=True)

    # Re-evaluate only the hits: the same elementwise IEEE operations give the same bits.
    vertices = torch.tensor(_TRIANGLES, device=traced_y.device)[kind]  # (K, 3, 2)
    rows, cols = row[:, None] + vertices[..., 0], col[:, None] + vertices[..., 1]
    s_y, s_x = src_y[batch[:, None], rows, cols], src_x[batch[:, None], rows, cols]
    i_y, i_x = image_y[rows, cols], image_x[rows, cols]
    w_a, w_b, w_c, area_src = _barycentric(s_y[:, 0], s_x[:, 0], s_y[:, 1], s_x[:, 1], s_y[:, 2], s_x[:, 2])
    area_img = _cross(i_y[:, 1] - i_y[:, 0], i_x[:, 1] - i_x[:, 0], i_y[:, 2] - i_y[:, 0], i_x[:, 2] - i_x[:, 0])
    hit_y = w_a * i_y[:, 0] + w_b * i_y[:, 1] + w_c * i_y[:, 2]
    hit_x = w_a * i_x[:, 0] + w_b * i_x[:, 1] + w_c * i_x[:, 2]
    hits = torch.stack([hit_y, hit_x, area_img / area_src], dim=1).cpu().numpy()

    image = np.stack([image_y.cpu().numpy(), image_x.cpu().numpy()], axis=-1)
    radius = 2.5 * np.hypot(*(image[1, 1] - image[0, 0]))
    starts = np.searchsorted(batch.cpu().numpy(), np.arange(traced_y.shape[0] + 1))
    results = []
    for start, stop in zip(starts[:-1], starts[1:]):
        positions, mus = lenses._merge_hits(hits[start:stop, :2], hits[start:stop, 2], radius)
        keep = np.abs(mus) >= min_magnification
        order = np.argsort(-np.abs(mus[keep]))
        results.append((positions[keep][order], mus[keep][order]))
    return results
