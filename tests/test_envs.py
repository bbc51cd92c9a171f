"""The conda environment, the pip lock and the interpreter the tests run in describe one software stack."""

import re
import shutil
import subprocess
import sys
from importlib import metadata

import pytest
import yaml

from workflow_helpers import copy_workflow, snakemake


def lock_pins(root):
    pins = {}
    for line in (root / "envs/requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if match:
            pins[metadata_name(match.group(1))] = match.group(2)
    return pins


def metadata_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_conda_env_installs_the_lock_with_the_locked_python(root):
    env = yaml.safe_load((root / "envs/hybridlens.yaml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-r requirements.lock", "-e .."]  # the same pins, not a second list that drifts; the package
    assert sys.version.startswith(python.split("=")[1] + ".")  # the interpreter the lock was resolved for


def test_installed_packages_are_the_locked_versions(root):
    pins = lock_pins(root)
    assert len(pins) > 100 and {"autolens", "torch", "snakemake", "snakemake-executor-plugin-slurm"} <= set(pins)
    installed = {metadata_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {name: (pin, installed.get(name)) for name, pin in pins.items() if installed.get(name) != pin}
    assert drift == {}


def test_every_job_rule_uses_the_shared_conda_env(root):
    for path in sorted((root / "workflow/rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.M)[1:]:
            if re.search(r"^    (script|shell|run):", block, re.M):  # target-only rules run nothing
                assert "    conda:\n        CONDA_ENV\n" in block, block.splitlines()[0]


def test_package_is_importable_from_the_source_tree_installed_in_this_environment(root):
    import hybridlens

    assert hybridlens.__file__.startswith(str(root / "src" / "hybridlens"))


@pytest.mark.skipif(not (shutil.which("conda") or shutil.which("mamba")), reason="no conda/mamba on this machine")
def test_conda_env_that_snakemake_builds_imports_the_package(root, tmp_path):
    """`--sdm conda` builds envs/hybridlens.yaml: the rules' scripts must find hybridlens there too."""
    workdir = copy_workflow(root, tmp_path)
    shutil.copytree(root / "src", workdir / "src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, workdir)
    snakemake(workdir, "--sdm", "conda", "--conda-create-envs-only", "--configfile", "config/test.yaml")
    (env,) = [p for p in (workdir / ".snakemake" / "conda").iterdir() if p.is_dir() and (p / "bin" / "python").exists()]
    out = subprocess.run(
        [env / "bin" / "python", "-c", "import hybridlens, hybridlens.simulation.simulate; print(hybridlens.__file__)"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(workdir / "src" / "hybridlens"))
