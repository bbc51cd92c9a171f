"""Survey-style cutouts of known lenses: the asked multiplicity, the offset lens, honest noise."""

import numpy as np
import pytest

from hybridlens import config as hlconfig


@pytest.mark.parametrize("kind", ["double", "quad"])
def test_a_cutout_has_the_asked_images_its_lens_off_centre_and_noise_of_unit_scatter(default_config, kind):
    from hybridlens.simulation import simulate, survey_cutouts
    from hybridlens.simulation.survey import Survey

    survey = Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_training"))
    renderer = simulate.Renderer(survey, default_config["simulate_training"]["over_sample"])
    made = survey_cutouts.survey_cutout(np.random.default_rng(3), default_config["simulate_training"], renderer, kind)
    assert made.truth["n_images"] == survey_cutouts.KINDS[kind]
    offset = max(abs(made.truth["lens_centre_y"]), abs(made.truth["lens_centre_x"]))
    assert 0.0 < offset <= 3 * survey.pixel_scale
    scatter = (made.image - made.lensed - made.lens_light) / made.noise_map
    assert abs(scatter.mean()) < 0.05 and 0.95 < scatter.std() < 1.05
    assert made.lens_light.max() > 10 * made.noise_map.min()  # the lens galaxy is in
