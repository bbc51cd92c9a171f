"""The conda environment, the pip lock and the interpreter the tests run in describe one software stack."""

import re
import sys
from importlib import metadata

import yaml


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
    assert pip == ["-r requirements.lock"]  # the same pins, not a second list that drifts
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
