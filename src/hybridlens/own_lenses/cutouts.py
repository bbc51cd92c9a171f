"""Users' own lenses: FITS cutouts read into PyAutoLens' arrays, units and survey checked.

Conventions, each applied in exactly one place:

- Orientation: FITS stores row 0 at the bottom (y up, as ds9 shows it);
  PyAutoLens arrays have row 0 at the top. `from_fits_rows` flips rows, and
  every array read from a file (image, noise map, PSF) passes through
  `read_array`, its only caller. Columns are not touched: x grows to the right
  in both, so a north-up, east-left cutout keeps north up and east left.
- Units: e-/s per pixel. Counts are divided by the exposure time, ADU
  multiplied by the gain first (`to_electrons_per_second`); a noise map read
  from a file is in the image's units and converted with the same factor.
- Pixel scale: from the celestial WCS (`model_lenses.pixel_scale` when the
  header has none).
- A cutout that differs from the networks' training survey (pixel scale, PSF
  width, a stamp smaller than theirs) is refused with the reason; a larger
  stamp is centre-cropped, and the crop is recorded. Nothing is resampled.
"""

import glob
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hybridlens.simulation.survey import SIGMA_PER_FWHM

ELECTRON_RATE_UNITS = ("ELECTRONS/S", "ELECTRON/S", "E-/S", "E/S", "ELECTRONS/SEC", "ELECTRONS S-1", "E- S-1")
ELECTRON_UNITS = ("ELECTRONS", "ELECTRON", "E-")
ADU_RATE_UNITS = ("COUNTS/S", "ADU/S", "DN/S", "COUNTS S-1", "ADU S-1", "DN S-1")
ADU_UNITS = ("COUNTS", "ADU", "DN")
UNIT_CHOICES = ("auto", "e-/s", "electrons", "adu", "adu/s")


class CutoutError(ValueError):
    """A cutout that cannot be modelled; the message is the catalogue's reason."""


@dataclass(frozen=True)
class CutoutSpec:
    """One lens to model: its file and how to read it (config `model_lenses`, per-lens entries on top)."""

    name: str
    path: str
    image_hdu: object = 0  # index or EXTNAME
    units: str = "auto"
    noise: dict = field(default_factory=dict)  # hdu | file | exposure_time, gain, sky_level, read_noise, n_exposures
    psf: dict = field(default_factory=dict)  # file (+ hdu) | fwhm (arcsec); neither: the survey's Gaussian
    pixel_scale: float = None  # arcsec; None: from the WCS
    centre: object = "auto"  # lens centre prior's and annulus' middle: auto, stamp (0, 0), mask (centroid) or [y, x]
    einstein_radius_range: tuple = None  # arcsec, known beforehand; None: the mask's annulus
    prior: dict = None  # {einstein_radius, axis_ratio, angle: [mean, sigma]} known beforehand, instead of the BNN's
    lens_light: str = "model"  # model: fitted (MGE) and subtracted; subtracted: the cutout comes without it


@dataclass
class Cutout:
    """A cutout in PyAutoLens' conventions: e-/s per pixel, row 0 at the top, arcsec."""

    name: str
    image: np.ndarray
    noise_map: np.ndarray
    psf_kernel: np.ndarray
    pixel_scale: float
    north_angle: float = np.nan  # degrees counter-clockwise from +x of north (NaN without a celestial WCS)
    east_counter_clockwise: bool = True  # east lies 90 degrees counter-clockwise of north (the sky as seen)
    notes: list = field(default_factory=list)  # what was done to the input (units, crop)

    def position_angle(self, angle):
        """A model angle (counter-clockwise from +x) as a position angle east of north, modulo 180."""
        if not np.isfinite(self.north_angle):
            return np.nan
        offset = angle - self.north_angle if self.east_counter_clockwise else self.north_angle - angle
        return float(offset % 180.0)


# --- orientation: the one conversion ---------------------------------------------------------------


def from_fits_rows(array):
    """FITS (row 0 at the bottom) to PyAutoLens (row 0 at the top); its own inverse."""
    return np.ascontiguousarray(np.flipud(np.asarray(array)))


to_fits_rows = from_fits_rows


