"""Stage 1 — simulated lenses: survey (PSF, noise), distributions, sources, mass models, line of sight.

M21 §3.1 (SLACS-like SIE lenses at Euclid VIS), P21 §2.1 (training images) and §2.2 (test sets).
"""
