"""The tiny workflow end to end, partial reruns by dry run, determinism and bad input."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from darklens import CLASS_NAMES

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, configs=()) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` as a user would from a checkout: config.yaml + tests/tiny.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "config.yaml").exists():
        shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(TINY),
        *map(str, configs),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def planned_outputs(workdir: Path, overrides: str) -> dict[str, set[str]]:
    """Dry run with a config overlay; returns {rule: set of outputs it would (re)build}."""
    overlay = workdir / "overlay.yaml"
    overlay.write_text(overrides)
    result = snakemake(workdir, "-n", configs=[overlay])
    assert result.returncode == 0, result.stderr
    plan, rule = {}, None
    for line in (result.stdout + result.stderr).splitlines():
        match = re.match(r"^(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
        elif rule and line.strip().startswith("output:"):
            outputs = line.split("output:", 1)[1].split(",")
            plan.setdefault(rule, set()).update(o.strip() for o in outputs)
    plan.pop("all", None)
    return plan


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_outputs_have_the_promised_contents(tiny_run, tiny_config):
    n = tiny_config["simulation"]["images_per_class"]
    size = tiny_config["simulation"]["instrument"]["n_pix"]
    for name in CLASS_NAMES:
        with h5py.File(tiny_run / "data" / f"{name}.h5") as handle:
            assert handle["images"].shape == (n, size, size)
            assert handle["images"].dtype == np.float32
            assert np.all(np.isfinite(handle["images"][()]))
            assert handle.attrs["class_name"] == name
            assert (
                json.loads(handle.attrs["config"])["class_settings"]
                == (tiny_config["simulation"]["classes"][name])
            )
            assert handle.attrs["seed"] == tiny_config["seed"]
            assert "theta_E" in json.loads(handle.attrs["units"])
            for key in ("theta_E", "gamma1", "snr", "substructure_chi", "n_subhalos"):
                assert handle["params"][key].shape == (n,)
            if name == "axion":
                m_a = handle["params"]["axion_mass_ev"][()]
                assert np.all((m_a >= 1e-24) & (m_a <= 1e-22))
        with h5py.File(tiny_run / "data" / "features" / f"{name}.h5") as handle:
            assert handle["residual"].shape == (n, size, size)
    split = json.loads((tiny_run / "data" / "split.json").read_text())
    assert sum(len(split[k]) for k in ("train", "val", "test")) == 3 * n

    metrics = (tiny_run / "results" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    for column in (
        "model",
        "seed",
        "accuracy",
        "auc_macro_ovr",
        "recall_cdm",
        "cdm_to_axion",
        "axion_to_cdm",
    ):
        assert column in header
    models = tiny_config["training"]["models"]
    seeds = tiny_config["training"]["seeds"]
    assert len(metrics) == 1 + len(models) * len(seeds)
    for line in metrics[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        assert row["model"] in models
        assert 0.0 <= float(row["accuracy"]) <= 1.0
        assert 0.0 <= float(row["auc_macro_ovr"]) <= 1.0

    for model in models:
        for seed in seeds:
            run = tiny_run / "results" / "runs" / model / f"seed_{seed}"
            predictions = np.genfromtxt(run / "predictions.csv", delimiter=",", names=True)
            probs = np.stack([predictions[f"prob_{c}"] for c in CLASS_NAMES], axis=1)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
            assert sorted(predictions["index"].astype(int)) == split["test"]
            # global index = class offset + index within the class, classes in CLASS_NAMES order
            np.testing.assert_array_equal(predictions["label"], predictions["index"] // n)
            history = (run / "history.csv").read_text().splitlines()
            assert len(history) == 1 + tiny_config["training"]["epochs"]

    pngs = ["training_curves.png", "figures/samples.png"]
    pngs += [f"confusion_matrix_{m}.png" for m in models]
    for png in pngs:
        assert (tiny_run / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for log in (tiny_run / "logs").rglob("*.log"):
        assert log.stat().st_size > 0, log


def test_training_log_has_one_line_per_epoch(tiny_run, tiny_config):
    log = (tiny_run / "logs" / "train_model" / "physics" / "seed_0.log").read_text()
    assert (
        len(re.findall(r"INFO epoch\s+\d+ +train loss", log)) == tiny_config["training"]["epochs"]
    )


def test_nothing_to_do_after_a_full_run(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_epochs_reruns_training_and_what_follows_only(tiny_run):
    plan = planned_outputs(tiny_run, "training:\n  epochs: 3\n")
    assert set(plan) == {"train_model", "collect_metrics", "confusion_matrix", "training_curves"}
    assert len(plan["train_model"]) == 4 * 4  # 2 models x 2 seeds x 4 files


def test_changing_smoothing_reruns_residuals_and_physics_model_only(tiny_run):
    plan = planned_outputs(tiny_run, "features:\n  smoothing_sigma_px: 1.0\n")
    assert "simulate_shard" not in plan and "merge_class" not in plan
    assert "split_dataset" not in plan
    assert len(plan["residual_features"]) == 3
    trained = plan["train_model"]
    assert trained and all("/physics/" in path for path in trained)
    assert "results/confusion_matrix_baseline.png" not in plan.get("confusion_matrix", set())


def test_changing_one_class_reruns_only_its_shards(tiny_run):
    overlay = "simulation:\n  classes:\n    cdm:\n      mass_max_msun: 2.0e+10\n"
    plan = planned_outputs(tiny_run, overlay)
    assert plan["simulate_shard"] == {"data/shards/cdm/0.h5", "data/shards/cdm/1.h5"}
    assert plan["merge_class"] == {"data/cdm.h5"}
    assert plan["residual_features"] == {"data/features/cdm.h5"}
    assert "split_dataset" not in plan
    assert len(plan["train_model"]) == 16


def test_same_arrays_whatever_the_cores(tiny_run, tmp_path):
    targets = [f"data/{name}.h5" for name in CLASS_NAMES]
    result = snakemake(tmp_path, "--cores", "1", *targets[::-1])
    assert result.returncode == 0, result.stderr[-2000:]
    for target in targets:
        with h5py.File(tiny_run / target) as a, h5py.File(tmp_path / target) as b:
            assert a["images"][()].tobytes() == b["images"][()].tobytes()
            for key in a["params"]:
                np.testing.assert_array_equal(a["params"][key][()], b["params"][key][()])


def test_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("training:\n  epochs: -1\n")
    result = snakemake(tmp_path, "--cores", "1", configs=[overlay])
    assert result.returncode != 0
    assert "config error at training.epochs: -1 is less than the minimum of 1" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("damage", ["corrupt", "nan"])
def test_bad_shard_fails_merge_without_output(tiny_run, tmp_path, damage):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    shard = workdir / "data" / "shards" / "cdm" / "1.h5"
    if damage == "corrupt":
        shard.write_bytes(b"\x89HDF garbage" * 10)
    else:
        with h5py.File(shard, "r+") as handle:
            images = handle["images"][()]
            images[3, 5, 5] = np.nan
            handle["images"][...] = images
    result = snakemake(workdir, "--cores", "1", "data/cdm.h5")
    assert result.returncode != 0
    log = (workdir / "logs" / "merge_class" / "cdm.log").read_text().strip().splitlines()
    assert log[-1].startswith("darklens merge: error: ")
    expected = "not a readable HDF5 file" if damage == "corrupt" else "hold NaN or inf"
    assert expected in log[-1] and "1.h5" in log[-1]
    assert not (workdir / "data" / "cdm.h5").exists()
