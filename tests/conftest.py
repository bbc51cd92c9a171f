import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")

from hybridlens import config as hlconfig


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def default_config():
    return hlconfig.load(ROOT / "config" / "config.yaml")


@pytest.fixture(scope="session")
def euclid(default_config):
    from hybridlens.simulation.survey import Survey

    return Survey.from_settings(hlconfig.survey_settings(default_config, "simulate_slacs"))


@pytest.fixture(scope="session")
def finished(root, tmp_path_factory):
    """One local run of config/test.yaml, shared by the end-to-end tests (and compared with SLURM's)."""
    from workflow_helpers import copy_workflow, snakemake

    workdir = copy_workflow(root, tmp_path_factory.mktemp("run"))
    snakemake(workdir, "--configfile", "config/test.yaml")
    return workdir
