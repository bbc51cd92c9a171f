"""`hybridlens model`: the cutouts it is given, what a dry run says of each, a clear stop without a workflow."""

import subprocess
import sys

import numpy as np
import pytest

from hybridlens import cli
from hybridlens.own_lenses import cutouts


def test_globs_and_paths_become_absolute_paths_each_once(tmp_path, monkeypatch):
    for name in ("a.fits", "b.fits", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert cli.cutout_paths(["*.fits", "a.fits"]) == [str(tmp_path / "a.fits"), str(tmp_path / "b.fits")]


def test_the_plan_reads_each_cutout_as_its_job_would_and_gives_the_reason_for_a_refusal(root, tmp_path, euclid):
    rng = np.random.default_rng(0)
    image = rng.normal(size=tuple(euclid.shape))
    cutouts.write_cutout(tmp_path / "fine.fits", image, euclid.pixel_scale, np.ones_like(image))
    cutouts.write_cutout(tmp_path / "coarse.fits", image, 2 * euclid.pixel_scale, np.ones_like(image))
    (tmp_path / "junk.fits").write_bytes(b"not FITS" * 50)
    own = tmp_path / "own.yaml"
    own.write_text(f"model_lenses:\n  files: ['{tmp_path}/*.fits']\n  noise: {{hdu: NOISE}}\n")
    planned = {name: (reading, reason) for name, reading, reason in cli.plan(root, [own])}
    assert planned["fine"][1] is None and planned["fine"][0].startswith(f"{euclid.shape[0]}x{euclid.shape[1]} pixels")
    assert "pixel scale" in planned["coarse"][1] and "refused" in planned["coarse"][1]
    assert "unreadable FITS" in planned["junk"][1]


def test_without_a_workflow_folder_it_stops_saying_so(tmp_path):
    (tmp_path / "a.fits").write_bytes(b"")
    with pytest.raises(SystemExit, match="no Snakefile"):
        cli.main(["model", str(tmp_path / "a.fits"), "--directory", str(tmp_path)])


def test_the_console_script_is_installed():
    from importlib import metadata

    scripts = {entry.name: entry.value for entry in metadata.entry_points(group="console_scripts")}
    assert scripts.get("hybridlens") == "hybridlens.cli:main"
    shown = subprocess.run([sys.executable, "-m", "hybridlens.cli", "model", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--dry-run" in shown.stdout
