"""Line-of-sight halos through PyAutoLens' LOS sampler."""

import numpy as np
import pytest

from hybridlens.simulation import line_of_sight

SETTINGS = line_of_sight.LOSSettings(
    planes_before_lens=1,
    planes_after_lens=1,
    m_min=1e9,
    m_max=1e11,
    cone_radius_arcsec=4.0,
    c_scatter=0.15,
    truncation_factor=100.0,
)


@pytest.fixture(scope="module")
def coefficients():
    return line_of_sight.plane_coefficients(0.5, 2.0, SETTINGS)


def test_plane_coefficients_describe_cdm_halos(coefficients):
    assert ((coefficients.redshifts > 0) & (coefficients.redshifts < 2.0)).all()
    slopes = coefficients.mass_function[:, 0]
    assert ((slopes > -2.0) & (slopes < -1.8)).all()  # dn/dm ~ m^-1.9 below the knee
    assert (coefficients.concentration[:, 0] < 0).all()  # heavier halos are less concentrated


def test_a_line_of_sight_is_reproducible_and_its_sheets_are_negative(coefficients):
    halos, sheets = line_of_sight.sample(0.5, 2.0, SETTINGS, coefficients, seed=3)
    again, _ = line_of_sight.sample(0.5, 2.0, SETTINGS, coefficients, seed=3)
    assert len(halos) == len(again) > 0
    assert np.allclose([h.mass.centre for h in halos], [h.mass.centre for h in again])
    assert {h.redshift for h in halos} <= set(coefficients.redshifts)
    assert all(sheet.mass_sheet.kappa < 0 for sheet in sheets)


def test_the_config_block_builds_the_settings(default_config):
    settings = line_of_sight.LOSSettings.from_config(default_config["p21_testsets"]["line_of_sight"])
    assert settings.m_min < settings.m_max
