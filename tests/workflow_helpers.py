"""Real Snakemake runs of a copy of the workflow, shared by the end-to-end tests."""

import shutil
import subprocess
import sys

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(root, target):
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "Snakefile", target)
    for folder in ("workflow", "config", "envs", "profiles"):
        shutil.copytree(root / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def snakemake(workdir, *args, check=True):
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args], cwd=workdir, capture_output=True, text=True, timeout=900
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def planned(result):
    """Job counts from a dry run's 'Job stats' table."""
    text = result.stdout + result.stderr
    table = text[text.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in table:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts
