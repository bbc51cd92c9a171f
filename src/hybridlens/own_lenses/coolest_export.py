"""A modelled lens in COOLEST, the community's exchange format for lens models (JSON + FITS).

What is written is what the loop fitted: the data it modelled (the lens galaxy's light
removed where it was modelled: the light the final inversion solved for, where the final
round fitted it with the mass and source), its noise map, PSF and annular likelihood mask; the
final round's SIE with its posterior (point estimate = the posterior median, as in the
catalogue; 16th / 84th percentiles); and the pixelised source of that model as
COOLEST's irregular grid, the Delaunay mesh's vertices and values re-inverted at the
median SIE and the fit's best regularisation coefficient. The model has no external
shear, so none is written.

Conventions (checked in the tests against COOLEST's own profiles):
- coordinates: arcsec, x to the right and y up, (0, 0) at the stamp centre, as in
  PyAutoLens; FITS rows run from the bottom (COOLEST's pixel (0, 0) is bottom-left);
- position angles: COOLEST's phi is east of north (counter-clockwise from +y for an
  image shown north up, east left), PyAutoLens' angle is counter-clockwise from +x:
  phi = angle - 90 deg, wrapped to [-90, 90);
- q: the same minor / major axis ratio in both;
- theta_E: PyAutoLens' SIE with Einstein radius t has the convergence of COOLEST's
  (lenstronomy's) SIE with t * 2 sqrt(q) / (1 + q) (measured: the ratio of the two
  convergences at equal theta_E is (1 + q) / (2 sqrt(q)) everywhere); the export
  converts, the catalogue keeps PyAutoLens' value;
- source values: e-/s per arcsec^2 (the inversion's e-/s per image pixel / pixel area).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridlens.reconstruction.inversion import REDSHIFTS, Mass

SOURCE_UNITS = "e-/s per arcsec^2"
FILES = {  # FITS files in the lens's folder beside its JSON
    "data": "data.fits",
    "noise_map": "noise_map.fits",
    "psf": "psf.fits",
    "mask": "likelihood_mask.fits",
    "source": "source.fits",
    "lens_light": "lens_light.fits",
}


def phi_from_angle(angle):
    """COOLEST's position angle (east of north, [-90, 90)) of a PyAutoLens angle (from +x)."""
    return np.asarray(angle, float) % 180.0 - 90.0


def angle_from_phi(phi):
    """PyAutoLens' angle ([0, 180)) of a COOLEST position angle."""
    return (np.asarray(phi, float) + 90.0) % 180.0


def theta_e_factor(axis_ratio):
    """COOLEST's SIE Einstein radius / PyAutoLens' for the same mass: 2 sqrt(q) / (1 + q)."""
    return 2.0 * np.sqrt(axis_ratio) / (1.0 + axis_ratio)


@dataclass
class ModelledLens:
    """What a lens's HDF5 holds that an export needs."""

    name: str
    row: dict  # the catalogue row
    final: dict  # the final fitted round's HDF5 row (None: nothing was fitted)
    image: np.ndarray  # the image modelled (lens light removed where it was modelled); None: refused input
    noise_map: np.ndarray
    psf_kernel: np.ndarray
    mask: np.ndarray
    lens_light: np.ndarray  # None where it was not modelled
    pixel_scale: float
    survey: dict
    light_shapes: np.ndarray = None  # the MGE's Gaussians (lens_light.LensLight.shapes()), where it was modelled

    @classmethod
    def read(cls, path):
        import h5py

        from hybridlens.fitting import guarded, hybrid

        records, attrs = hybrid.read_rounds(path)
        final = guarded.final_round(records)
        with h5py.File(path, "r") as h5:
            group = h5["lens"] if "lens" in h5 else {}
            data = {name: group[name][()] for name in group}
        survey = json.loads(attrs["survey"])
        light = data.get("lens_light")
        image = data.get("image")
        if image is not None and light is not None:
            image = image - light
        return cls(
            name=str(attrs["name"]),
            row=guarded.read_catalogue_row(path),
            final=None if final is None else final.row,
            image=image,
            noise_map=data.get("noise_map"),
            psf_kernel=data.get("psf_kernel"),
            mask=data.get("mask"),
            lens_light=light,
            pixel_scale=float(attrs.get("pixel_scale", survey["pixel_scale"])),  # the cutout's own
            survey=survey,
            light_shapes=data.get("lens_light_shapes"),
        )

    @property
    def joint(self):
        """Whether the final round fitted the lens light with the mass and source."""
        return self.final is not None and self.final.get("joint_light", 0.0) == 1.0

    def median_mass(self):
        return Mass.from_parameters(self.final, "median_")


