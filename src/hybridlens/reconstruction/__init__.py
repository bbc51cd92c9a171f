"""Stage 2 — annular masks and semi-linear source inversions (M21 §3.1–3.3).

Masks, the inversion itself, the U/C/O calibration of θ_E shifts and the θ_E-shifted training set.
"""
