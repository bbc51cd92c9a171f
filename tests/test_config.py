import copy

import pytest

from hybridlens import config as hlconfig


def test_default_paper_and_test_configs_are_valid(root):
    for extra in ([], ["paper.yaml"], ["test.yaml"], ["samples.yaml"]):
        cfg = hlconfig.load(root / "config" / "config.yaml", *[root / "config" / name for name in extra])
        assert cfg["simulate_slacs"]["survey"] in cfg["surveys"]


def test_paper_config_has_the_papers_sizes(root):
    cfg = hlconfig.load(root / "config" / "config.yaml", root / "config" / "paper.yaml")
    assert cfg["simulate_training"]["n_images"] == 100_000
    assert cfg["simulate_slacs"]["n_images"] >= 100_000


@pytest.mark.parametrize(
    "path, value, key",
    [
        (("simulate_slacs", "n_images"), -5, "simulate_slacs.n_images"),
        (("surveys", "euclid_vis", "psf_fwhm"), "wide", "surveys.euclid_vis.psf_fwhm"),
        (("simulate_training", "mass_models"), ["sie", "nfw"], "simulate_training.mass_models.1"),
        (("simulate_slacs", "survey"), "jwst", "simulate_slacs.survey"),
        (("simulate_training", "lens", "einstein_radius", "min"), 5.0, "simulate_training.lens.einstein_radius"),
        (("masking", "inner_factor"), 1.5, "masking.inner_factor"),
        (("p21_comparison", "search", "network_layers"), [0, 16], "p21_comparison.search.network_layers.0"),
    ],
)
def test_bad_value_names_its_key(default_config, path, value, key):
    cfg = copy.deepcopy(default_config)
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(hlconfig.ConfigError, match=f"config key {key}"):
        hlconfig.validate(cfg)


def test_unknown_key_is_named(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["simulate_slacs"]["n_imgaes"] = 10
    with pytest.raises(hlconfig.ConfigError, match="simulate_slacs.n_imgaes: unknown key"):
        hlconfig.validate(cfg)


def test_shards_cover_every_image_once(default_config):
    settings = {"n_images": 103, "shard_size": 25}
    n = hlconfig.n_shards(settings)
    indices = [i for shard in range(n) for i in hlconfig.shard_indices(shard, settings)]
    assert n == 5 and indices == list(range(103))


def test_digest_ignores_key_order():
    assert hlconfig.digest({"a": 1, "b": [1, 2]}) == hlconfig.digest({"b": [1, 2], "a": 1})
    assert hlconfig.digest({"a": 1}) != hlconfig.digest({"a": 2})
