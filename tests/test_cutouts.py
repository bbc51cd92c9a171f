"""Users' FITS cutouts: orientation, units, noise, geometry and the survey checks."""

import numpy as np
import pytest
from astropy import units
from astropy.io import fits
from astropy.wcs import WCS

from hybridlens.own_lenses import cutouts
from hybridlens.reconstruction import masking
from hybridlens.simulation.survey import NoiseModel

TOLERANCES = {"pixel_scale": 0.01, "psf_fwhm": 0.2}


def sky_wcs(shape, pixel_scale, rotation=0.0, east_left=True):
    """A TAN WCS, north rotated `rotation` degrees from +y, east to the left unless mirrored."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    wcs.wcs.crval = [150.0, 2.0]
    cos, sin = np.cos(np.deg2rad(rotation)), np.sin(np.deg2rad(rotation))
    sign = -1.0 if east_left else 1.0
    scale = pixel_scale / 3600.0
    wcs.wcs.cd = np.array([[sign * scale * cos, -scale * sin], [sign * scale * sin, scale * cos]])
    return wcs


def write(path, data, header=None, wcs=None, extra=()):
    primary = fits.PrimaryHDU(np.asarray(data, np.float32), header=wcs.to_header() if wcs else None)
    for key, value in (header or {}).items():
        primary.header[key] = value
    fits.HDUList([primary, *extra]).writeto(path, overwrite=True)
    return str(path)


def test_a_source_north_east_of_centre_lands_up_and_left_in_autolens_arrays(tmp_path, euclid):
    # Written with astropy alone: FITS row index grows northwards with this WCS.
    shape = euclid.shape
    data = np.zeros(shape)
    wcs = sky_wcs(shape, euclid.pixel_scale)
    centre = wcs.pixel_to_world((shape[1] - 1) / 2, (shape[0] - 1) / 2)
    target = centre.directional_offset_by(45 * units.deg, 2 * units.arcsec)  # position angle 45: north-east
    col, row = (int(round(float(v))) for v in wcs.world_to_pixel(target))
    data[row, col] = 100.0
    data[5, 7] = 1.0  # a second, asymmetric marker near the FITS origin (bottom left)
    path = write(tmp_path / "lens.fits", data, {"BUNIT": "ELECTRONS/S"}, wcs)
    image, _ = cutouts.read_array(path, 0)
    y, x = masking.pixel_coordinates(shape, euclid.pixel_scale)
    peak = np.unravel_index(np.argmax(image), shape)
    assert y[peak] == pytest.approx(np.sqrt(2.0), abs=0.1) and x[peak] == pytest.approx(-np.sqrt(2.0), abs=0.1)
    assert image[shape[0] - 1 - 5, 7] == 1.0  # FITS' bottom-left is PyAutoLens' bottom-left: last row, column 7


def test_a_simulated_lens_round_trips_through_fits_and_keeps_its_orientation(tmp_path, euclid):
    rng = np.random.default_rng(3)
    image = rng.normal(size=euclid.shape)
    image[10:20, 60:65] += 50.0  # asymmetric: top right in PyAutoLens' orientation
    noise = np.abs(rng.normal(size=euclid.shape)) + 0.1
    path = cutouts.write_cutout(tmp_path / "sim.fits", image, euclid.pixel_scale, noise)
    spec = cutouts.CutoutSpec("sim", str(path), noise={"hdu": "NOISE"})
    cutout = cutouts.read_cutout(spec, euclid, TOLERANCES)
    assert np.allclose(cutout.image, image.astype(np.float32)) and np.allclose(
        cutout.noise_map, noise.astype(np.float32)
    )
    assert cutout.pixel_scale == pytest.approx(euclid.pixel_scale)
    assert np.allclose(cutout.psf_kernel, euclid.psf_kernel())
    with fits.open(path) as hdul:  # on disk the bright block sits in the top rows as ds9 shows them (high row index)
        assert hdul[0].data[-20:-10, 60:65].mean() > 40
    assert cutout.north_angle == pytest.approx(90.0, abs=0.5) and cutout.east_counter_clockwise


@pytest.mark.parametrize(
    "bunit, header, factor",
    [
        ("ELECTRONS/S", {}, 1.0),
        ("ELECTRONS", {"EXPTIME": 500.0}, 1 / 500.0),
        ("ADU", {"EXPTIME": 500.0, "GAIN": 2.0}, 2.0 / 500.0),
        ("COUNTS/S", {"CCDGAIN": 1.5}, 1.5),
    ],
)
def test_counts_become_electrons_per_second_and_the_noise_map_follows(tmp_path, euclid, bunit, header, factor):
    image = np.full(euclid.shape, 10.0)
    noise = np.full(euclid.shape, 2.0)
    extra = [fits.ImageHDU(noise.astype(np.float32), name="NOISE")]
    path = write(tmp_path / "lens.fits", image, {"BUNIT": bunit, **header}, sky_wcs(euclid.shape, 0.1), extra)
    cutout = cutouts.read_cutout(cutouts.CutoutSpec("l", path, noise={"hdu": "NOISE"}), euclid, TOLERANCES)
    assert np.allclose(cutout.image, 10.0 * factor) and np.allclose(cutout.noise_map, 2.0 * factor)


def test_an_unknown_unit_or_a_missing_exposure_time_is_refused_by_name(tmp_path, euclid):
    wcs = sky_wcs(euclid.shape, 0.1)
    path = write(tmp_path / "jy.fits", np.ones(euclid.shape), {"BUNIT": "Jy/beam"}, wcs)
    with pytest.raises(cutouts.CutoutError, match="model_lenses.units"):
        cutouts.read_cutout(cutouts.CutoutSpec("l", path, noise={"hdu": 0}), euclid, TOLERANCES)
    path = write(tmp_path / "e.fits", np.ones(euclid.shape), {"BUNIT": "ELECTRONS"}, wcs)
    with pytest.raises(cutouts.CutoutError, match="EXPTIME"):
        cutouts.read_cutout(cutouts.CutoutSpec("l", path, noise={"hdu": 0}), euclid, TOLERANCES)


def test_a_computed_noise_map_describes_the_scatter_of_a_noisy_image(euclid):
    rng = np.random.default_rng(0)
    y, x = masking.pixel_coordinates(euclid.shape, euclid.pixel_scale)
    truth = 5.0 * np.exp(-0.5 * (np.hypot(y, x) - 1.2) ** 2 / 0.1**2)
    model = NoiseModel(sky=True, poisson=True, read_noise=True, dark_current=False)
    image, _ = model.realise(rng, euclid, truth)
    settings = {"exposure_time": euclid.exposure_time, "sky_level": euclid.sky_level, "read_noise": euclid.read_noise}
    noise = cutouts.computed_noise(image, {}, settings)
    pulls = (image - truth) / noise
    assert np.std(pulls) == pytest.approx(1.0, abs=0.03)
    bright = truth > 2.0
    assert np.std(pulls[bright]) == pytest.approx(1.0, abs=0.1)  # the source's own shot noise is in the map


def test_the_sky_level_may_come_from_the_header_in_the_images_units(tmp_path, euclid):
    header = {"BUNIT": "ADU", "EXPTIME": 100.0, "GAIN": 2.0, "SKYLEVEL": 50.0}  # 50 ADU = 1 e-/s
    path = write(tmp_path / "adu.fits", np.zeros(euclid.shape), header, sky_wcs(euclid.shape, 0.1))
    cutout = cutouts.read_cutout(cutouts.CutoutSpec("l", path), euclid, TOLERANCES)
    assert np.allclose(cutout.noise_map, np.sqrt(1.0 * 100.0) / 100.0)


def test_the_position_angle_follows_a_rotated_or_mirrored_wcs(euclid):
    for rotation in (0.0, 30.0, -75.0):
        header = sky_wcs(euclid.shape, 0.1, rotation).to_header()
        scale, north, east_ccw = cutouts.wcs_geometry(header, euclid.shape)
        assert scale == pytest.approx(0.1) and east_ccw
        assert north == pytest.approx((90.0 + rotation) % 360.0, abs=0.2)
        cutout = cutouts.Cutout("l", None, None, None, scale, north, east_ccw)
        assert cutout.position_angle(north % 180.0) == pytest.approx(0.0, abs=0.2) or cutout.position_angle(
            north % 180.0
        ) == pytest.approx(180.0, abs=0.2)
        assert cutout.position_angle((north + 90.0) % 180.0) == pytest.approx(90.0, abs=0.2)  # east-west: PA 90
    mirrored = sky_wcs(euclid.shape, 0.1, 0.0, east_left=False).to_header()
    _, north, east_ccw = cutouts.wcs_geometry(mirrored, euclid.shape)
    assert not east_ccw
    cutout = cutouts.Cutout("l", None, None, None, 0.1, north, east_ccw)
    assert cutout.position_angle(60.0) == pytest.approx(30.0, abs=0.2)  # 30 deg from north (+y) towards east (+x)


def test_cutouts_the_networks_were_not_trained_for_are_refused_or_cropped(tmp_path, euclid):
    def read(name, data, pixel_scale=0.1, psf=None):
        path = write(tmp_path / f"{name}.fits", data, {"BUNIT": "ELECTRONS/S"}, sky_wcs(data.shape, pixel_scale))
        spec = cutouts.CutoutSpec(name, path, noise={"exposure_time": 500.0, "sky_level": 1.0}, psf=psf or {})
        return cutouts.read_cutout(spec, euclid, TOLERANCES)

    with pytest.raises(cutouts.CutoutError, match="pixel scale 0.05"):
        read("hst", np.ones((200, 200)), pixel_scale=0.05)
    with pytest.raises(cutouts.CutoutError, match="PSF FWHM"):
        read("blurred", np.ones(euclid.shape), psf={"fwhm": 0.4})
    with pytest.raises(cutouts.CutoutError, match="smaller"):
        read("small", np.ones((60, 60)))
    big = np.zeros((120, 120))
    big[59:61, 59:61] = 10.0  # the central 2 x 2 pixels
    cutout = read("big", big)
    assert cutout.image.shape == euclid.shape and cutout.image[49:51, 49:51].min() == 10.0
    assert any("centre-cropped" in note for note in cutout.notes)
    nan = np.ones(euclid.shape)
    nan[3, 3] = np.nan
    with pytest.raises(cutouts.CutoutError, match="NaN"):
        read("nan", nan)


def test_the_psf_width_of_a_gaussian_kernel_is_its_fwhm(euclid):
    assert cutouts.psf_fwhm(euclid.psf_kernel(), euclid.pixel_scale) == pytest.approx(euclid.psf_fwhm, rel=0.05)


def test_unreadable_files_and_missing_hdus_are_refused_with_the_reason(tmp_path):
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"not a FITS file" * 200)
    with pytest.raises(cutouts.CutoutError, match="unreadable"):
        cutouts.read_array(str(garbage), 0)
    with pytest.raises(cutouts.CutoutError, match="not found"):
        cutouts.read_array(str(tmp_path / "absent.fits"), 0)
    path = write(tmp_path / "one.fits", np.ones((10, 10)))
    with pytest.raises(cutouts.CutoutError, match="no HDU 'NOISE'"):
        cutouts.read_array(path, "NOISE")
    cube = write(tmp_path / "cube.fits", np.ones((2, 10, 10)))
    with pytest.raises(cutouts.CutoutError, match="not a 2-D image"):
        cutouts.read_array(cube, 0)


def test_a_malformed_wcs_is_refused_naming_the_file_not_taken_for_a_missing_one(tmp_path, euclid):
    noise = {"exposure_time": 500.0, "sky_level": 1.0}
    header = {"BUNIT": "ELECTRONS/S", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": 0.0, "CDELT2": 1e-5}
    path = write(tmp_path / "singular.fits", np.ones(euclid.shape), header)
    for pixel_scale in (None, 0.1):  # a configured pixel scale stands in for a missing WCS, not a broken one
        spec = cutouts.CutoutSpec("singular", path, noise=noise, pixel_scale=pixel_scale)
        with pytest.raises(cutouts.CutoutError, match="malformed WCS") as refused:
            cutouts.read_cutout(spec, euclid, TOLERANCES)
        assert str(refused.value).startswith(f"{path}: ") and "matrix is singular" in str(refused.value)
        assert "\n" not in str(refused.value)  # one line: it is the catalogue's reason
    plain = write(tmp_path / "plain.fits", np.ones(euclid.shape), {"BUNIT": "ELECTRONS/S"})
    assert cutouts.wcs_geometry(fits.getheader(plain), euclid.shape) is None
    with pytest.raises(cutouts.CutoutError, match="no celestial WCS"):
        cutouts.read_cutout(cutouts.CutoutSpec("plain", plain, noise=noise), euclid, TOLERANCES)
    cutout = cutouts.read_cutout(cutouts.CutoutSpec("plain", plain, noise=noise, pixel_scale=0.1), euclid, TOLERANCES)
    assert cutout.pixel_scale == 0.1 and np.isnan(cutout.north_angle)


def test_specs_expand_globs_apply_per_lens_settings_and_refuse_twin_names(tmp_path):
    for name in ("a.fits", "b.fits", "c.fit"):
        (tmp_path / name).write_bytes(b"")
    settings = {"files": ["*.fits", "c.fit"], "noise": {"hdu": "NOISE"}, "per_lens": {"b": {"psf": {"fwhm": 0.2}}}}
    specs = cutouts.specs(settings, tmp_path)
    assert sorted(specs) == ["a", "b", "c"]
    assert specs["a"].noise == {"hdu": "NOISE"} and specs["b"].psf == {"fwhm": 0.2} and specs["a"].psf == {}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.fits").write_bytes(b"")
    with pytest.raises(ValueError, match="two cutouts named 'a'"):
        cutouts.specs({"files": ["*.fits", "sub/*.fits"]}, tmp_path)


@pytest.mark.parametrize(
    "seed, kind, with_light",
    [(7, "double", True), (8, "quad", True), (102, "double", False), (10, "quad", False)],
)
def test_a_survey_cutout_gets_a_centre_prior_holding_the_lens_and_an_annulus_holding_its_arcs(
    tmp_path, default_config, seed, kind, with_light
):
    """Doubles and quads, with and without lens light, the lens up to 3 pixels off the stamp centre."""
    from hybridlens import config as hlconfig
    from hybridlens.own_lenses import lens_light
    from hybridlens.simulation import simulate, survey_cutouts
    from hybridlens.simulation.survey import Survey

    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_training"))
    renderer = simulate.Renderer(survey, default_config["simulate_training"]["over_sample"])
    made = survey_cutouts.survey_cutout(
        np.random.default_rng(seed), default_config["simulate_training"], renderer, kind, with_light
    )
    path = survey_cutouts.write(tmp_path / "lens.fits", made, survey.pixel_scale)
    own = default_config["model_lenses"]
    spec = cutouts.CutoutSpec(
        "lens", str(path), noise={"hdu": "NOISE"}, lens_light="model" if with_light else "subtracted"
    )
    cutout = cutouts.read_cutout(spec, survey, own["tolerances"])
    prepared = cutouts.prepare(cutout, spec, lens_light.LightSettings.from_config(own["lens_light_model"]))
    truth = (made.truth["lens_centre_y"], made.truth["lens_centre_x"])
    assert prepared.centre_source == ("light" if with_light else "stamp")
    assert max(abs(prepared.centre[k] - truth[k]) for k in (0, 1)) <= own["centre_half_width"]
    if with_light:
        assert np.hypot(prepared.centre[0] - truth[0], prepared.centre[1] - truth[1]) < 0.05
    annulus = masking.fit_annulus(
        prepared.image, survey.pixel_scale, **default_config["masking"], centre=prepared.mask_centre
    )
    assert made.lensed[annulus.mask].sum() >= 0.95 * made.lensed.sum()


@pytest.mark.parametrize("seed, kind", [(102, "double")])  # the old +-0.1" window about the climb missed this lens
def test_a_stamp_centre_pixels_off_the_lens_gets_a_first_fit_window_holding_it(tmp_path, default_config, seed, kind):
    """No lens light: the prescan's centre grid, from a network-like start at the stamp centre, must reach the lens."""
    from hybridlens import config as hlconfig
    from hybridlens.fitting import modelling, prescan
    from hybridlens.reconstruction import inversion
    from hybridlens.simulation import simulate, survey_cutouts
    from hybridlens.simulation.survey import Survey
    from inversion_helpers import INVERSION

    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_training"))
    renderer = simulate.Renderer(survey, default_config["simulate_training"]["over_sample"])
    made = survey_cutouts.survey_cutout(
        np.random.default_rng(seed), default_config["simulate_training"], renderer, kind, with_light=False
    )
    truth = made.truth
    assert np.hypot(truth["lens_centre_y"], truth["lens_centre_x"]) > 0.1  # pixels off the stamp centre
    annulus = masking.fit_annulus(made.image, survey.pixel_scale, **default_config["masking"], centre=(0.0, 0.0))
    masked = inversion.MaskedLens(made.image, made.noise_map, annulus.mask, renderer.psf, survey.pixel_scale, INVERSION)
    start = inversion.Mass(
        1.03 * truth["einstein_radius"], min(truth["axis_ratio"] + 0.05, 0.99), truth["angle"] - 8.0, (0.0, 0.0)
    )
    settings = prescan.PrescanSettings.from_config(default_config["modelling"]["prescan"])
    search = prescan.CentreSearch.from_config(default_config["model_lenses"]["stamp_centre"])
    bounds = (annulus.inner_radius, annulus.outer_radius)
    sigmas = (0.04 * truth["einstein_radius"], 0.08, 12.0)
    found = prescan.scan(masked, start, sigmas, bounds, (0.25, 0.999), settings, centre_search=search)
    outer = modelling.uniform_priors(
        (0.0, 0.0), bounds, {**default_config["modelling"]["priors"], "centre_half_width": 0.5}
    )
    window = settings.narrowed(found, outer, centre_half_width=search.window)
    assert window.centre_y.low <= truth["lens_centre_y"] <= window.centre_y.high
    assert window.centre_x.low <= truth["lens_centre_x"] <= window.centre_x.high
