"""Own lenses — FITS cutouts in (orientation, units, noise, PSF), ready for the guarded loop."""
