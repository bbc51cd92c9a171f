"""Real-morphology sources from the Hubble Deep Field image bundled with scikit-image.

`skimage.data.hubble_deep_field()` is an 872 x 1000 RGB JPEG of the WFPC2 HDF:
not flux-calibrated and compressed, but real galaxy shapes (clumps, spiral arms,
irregulars) and available offline. Galaxies are segmented (threshold above the
sigma-clipped background, connected components), cut into square stamps, the
background and neighbouring objects removed, and each stamp normalised to unit
flux. They stand in for M21's HUDF sources.
"""

import numpy as np
from scipy import ndimage


def luminance():
    """The HDF image as one float channel (mean of R, G, B)."""
    from skimage.data import hubble_deep_field

    return hubble_deep_field().astype(float).mean(axis=-1)


def background(image, iterations=5, clip=3.0):
    """Sigma-clipped median and rms of the sky."""
    values = image.ravel()
    for _ in range(iterations):
        median, rms = np.median(values), 1.4826 * np.median(np.abs(values - np.median(values)))
        values = values[np.abs(values - median) < clip * rms]
    return float(np.median(values)), float(1.4826 * np.median(np.abs(values - np.median(values))))


def galaxy_stamps(image, settings):
    """Unit-flux stamps of isolated galaxies, largest first.

    `settings`: detection threshold in sky rms, min/max segment area (pixels),
    stamp padding factor, and how many to keep.
    """
    sky, rms = background(image)
    detected = ndimage.binary_opening(image > sky + settings["threshold_sigma"] * rms)
    labels, n = ndimage.label(detected)
    areas = np.bincount(labels.ravel())
    stamps, info = [], []
    for label in np.argsort(-areas[1:]) + 1:
        area = areas[label]
        if not settings["min_area"] <= area <= settings["max_area"]:
            continue
        rows, cols = np.nonzero(labels == label)
        half = int(np.ceil(settings["padding"] * max(np.ptp(rows), np.ptp(cols)) / 2)) + 2
        cy, cx = int(round(rows.mean())), int(round(cols.mean()))
        if cy - half < 0 or cx - half < 0 or cy + half >= image.shape[0] or cx + half >= image.shape[1]:
            continue
        window = (slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1))
        own = ndimage.binary_dilation(labels[window] == label, iterations=2)
        stamp = np.where(own, np.clip(image[window] - sky, 0.0, None), 0.0)
        stamps.append(stamp / stamp.sum())
        info.append({"centre_row": cy, "centre_col": cx, "area": int(area), "size": 2 * half + 1})
        if len(stamps) == settings["n_stamps"]:
            break
    return stamps, info


def half_light_radius(stamp):
    """Circular half-light radius of a stamp about its flux centroid, in stamp pixels."""
    y, x = np.indices(stamp.shape)
    cy, cx = (stamp * y).sum() / stamp.sum(), (stamp * x).sum() / stamp.sum()
    radius = np.hypot(y - cy, x - cx).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(stamp.ravel()[order])
    return float(radius[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