def source_mesh(lens, inversion_settings):
    """(x, y, value) of the source's Delaunay mesh at the median SIE (value in `SOURCE_UNITS`), and the
    lens light that inversion solved for over the whole stamp (None unless the final round was joint)."""
    from hybridlens.own_lenses.lens_light import light_image, linear_gaussians
    from hybridlens.reconstruction.inversion import MaskedLens

    image, light, source_image = lens.image, None, lens.image
    if lens.joint:  # the image with the light in, the light's amplitudes solved with the source
        image = lens.image + lens.lens_light
        light = linear_gaussians(lens.light_shapes)
    masked = MaskedLens(
        image, lens.noise_map, lens.mask, lens.psf_kernel, lens.pixel_scale, inversion_settings, light, source_image
    )
    mass, coefficient = lens.median_mass(), lens.final["ml_coefficient"]
    fit = masked.fit(mass, coefficient)
    points, values = masked.source_mesh(mass, coefficient, fit)
    solved = None
    if lens.joint:
        intensities = masked.lens_light_intensities(mass, coefficient, fit)
        solved = light_image(lens.light_shapes, intensities, image.shape, lens.psf_kernel, lens.pixel_scale)
    return points[:, 1], points[:, 0], values / lens.pixel_scale**2, solved


def write_fits(path, array):
    """A PyAutoLens-ordered image (row 0 at the top) as a FITS image with row 0 at the bottom."""
    from astropy.io import fits

    from hybridlens.own_lenses.cutouts import to_fits_rows

    fits.PrimaryHDU(to_fits_rows(np.asarray(array, np.float64))).writeto(path, overwrite=True)


def regular_grid(relative, shape, pixel_scale):
    from coolest.template.lazy import PixelatedRegularGrid

    half_y, half_x = shape[0] * pixel_scale / 2.0, shape[1] * pixel_scale / 2.0
    return PixelatedRegularGrid(
        relative,
        field_of_view_x=(-half_x, half_x),
        field_of_view_y=(-half_y, half_y),
        num_pix_x=int(shape[1]),
        num_pix_y=int(shape[0]),
        check_fits_file=False,
    )


def set_parameter(parameter, median, lower, upper):
    from coolest.template.classes.parameter import PointEstimate
    from coolest.template.classes.probabilities import PosteriorStatistics

    parameter.set_point_estimate(PointEstimate(float(median)))
    parameter.set_posterior(PosteriorStatistics(None, float(median), float(lower), float(upper)))


def sie_entity(final):
    """The lens galaxy: an SIE with the final round's posterior medians and 68 % intervals."""
    from coolest.template.lazy import Galaxy, MassModel

    galaxy = Galaxy("lens", REDSHIFTS[0], mass_model=MassModel("SIE"))
    parameters = galaxy.mass_model[0].parameters
    for name, ours in (("q", "axis_ratio"), ("center_x", "centre_x"), ("center_y", "centre_y")):
        set_parameter(parameters[name], final[f"median_{ours}"], final[f"lower_{ours}"], final[f"upper_{ours}"])
    factor = float(theta_e_factor(final["median_axis_ratio"]))  # at the median q: the percentiles are approximate
    theta = [factor * final[f"{which}_einstein_radius"] for which in ("median", "lower", "upper")]
    set_parameter(parameters["theta_E"], *theta)
    phi = float(phi_from_angle(final["median_angle"]))
    shift = phi - final["median_angle"]  # the percentiles move with the median, unwrapped
    set_parameter(parameters["phi"], phi, final["lower_angle"] + shift, final["upper_angle"] + shift)
    return galaxy


def source_entity(relative, x, y):
    from coolest.template.lazy import Galaxy, LightModel

    galaxy = Galaxy("source", REDSHIFTS[1], light_model=LightModel("IrregularGrid"))
    galaxy.light_model[0].parameters["pixels"].set_grid(
        relative,
        field_of_view_x=(float(x.min()), float(x.max())),
        field_of_view_y=(float(y.min()), float(y.max())),
        num_pix=int(len(x)),
        check_fits_file=False,
    )
    return galaxy


def write_source_table(path, x, y, values):
    from astropy.io import fits

    columns = [fits.Column(name=n, format="D", array=np.asarray(a, float)) for n, a in zip("xyz", (x, y, values))]
    fits.BinTableHDU.from_columns(columns).writeto(path, overwrite=True)