def read_array(path, hdu):
    """A 2-D float array from an HDU of a FITS file, in PyAutoLens' row order, and its header."""
    from astropy.io import fits

    try:
        hdul = fits.open(path, memmap=False)
    except FileNotFoundError:
        raise CutoutError(f"{path}: file not found") from None
    except Exception as error:
        raise CutoutError(f"{path}: unreadable FITS file ({type(error).__name__}: {error})") from None
    with hdul:
        try:
            unit = hdul[hdu]
        except (KeyError, IndexError):
            names = [h.name for h in hdul]
            raise CutoutError(f"{path}: no HDU {hdu!r} (the file has {names})") from None
        if unit.data is None:
            raise CutoutError(f"{path}: HDU {hdu!r} holds no data")
        data = np.asarray(unit.data, dtype=float)
        header = unit.header.copy()
        primary = hdul[0].header.copy()
    if data.ndim != 2:
        raise CutoutError(f"{path}: HDU {hdu!r} has shape {data.shape}, not a 2-D image")
    for key in ("EXPTIME", "GAIN", "CCDGAIN", "BUNIT"):  # instrument keys often sit in the primary header
        if key not in header and key in primary:
            header[key] = primary[key]
    return from_fits_rows(data), header


# --- units -------------------------------------------------------------------------------------------


def unit_of(header, units):
    """The image's unit family: e-/s, electrons, adu or adu/s (from BUNIT when `units` is auto)."""
    if units != "auto":
        if units not in UNIT_CHOICES:
            raise CutoutError(f"model_lenses.units: {units!r} is not one of {UNIT_CHOICES}")
        return units
    bunit = str(header.get("BUNIT", "")).strip().upper()
    for family, names in (
        ("e-/s", ELECTRON_RATE_UNITS),
        ("adu/s", ADU_RATE_UNITS),
        ("electrons", ELECTRON_UNITS),
        ("adu", ADU_UNITS),
    ):
        if bunit in names:
            return family
    if bunit:
        raise CutoutError(f"BUNIT {bunit!r} is not understood: set model_lenses.units")
    return "e-/s"


def header_number(header, keys, configured, what):
    """A positive number from the config or, failing that, the first of `keys` in the header."""
    if configured is not None:
        return float(configured)
    for key in keys:
        if key in header and float(header[key]) > 0:
            return float(header[key])
    raise CutoutError(f"{what} needed but neither in the config nor in the header ({'/'.join(keys)})")


def to_electrons_per_second(header, units, noise_settings):
    """The factor taking the image to e-/s per pixel, and a note saying how it was found."""
    family = unit_of(header, units)
    if family == "e-/s":
        return 1.0, "e-/s" + (" (no BUNIT: assumed)" if "BUNIT" not in header and units == "auto" else "")
    factor, parts = 1.0, []
    if family in ("adu", "adu/s"):
        gain = header_number(header, ("GAIN", "CCDGAIN"), noise_settings.get("gain"), "gain (e-/ADU)")
        factor *= gain
        parts.append(f"x gain {gain:g}")
    if family in ("electrons", "adu"):
        exposure = header_number(header, ("EXPTIME",), noise_settings.get("exposure_time"), "exposure time (s)")
        factor /= exposure
        parts.append(f"/ exposure {exposure:g} s")
    return factor, f"{family} {' '.join(parts)} -> e-/s"


def computed_noise(image, header, noise_settings, factor=1.0):
    """Per-pixel sigma (e-/s) of a sky-subtracted image from its exposure, sky level and read noise.

    var = [(max(S, 0) + sky) t + n_exp RN^2] / t^2, as the simulations' noise model. The
    sky is `noise.sky_level` (e-/s/pixel) or the header's SKYLEVEL (the image's units,
    taken to e-/s by the image's `factor`).
    """
    exposure = header_number(header, ("EXPTIME",), noise_settings.get("exposure_time"), "exposure time (s)")
    sky = noise_settings.get("sky_level")
    if sky is None and "SKYLEVEL" in header:
        sky = float(header["SKYLEVEL"]) * factor
    if sky is None:
        raise CutoutError("noise map to compute but neither model_lenses.noise.sky_level nor SKYLEVEL is set")
    read_noise = float(noise_settings.get("read_noise") or 0.0)
    n_exposures = int(noise_settings.get("n_exposures") or 1)
    variance = (np.clip(image, 0.0, None) + float(sky)) * exposure + n_exposures * read_noise**2
    return np.sqrt(variance) / exposure


# --- geometry ----------------------------------------------------------------------------------------


