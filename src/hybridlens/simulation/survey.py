"""Instrument model: pixel grid, PSF and the CCD noise model.

Images are in e-/s per pixel (PyAutoLens' convention). The noise model counts
electrons over the whole exposure: signal, sky and dark current are Poisson,
read noise is Gaussian per read-out, so the per-pixel variance in (e-/s)^2 is

    var = [(S + L + B + D) * t + n_exp * RN^2] / t^2

with S the lensed source, L the lens light, B the sky and D the dark current.
B, D and L are subtracted afterwards (their expectation is known in a
simulation) so only their shot noise remains, as in P21 section 2.1.
"""

from dataclasses import asdict, dataclass

import numpy as np

SIGMA_PER_FWHM = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class Survey:
    name: str
    pixel_scale: float
    shape: tuple
    psf_fwhm: float
    exposure_time: float
    n_exposures: int
    sky_level: float
    read_noise: float
    dark_current: float
    zero_point: float

    @classmethod
    def from_settings(cls, settings):
        return cls(**{"name": "", **settings, "shape": tuple(settings["shape"])})

    def as_dict(self):
        return {**asdict(self), "shape": list(self.shape)}

    @property
    def psf_sigma(self):
        return self.psf_fwhm * SIGMA_PER_FWHM

    def psf_kernel(self):
        """Normalised Gaussian PSF, odd-sized, covering +-4 sigma."""
        half = max(1, int(np.ceil(4.0 * self.psf_sigma / self.pixel_scale)))
        y, x = np.mgrid[-half : half + 1, -half : half + 1] * self.pixel_scale
        kernel = np.exp(-0.5 * (x**2 + y**2) / self.psf_sigma**2)
        return kernel / kernel.sum()

    def counts_per_second(self, magnitude):
        """Total e-/s of a source of AB `magnitude` in this band."""
        return 10.0 ** (-0.4 * (np.asarray(magnitude) - self.zero_point))


def flux_scale(survey, reference):
    """Factor converting a per-pixel rate quoted for `reference` to `survey`.

    Surface brightness is per solid angle and per photon, so it scales with
    pixel area and with the zero points (collecting area x throughput).
    """
    area = (survey.pixel_scale / reference.pixel_scale) ** 2
    return area * 10.0 ** (0.4 * (survey.zero_point - reference.zero_point))


@dataclass(frozen=True)
class NoiseModel:
    """Which terms of the CCD model are on (config `noise:` block)."""

    sky: bool
    poisson: bool
    read_noise: bool
    dark_current: bool

    def background(self, survey):
        """Expected non-astrophysical e-/s/pixel: sky plus dark current."""
        return survey.sky_level * self.sky + survey.dark_current * self.dark_current

    def variance(self, survey, expected):
        """Per-pixel variance in (e-/s)^2 given the expected astrophysical e-/s."""
        t = survey.exposure_time
        var = np.zeros_like(expected, dtype=float)
        if self.poisson:
            var = var + np.clip(expected + self.background(survey), 0.0, None) * t
        if self.read_noise:
            var = var + survey.n_exposures * survey.read_noise**2
        return var / t**2

    def realise(self, rng, survey, expected):
        """One noisy, background-subtracted image of `expected` (e-/s) and its noise map."""
        t = survey.exposure_time
        background = self.background(survey)
        total = np.clip(expected + background, 0.0, None) * t
        counts = rng.poisson(total).astype(float) if self.poisson else total
        if self.read_noise:
            counts = counts + rng.normal(0.0, survey.read_noise * np.sqrt(survey.n_exposures), total.shape)
        image = counts / t - background
        return image, np.sqrt(self.variance(survey, expected))