def export(lens_path, json_path, folder, inversion_settings):
    """`json_path` (COOLEST template, MAP mode) and its FITS files in `folder`, for the lens in `lens_path`.

    A lens that was not fitted gets a template without a lens model, its data where there are
    any, and the reason in its metadata: every lens of a catalogue has its file.
    """
    from astropy.cosmology import Planck15  # PyAutoLens' default cosmology
    from coolest.template.json import JSONSerializer
    from coolest.template.lazy import (
        CoordinatesOrigin,
        Cosmology,
        DataLikelihoodList,
        ImagingDataLikelihood,
        Instrument,
        LensingEntityList,
        NoiseMap,
        Observation,
        PixelatedPSF,
    )
    from coolest.template.standard import COOLEST

    from hybridlens.fitting import guarded

    lens = ModelledLens.read(lens_path)
    json_path, folder = Path(json_path).resolve(), Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    relative = lambda key: str(Path(folder.name) / FILES[key])  # COOLEST wants paths relative to the JSON
    row = lens.row
    meta = {
        "hybridlens": {
            "name": lens.name,
            "final_action": row["final_action"],
            "reason": row["reason"],
            "verdict": row["verdict"],
            "fits": int(row["fits"]),
            "seconds": float(row["seconds"]),
            "flags": int(row["flags"]),
            "flag_meanings": guarded.describe_flags(int(row["flags"])),
            "point_estimate": "posterior median",
            "theta_E": "COOLEST's convention: PyAutoLens' theta_E x 2 sqrt(q) / (1 + q)",
            "source_units": SOURCE_UNITS,
            "redshifts": "nominal: the SIE's theta_E does not depend on them",
            "lens_light": "modelled (MGE) and subtracted from the data" if lens.lens_light is not None else "none",
            "external_shear": "not in the model",
        }
    }
    entities, observation, likelihoods = [], Observation(), None
    if lens.final is not None:
        x, y, values, solved = source_mesh(lens, inversion_settings)
        if solved is not None:  # the data less the light the final (joint) inversion solved for
            lens.image, lens.lens_light = lens.image + lens.lens_light - solved, solved
            meta["hybridlens"][
                "lens_light"
            ] = "fitted with the mass and source (MGE shapes, amplitudes solved), subtracted"
        write_source_table(folder / FILES["source"], x, y, values)
        entities = [sie_entity(lens.final), source_entity(relative("source"), x, y)]
    if lens.image is not None:
        write_fits(folder / FILES["data"], lens.image)
        write_fits(folder / FILES["noise_map"], lens.noise_map)
        write_fits(folder / FILES["psf"], lens.psf_kernel)
        shape, scale = lens.image.shape, lens.pixel_scale
        observation = Observation(
            pixels=regular_grid(relative("data"), shape, scale),
            noise=NoiseMap(regular_grid(relative("noise_map"), shape, scale)),
            mag_zero_point=lens.survey.get("zero_point"),
        )
        if lens.lens_light is not None:
            write_fits(folder / FILES["lens_light"], lens.lens_light)
            meta["hybridlens"]["lens_light_file"] = relative("lens_light")
        if lens.mask is not None:
            write_fits(folder / FILES["mask"], np.asarray(lens.mask, float))
            likelihoods = DataLikelihoodList(ImagingDataLikelihood(regular_grid(relative("mask"), shape, scale)))
    psf = lens.psf_kernel
    instrument = Instrument(
        lens.pixel_scale,
        name=str(lens.survey.get("name") or ""),
        band=str(lens.survey.get("band") or ""),
        psf=PixelatedPSF(regular_grid(relative("psf"), psf.shape, lens.pixel_scale)) if psf is not None else None,
    )
    template = COOLEST(
        "MAP",
        CoordinatesOrigin(),
        LensingEntityList(*entities),
        observation,
        instrument,
        Cosmology(H0=float(Planck15.H0.value), Om0=float(Planck15.Om0)),
        likelihoods=likelihoods,
        metadata=meta,
    )
    JSONSerializer(str(json_path).removesuffix(".json"), obj=template, check_external_files=False).dump_simple()
    return json_path


def read(json_path, check_files=True):
    """A COOLEST template back as COOLEST's own object (its FITS files checked: a template of a
    refused cutout names none, and is read with `check_files=False`)."""
    from coolest.template.json import JSONSerializer

    path = str(Path(json_path).resolve()).removesuffix(".json")
    serializer = JSONSerializer(path, check_external_files=check_files)
    return serializer.load(skip_jsonpickle=True, verbose=False)