def wcs_geometry(header, shape, path=None):
    """(pixel scale arcsec, north angle deg, east counter-clockwise) from a celestial WCS, or None.

    None means the header has no celestial WCS (the config's pixel scale is then
    needed); a WCS that astropy cannot parse is a `CutoutError` naming the file
    `path` and astropy's complaint, not a header without one.
    """
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception as error:  # astropy raises several types for a malformed WCS
            where = f"{path}: " if path is not None else ""
            complaint = " ".join(str(error).split())  # wcslib's message spans lines; a catalogue reason does not
            raise CutoutError(
                f"{where}malformed WCS in the header ({type(error).__name__}: {complaint}); "
                "fix or remove its WCS keywords"
            ) from None
    if not wcs.has_celestial:
        return None
    scales = proj_plane_pixel_scales(wcs.celestial) * 3600.0
    if not np.isclose(scales[0], scales[1], rtol=0.01):
        raise CutoutError(f"pixels are not square ({scales[0]:.4f} x {scales[1]:.4f} arcsec)")
    # Directions of north and east at the stamp centre; FITS pixel y and PyAutoLens' y both point up.
    centre = np.array([(shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0])
    ra, dec = wcs.celestial.wcs_pix2world([centre], 0)[0]
    step = scales[0] / 3600.0
    north = wcs.celestial.wcs_world2pix([[ra, dec + step]], 0)[0] - centre
    east = wcs.celestial.wcs_world2pix([[ra + step / np.cos(np.deg2rad(dec)), dec]], 0)[0] - centre
    north_angle = float(np.rad2deg(np.arctan2(north[1], north[0])))
    east_angle = float(np.rad2deg(np.arctan2(east[1], east[0])))
    return float(scales[0]), north_angle % 360.0, bool(np.isclose((east_angle - north_angle) % 360.0, 90.0, atol=5))


def psf_fwhm(kernel, pixel_scale):
    """FWHM (arcsec) of a kernel from its second moments, as for a Gaussian."""
    kernel = np.asarray(kernel, float)
    y, x = np.indices(kernel.shape, dtype=float)
    total = kernel.sum()
    cy, cx = (kernel * y).sum() / total, (kernel * x).sum() / total
    variance = (kernel * ((y - cy) ** 2 + (x - cx) ** 2)).sum() / total / 2.0
    return float(np.sqrt(variance) * pixel_scale / SIGMA_PER_FWHM)


def centre_crop(array, shape):
    """The central `shape` of a larger array."""
    top, left = (array.shape[0] - shape[0]) // 2, (array.shape[1] - shape[1]) // 2
    return array[top : top + shape[0], left : left + shape[1]]


# --- reading one lens ----------------------------------------------------------------------------


def read_cutout(spec, survey, tolerances):
    """A `Cutout` ready for the networks of `survey`, or `CutoutError` saying why not."""
    image, header = read_array(spec.path, spec.image_hdu)
    notes = []
    geometry = wcs_geometry(header, image.shape, spec.path)
    if spec.pixel_scale is not None:
        pixel_scale, north_angle, east_ccw = float(spec.pixel_scale), np.nan, True
        if geometry is not None:
            north_angle, east_ccw = geometry[1], geometry[2]
        notes.append(f'pixel scale {pixel_scale:.4g}" from the config')
    elif geometry is not None:
        pixel_scale, north_angle, east_ccw = geometry
        notes.append(
            f'pixel scale {pixel_scale:.4g}" from the WCS, north {north_angle:.0f} deg counter-clockwise of +x, '
            f"east {'counter-' if east_ccw else ''}clockwise of north"
        )
    else:
        raise CutoutError("no celestial WCS in the header and model_lenses.pixel_scale is not set")
    notes.append(f"image {image.shape[0]}x{image.shape[1]} pixels from {Path(spec.path).name} HDU {spec.image_hdu}")
    factor, how = to_electrons_per_second(header, spec.units, spec.noise)
    notes.append(f"units: {how}")
    image = image * factor
    if spec.noise.get("hdu") is not None or spec.noise.get("file"):
        noise_path = spec.noise.get("file") or spec.path
        noise_map, _ = read_array(noise_path, spec.noise.get("hdu") or 0)
        if noise_map.shape != image.shape:
            raise CutoutError(f"noise map shape {noise_map.shape} differs from the image's {image.shape}")
        noise_map = noise_map * factor
        notes.append(f"noise: read from {Path(noise_path).name} HDU {spec.noise.get('hdu') or 0}, in the image's units")
    else:
        noise_map = computed_noise(image, header, spec.noise, factor)
        notes.append("noise: computed from exposure, sky and read noise")
    if spec.psf.get("file"):
        kernel, _ = read_array(spec.psf["file"], spec.psf.get("hdu") or 0)
        if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
            raise CutoutError(f"PSF kernel shape {kernel.shape} is not odd-sized")
        kernel = kernel / kernel.sum()
        how = f"read from {Path(spec.psf['file']).name}"
    else:
        fwhm = float(spec.psf.get("fwhm") or survey.psf_fwhm)
        kernel = replace(survey, psf_fwhm=fwhm, pixel_scale=pixel_scale).psf_kernel()
        how = "a Gaussian of the " + ("configured FWHM" if spec.psf.get("fwhm") else f"survey {survey.name or ''}")
    notes.append(f'PSF: {how}, {kernel.shape[0]}x{kernel.shape[1]} pixels, FWHM {psf_fwhm(kernel, pixel_scale):.3f}"')
    image, noise_map = check_survey(image, noise_map, kernel, pixel_scale, survey, tolerances, notes)
    check_values(image, noise_map)
    return Cutout(spec.name, image, noise_map, kernel, pixel_scale, north_angle, east_ccw, notes)


def check_survey(image, noise_map, kernel, pixel_scale, survey, tolerances, notes):
    """Refuse a cutout the networks were not trained for; centre-crop a larger stamp."""
    relative = abs(pixel_scale / survey.pixel_scale - 1.0)
    if relative > tolerances["pixel_scale"]:
        raise CutoutError(
            f"pixel scale {pixel_scale:.4g}\" differs from the networks' survey {survey.name or ''} "
            f'({survey.pixel_scale:.4g}") by {100 * relative:.0f} %: refused (cutouts are not resampled; '
            "resample the cutout or train on a matching survey)"
        )
    fwhm = psf_fwhm(kernel, pixel_scale)
    relative = abs(fwhm / survey.psf_fwhm - 1.0)
    if relative > tolerances["psf_fwhm"]:
        raise CutoutError(
            f'PSF FWHM {fwhm:.3g}" differs from the networks\' survey ({survey.psf_fwhm:.3g}") '
            f"by {100 * relative:.0f} %: refused"
        )
    shape = tuple(survey.shape)
    if image.shape == shape:
        return image, noise_map
    if image.shape[0] < shape[0] or image.shape[1] < shape[1]:
        raise CutoutError(f"stamp {image.shape} is smaller than the networks' {shape}: refused")
    notes.append(f"centre-cropped from {image.shape} to {shape}")
    return centre_crop(image, shape), centre_crop(noise_map, shape)


def check_values(image, noise_map):
    """NaN or infinite pixels, or a noise map that is not positive: refused."""
    bad = ~np.isfinite(image)
    if bad.any():
        raise CutoutError(f"image has {int(bad.sum())} NaN/inf pixels")
    if not (np.isfinite(noise_map).all() and (noise_map > 0).all()):
        raise CutoutError("noise map has non-finite or non-positive pixels")


# --- config ------------------------------------------------------------------------------------------

SHARED_KEYS = (
    "image_hdu",
    "units",
    "noise",
    "psf",
    "pixel_scale",
    "centre",
    "einstein_radius_range",
    "prior",
    "lens_light",
)


def specs(settings, base="."):
    """{name: CutoutSpec} of the config's `model_lenses` block; names are the files' stems.

    `files` holds paths or globs (relative to `base`); `per_lens` overrides the
    shared reading settings for a stem. Two files with one stem are an error.
    """
    found = {}
    for entry in settings.get("files") or []:
        pattern = Path(base) / entry
        matches = sorted(map(Path, glob.glob(str(pattern)))) if any(c in entry for c in "*?[") else [pattern]
        for path in matches:
            name = path.name.removesuffix(".gz").removesuffix(".fits").removesuffix(".fit")
            if name.endswith(".coolest"):
                raise ValueError(f"model_lenses.files: {path}: a cutout's name may not end in .coolest (its export's)")
            if name in found and found[name] != str(path):
                raise ValueError(f"model_lenses.files: two cutouts named {name!r} ({found[name]}, {path})")
            found[name] = str(path)
    out = {}
    for name, path in found.items():
        merged = {key: settings.get(key) for key in SHARED_KEYS}
        merged.update((settings.get("per_lens") or {}).get(name, {}))
        merged["noise"], merged["psf"] = dict(merged.get("noise") or {}), dict(merged.get("psf") or {})
        out[name] = CutoutSpec(name, path, **{k: v for k, v in merged.items() if v is not None})
    return out


def write_cutout(path, image, pixel_scale, noise_map=None, bunit="ELECTRONS/S", header=None, ra=150.0, dec=2.0):
    """A PyAutoLens-ordered image as a FITS cutout (north up, east left), noise map in HDU NOISE."""
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [(image.shape[1] + 1) / 2.0, (image.shape[0] + 1) / 2.0]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.cdelt = [-pixel_scale / 3600.0, pixel_scale / 3600.0]
    primary = fits.PrimaryHDU(to_fits_rows(np.asarray(image, np.float32)), header=wcs.to_header())
    primary.header["BUNIT"] = bunit
    for key, value in (header or {}).items():
        primary.header[key] = value
    hdus = [primary]
    if noise_map is not None:
        hdus.append(fits.ImageHDU(to_fits_rows(np.asarray(noise_map, np.float32)), name="NOISE"))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


@dataclass
class Prepared:
    """What the guarded loop models: the image with the lens light removed, the lens centre and how it was found."""

    image: np.ndarray
    centre: tuple  # (y, x) arcsec for the centre prior; None: the mask's centroid
    mask_centre: tuple  # the annulus' middle; None: the arcs' centroid (M21)
    centre_source: str  # light, stamp, mask or given
    light: object  # a lens_light.LensLight, or None
    notes: list

    @property
    def centre_uncertain(self):
        """A stamp centre is the lens's only to a few pixels; light and given centres to a fraction of one."""
        return self.centre_source == "stamp"


def prepare(cutout, spec, light_settings):
    """The lens light fitted and subtracted (`lens_light: model`), the centre chosen by `spec.centre`.

    `auto`: the lens light's centre where it was modelled and found (it marks the lens to
    a fraction of a pixel), else the stamp's (a cutout is centred on its lens); never
    the arcs' centroid, which the brighter image of a double pulls off the lens.
    """
    from hybridlens.own_lenses import lens_light

    light, notes, image = None, [], cutout.image
    if spec.lens_light == "model":
        light = lens_light.fit_lens_light(
            image, cutout.noise_map, cutout.psf_kernel, cutout.pixel_scale, light_settings
        )
        notes += light.notes
        if light.found:
            image = image - light.image
            notes.append(
                f'lens light: MGE at ({light.centre[0]:+.3f}, {light.centre[1]:+.3f})" q {light.axis_ratio:.2f}, '
                f"S/N {light.snr:.0f}, {int(light.clipped.sum())} arc pixels clipped, subtracted"
            )
    if spec.centre == "mask":
        return Prepared(image, None, None, "mask", light, notes)
    if spec.centre == "auto":
        found = light is not None and light.found
        centre, source = (light.centre, "light") if found else ((0.0, 0.0), "stamp")
    elif spec.centre == "stamp":
        centre, source = (0.0, 0.0), "stamp"
    else:
        centre, source = tuple(float(v) for v in spec.centre), "given"
    return Prepared(image, centre, centre, source, light, notes)


CENTRE_SOURCES = {
    "light": "the lens light's centre",
    "stamp": "the stamp centre",
    "mask": "the arcs' centroid (the mask's)",
    "given": "the configured centre",
}


def centre_text(prepared, spec):
    """Where the lens-centre prior and the annulus sit, and why, on one line."""
    where = CENTRE_SOURCES[prepared.centre_source]
    if prepared.centre is None:
        return f"{where} (centre: {spec.centre})"
    y, x = prepared.centre
    return f'({y:+.3f}, {x:+.3f})": {where} (centre: {spec.centre})'


def known_prediction(spec):
    """The `prior` a user gave (means and 1-sigma of theta_E, q, phi) as a `Prediction`, or None."""
    from hybridlens.fitting.informed_priors import Prediction

    if not spec.prior:
        return None
    values = {}
    for name in ("einstein_radius", "axis_ratio", "angle"):
        values[name], values[f"{name}_sigma"] = (float(v) for v in spec.prior[name])
    return Prediction(**values)
