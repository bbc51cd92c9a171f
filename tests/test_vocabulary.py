"""Names the package and the workflow share (M21's classes, P21's methods and test sets): one home each."""

from pathlib import Path

import yaml

from hybridlens import config as hlconfig
from hybridlens import vocabulary

ROOT = Path(__file__).resolve().parents[1]


def schema_properties():
    return yaml.safe_load(hlconfig.SCHEMA.read_text())["properties"]


def test_the_classes_are_defined_once():
    from hybridlens.networks import classifier
    from hybridlens.reconstruction import calibration

    assert vocabulary.CLASSES == ("under", "correct", "over")
    assert calibration.CLASSES is vocabulary.CLASSES and classifier.CLASSES is vocabulary.CLASSES


def test_each_test_set_names_the_mass_model_its_truth_and_bnn_use():
    models = {name: testset.fitted_model for name, testset in vocabulary.TESTSETS.items()}
    assert models == {
        "sie_parametric": "sie",
        "sie_real": "sie",
        "sie_real_los": "sie",
        "power_law_real": "power_law",
        "power_law_real_los": "power_law",
        "complex_real": "sie",  # composite lenses: the SIE fitted to their convergence
        "complex_real_los": "sie",
    }
    assert set(models.values()) <= set(
        schema_properties()["simulate_training"]["properties"]["mass_models"]["items"]["enum"]
    )


def test_the_config_accepts_exactly_the_defined_test_sets():
    sets = schema_properties()["p21_testsets"]["properties"]["sets"]["items"]["enum"]
    assert sets == list(vocabulary.TESTSETS)


def test_p21_methods_and_the_papers_tables_agree():
    from hybridlens.analysis import comparison

    assert vocabulary.P21_METHODS == ("blind", "bnn_uniform", "bnn_gaussian")
    assert vocabulary.P21_ESTIMATORS == ("bnn", *vocabulary.P21_METHODS)
    for by_method in comparison.P21_REFERENCE["tables"].values():
        assert tuple(by_method) == vocabulary.P21_ESTIMATORS
    assert set(comparison.P21_REFERENCE["speed_up_over_blind"]) <= set(vocabulary.P21_METHODS)


def test_the_workflow_takes_sets_and_methods_from_the_package():
    rules = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "vocabulary.TESTSETS" in rules and "vocabulary.P21_METHODS" in rules
    for derived in ('startswith("power_law")', '"bnn_uniform"', '"bnn_gaussian"'):
        assert derived not in rules
