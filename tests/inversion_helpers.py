"""Inversion settings the unit tests share: a coarse source mesh and a loose coefficient search, for speed."""

INVERSION = {
    "over_sample": 4,
    "overlay_shape": [24, 24],
    "positive_only": False,
    "log10_coefficient_range": [-4.0, 2.0],
    "log10_coefficient_tolerance": 0.1,
}
