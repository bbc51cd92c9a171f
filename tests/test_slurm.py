"""The cluster profile on a real SLURM: jobs go through sbatch and give the local run's outputs.

Starts munged, slurmctld and slurmd (`slurm_cluster`), runs part of config/test.yaml
with `--workflow-profile profiles/slurm` — simulations, masks, the calibration fits
and a GPU-rule family (BNN training, run here without a GPU) — and compares every
HDF5 output with the same files of the local run. Skipped, with the reason, when
the daemons cannot start; `pytest -m "not slurm"` leaves it out.
"""

import re

import h5py
import numpy as np
import pytest
import slurm_cluster
import yaml
from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.slurm

TARGETS = ("calibrate_relations", "results/bnn/sie/chosen.h5")


def small_node_overrides(root):
    """Resources that fit a 2-core test node: the profile's per-rule memory, cores and GPUs scaled down."""
    profile = yaml.safe_load((root / "profiles/slurm/config.yaml").read_text())
    rules = sorted(profile["set-resources"])
    return [
        "--default-resources",
        "mem_mb=1000",
        "runtime=30",
        "cpus_per_task=1",
        "--set-resources",
        *[
            f"{rule}:{key}={value}"
            for rule in rules
            for key, value in (("mem_mb", 1000), ("cpus_per_task", 1), ("gpu", 0))
        ],
        "--set-threads",
        *[f"{rule}=1" for rule in profile.get("set-threads", {})],
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        started = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    except slurm_cluster.Unavailable as error:
        print(f"SLURM test skipped: {error}")
        pytest.skip(f"SLURM daemons could not start: {error}")
    yield started
    started.stop()


def test_profile_runs_jobs_through_slurm_with_local_results(root, cluster, finished, tmp_path, monkeypatch):
    workdir = copy_workflow(root, tmp_path / "slurm-run")
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    result = snakemake(
        workdir,
        *TARGETS,
        "--configfile",
        "config/test.yaml",
        "--workflow-profile",
        "profiles/slurm",
        "--slurm-status-command",
        "squeue",  # no accounting storage on this cluster
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--jobs",
        "2",
        *small_node_overrides(root),
    )
    log = result.stdout + result.stderr
    submitted = {int(x) for x in re.findall(r"submitted with SLURM jobid (\d+)", log)}
    outputs = sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*.h5"))
    assert len(outputs) == 12 and "localrule" not in log, log[-3000:]  # every job went to sbatch ...
    assert len(submitted) >= 8  # ... a shard's simulation and masks as one group job
    controller = (cluster.root / "slurmctld.log").read_text()
    for jobid in submitted:  # the controller saw each job end with exit status 0
        assert re.search(rf"_job_complete: JobId={jobid} WEXITSTATUS 0", controller), jobid
    for path in outputs:
        assert_same_hdf5(workdir / path, finished / path)


def assert_same_hdf5(path, reference):
    """Same datasets with the same values (floats to 1e-9 relative: BLAS order may differ); wall times aside."""

    def datasets(name):
        found = {}
        with h5py.File(name) as f:
            f.visititems(lambda key, item: found.__setitem__(key, item[()]) if isinstance(item, h5py.Dataset) else None)
        return found

    mine, theirs = datasets(path), datasets(reference)
    assert mine.keys() == theirs.keys(), path
    for key, value in mine.items():
        if "seconds" in key:
            continue
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            np.testing.assert_allclose(value, theirs[key], rtol=1e-9, atol=0, equal_nan=True, err_msg=f"{path}:{key}")
        else:
            assert np.array_equal(value, theirs[key]), f"{path}:{key}"
