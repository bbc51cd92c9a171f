"""End-to-end: real Snakemake runs of the pipeline on config/test.yaml."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from hybridlens import io

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(root, target):
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "Snakefile", target)
    for folder in ("workflow", "config", "envs"):
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


@pytest.fixture(scope="module")
def finished(root, tmp_path_factory):
    workdir = copy_workflow(root, tmp_path_factory.mktemp("run"))
    snakemake(workdir, "--configfile", "config/test.yaml")
    return workdir


def test_run_produces_every_artifact(finished):
    sims = sorted((finished / "results/simulate/slacs").glob("shard-*.h5"))
    assert len(sims) == 2
    table = io.read_params(sims)
    assert list(table["index"]) == list(range(6)) and not table["flags"].any()
    for model in ("sie", "power_law"):
        shards = sorted((finished / f"results/simulate/training_{model}").glob("shard-*.h5"))
        assert len(shards) == 2 and len(io.read_params(shards)) == 3
    with h5py.File(finished / "results/mask/slacs/shard-00000.h5") as h5:
        assert h5["mask"].shape == (3, 100, 100) and h5["mask"].dtype == bool
        assert h5.attrs["stage"] == "mask" and h5["params/outer_radius"].attrs["units"] == "arcsec"
        assert (h5["params/inner_radius"][()] < h5["params/outer_radius"][()]).all()
    for stem in ("m21_fig2_reconstructions", "m21_fig3_gallery", "m21_fig4_einstein_radius",
                 "m21_fig7_evidence_slice", "p21_fig1_gallery"):  # fmt: skip
        assert (finished / f"results/figures/{stem}.png").stat().st_size > 10_000
        assert (finished / f"results/figures/{stem}.json").exists()
    for stem in ("m21_fig5_axis_ratio", "m21_fig6_angle"):
        assert (finished / f"results/figures/{stem}.png").exists()


def test_relations_and_training_pairs(finished):
    with h5py.File(finished / "results/calibrate/relations.h5") as h5:
        for name in ("under", "correct", "over"):
            assert {"slope", "intercept", "scatter"} <= set(h5[name])
        assert len(h5["params/label"]) == 6  # 2 lenses x 3 classes
    summary = json.loads((finished / "results/figures/m21_fig4_einstein_radius.json").read_text())
    assert set(summary) >= {"ours", "m21_reference"} and "slope" in summary["ours"]["under"]
    # The tiny test search (150 calls) cannot converge: every fit must say it stopped at the cap.
    fits = io.read_params(sorted((finished / "results/calibrate/fits").glob("stratum-*.h5")))
    # picked by theta_E quantile: one lens from each half of the simulated radii
    radii = io.read_params(sorted((finished / "results/simulate/slacs").glob("shard-*.h5")))["einstein_radius"]
    picked = fits.groupby("lens_index")["truth_einstein_radius"].first()
    assert len(picked) == 2 and picked.min() < radii.median() < picked.max()
    assert (fits["hit_call_cap"] == 1).all() and summary["call_cap_hits"] == len(fits) == 6
    # Two lenses cannot constrain a line: the training set falls back to the class ranges and says so.
    assert not summary["ours"]["under"]["reliable"] and not summary["ours"]["over"]["reliable"]
    ratios = json.loads((finished / "results/figures/m21_trainingset_ratios.json").read_text())
    assert ratios["windows_from_class_range"] == ["under", "over"]
    assert ratios["ratio_to_truth"]["correct"]["n"] == 6
    shards = sorted((finished / "results/trainingset/slacs").glob("shard-*.h5"))
    table = io.read_params(shards)
    assert len(table) == 3 * 6 and list(table["label"][:3]) == [0, 1, 2]
    usable = table[table["flags"] == 0]
    ratio = usable["einstein_radius"] / usable["einstein_radius_true"]
    assert (ratio[usable["label"] == 0] < 0.9 + 1e-9).all() and (ratio[usable["label"] == 2] > 1.1 - 1e-9).all()
    with h5py.File(shards[0]) as h5:
        assert h5["source"].shape == (9, 100, 100) and h5["residual"].shape == (9, 100, 100)


def test_classifier_is_trained_and_evaluated(finished):
    with h5py.File(finished / "results/classifier/model.h5") as h5:
        assert len(h5["params/train_loss"]) == 2 and h5.attrs["n_parameters"] > 1e6
        held_out = set(h5["split_test/lens_index"][()])
        assert held_out and not held_out & set(h5["split_train/lens_index"][()])
    summary = json.loads((finished / "results/figures/m21_fig11_confusion_sersic.json").read_text())
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["n_pairs"] == 3 * len(held_out)
    table = (finished / "results/classifier/m21_table2_sersic.csv").read_text().splitlines()
    assert table[0] == "class,precision,recall,f1,support" and len(table) == 4
    hudf = json.loads((finished / "results/figures/m21_fig12_confusion_hudf.json").read_text())
    assert hudf["n_pairs"] == 3  # one real-morphology lens, U/C/O from its three full-analysis fits


def test_hybrid_loop_records_every_round_and_follows_its_actions(finished):
    summary = json.loads((finished / "results/figures/m21_fig13_hybrid.json").read_text())
    assert not (finished / "output").exists()  # every fit wrote under results/, with the project's autofit config
    assert summary["n_lenses"] == 2 and list(summary["rounds"]) == ["blind", "rerun 1"]
    for path in sorted((finished / "results/hybrid").glob("lens-*.h5")):
        rows = io.read_params([path]).sort_values("round")
        with h5py.File(path) as h5:
            assert h5["source"].shape == (len(rows), 100, 100) and h5["chi_squared_map"].shape[0] == len(rows)
        assert rows["round"].tolist() == list(range(len(rows))) and len(rows) <= 2
        # every round's theta_E prior is the one the previous round's action asked for
        for previous, current in zip(rows.iloc[:-1].itertuples(), rows.iloc[1:].itertuples()):
            if previous.action == 0:  # a move
                assert (current.prior_einstein_radius_low, current.prior_einstein_radius_high) == pytest.approx(
                    (previous.next_low, previous.next_high)
                )
        assert rows["action"].iloc[-1] in (2, 3) or len(rows) == 2  # accepted / flagged, or out of reruns
        # the tiny search (150 calls) cannot converge: the cap is recorded in the row and the flags
        assert (rows["hit_call_cap"] == 1).all() and (rows["flags"].astype(int) & 4).all()
        assert set(rows["truth_class"]) <= {0, 1, 2, 3}
    fitted = summary["classifier_on_fits"]["n_fits"] + summary["classifier_on_fits"]["n_between_classes"]
    assert fitted == summary["call_cap_hits"] == summary["fits_per_lens"]["mean"] * 2


def test_bnn_sweep_selects_a_rate_and_evaluates_the_test_split(finished):
    for model in ("sie", "power_law"):
        sweep = json.loads((finished / f"results/figures/p21_fig4_coverage_{model}.json").read_text())
        assert sweep["chosen_rate"] == sweep["dropout_rates"][sweep["chosen_index"]]
        assert sweep["distance_to_gaussian"][sweep["chosen_index"]] == min(sweep["distance_to_gaussian"])
        with h5py.File(finished / f"results/bnn/{model}/rate-{sweep['chosen_index']}/model.h5") as h5:
            assert len(h5["params/train_loss"]) == 2 and h5.attrs["dropout"] == sweep["chosen_rate"]
        test = json.loads((finished / f"results/figures/p21_fig6_{model}.json").read_text())
        assert test["dropout"] == sweep["chosen_rate"] and test["n_test"] == 1
        names = {"einstein_radius", "axis_ratio", "angle"} | ({"slope"} if model == "power_law" else set())
        assert set(test["parameters"]) == names
        table = io.read_params([finished / f"results/bnn/{model}/test_predictions.h5"])
        assert (table["einstein_radius_sigma"] > 0).all() and (table["angle_mean"].between(0, 180)).all()


def test_real_morphology_pairs_come_from_constrained_fits(finished):
    with h5py.File(finished / "results/sources/hudf_stamps.h5") as h5:
        assert h5["stamps"].shape[0] == 20 and np.allclose(h5["stamps"][()].sum(axis=(1, 2)), 1, rtol=1e-4)
    table = io.read_params([finished / "results/complex/pairs/lens-00000.h5"])
    assert list(table["label"]) == [0, 1, 2] and not table["flags"].any()
    assert (table["einstein_radius"] >= table["window_low"] - 1e-9).all()
    assert (table["einstein_radius"] <= table["window_high"] + 1e-9).all()
    assert (finished / "logs/simulate/slacs/shard-00000.log").read_text().count("s/image") == 1


def test_deleted_shard_is_the_only_job_redone(finished):
    (finished / "results/mask/training_sie/shard-00001.h5").unlink()
    counts = planned(snakemake(finished, "-n", "--configfile", "config/test.yaml"))
    assert counts == {"mask": 1, "gallery_training": 1, "all": 1}
    snakemake(finished, "--configfile", "config/test.yaml")
    assert (finished / "results/mask/training_sie/shard-00001.h5").exists()


def test_killed_run_resumes_to_identical_results(root, finished, tmp_path):
    workdir = copy_workflow(root, tmp_path / "killed")
    process = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2", "--configfile", "config/test.yaml"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    first = workdir / "results/simulate/slacs/shard-00000.h5"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    snakemake(workdir, "--unlock")
    snakemake(workdir, "--configfile", "config/test.yaml", "--rerun-incomplete")
    for path in sorted((finished / "results/simulate").rglob("shard-*.h5")):
        resumed = workdir / path.relative_to(finished)
        assert np.array_equal(io.read_array([path], "image"), io.read_array([resumed], "image"), equal_nan=True)


def test_bad_config_stops_the_run_naming_the_key(root, tmp_path):
    workdir = copy_workflow(root, tmp_path / "bad")
    (workdir / "config/bad.yaml").write_text("simulate_slacs:\n  n_images: 0\n")
    result = snakemake(workdir, "-n", "--configfile", "config/bad.yaml", check=False)
    assert result.returncode != 0
    assert "config key simulate_slacs.n_images" in result.stdout + result.stderr


def test_paper_scale_plans_every_shard(root, tmp_path):
    workdir = copy_workflow(root, tmp_path / "paper")
    counts = planned(snakemake(workdir, "-n", "--configfile", "config/paper.yaml"))
    assert counts["simulate_slacs"] == 100 + 5 and counts["simulate_training"] == 400
    assert counts["mask"] == 510 and counts["simulate_hudf"] == 5
    assert counts["calibrate_lens"] == 250 and counts["trainingset"] == 100 and counts["complex_pairs"] == 100
    assert counts["blind_fit"] == 100 and counts["hybrid_lens"] == 100
    assert counts["train_bnn"] == 2 * 5 and counts["select_bnn"] == 2 and counts["evaluate_bnn"] == 2


def test_lint_and_format_are_clean(root):
    lint = snakemake(root, "--lint")
    assert "Congratulations" in lint.stdout + lint.stderr
    fmt = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "snakefmt"), "--check", "Snakefile", "workflow/rules"],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert fmt.returncode == 0, fmt.stderr
