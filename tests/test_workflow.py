"""The tiny workflow end to end, partial reruns by dry run, determinism and bad input."""

import csv
import hashlib
import itertools
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
        for kind, plane in (("residual", "residual"), ("lens_model", "fit_residual")):
            with h5py.File(tiny_run / "data" / "features" / kind / f"{name}.h5") as handle:
                assert list(handle) == ([plane] if kind == "residual" else list(handle))
                assert handle[plane].shape == (n, size, size)
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
            run_metrics = json.loads((run / "metrics.json").read_text())
            assert len(history) == 1 + run_metrics["epochs_run"]
            assert run_metrics["epochs_run"] <= tiny_config["training"]["max_epochs"]

    pngs = ["training_curves.png", "figures/samples.png"]
    pngs += [f"confusion_matrix_{m}.png" for m in models]
    for png in pngs:
        assert (tiny_run / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for log in (tiny_run / "logs").rglob("*.log"):
        assert log.stat().st_size > 0, log


def test_training_log_has_one_line_per_epoch(tiny_run, tiny_config):
    log = (tiny_run / "logs" / "train_model" / "physics" / "seed_0.log").read_text()
    assert (
        len(re.findall(r"INFO epoch\s+\d+ +lr \S+ +train loss", log))
        == json.loads((tiny_run / "results/runs/physics/seed_0/metrics.json").read_text())[
            "epochs_run"
        ]
    )
    assert "INFO early stopping after epoch" in log or "WARNING stopped at max_epochs" in log


def test_nothing_to_do_after_a_full_run(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


EVALUATION_RULES = {
    "collect_metrics",
    "confusion_matrix",
    "training_curves",
    "summarize",
    "roc_curves",
    "accuracy_vs_substructure",
    "attribution_maps",
}
SWEEP_RESULT_RULES = {
    "sweep_train_model",
    "sweep_collect",
    "sensitivity_threshold",
    "sensitivity_curves",
}
# tests/tiny.yaml's two mass-scale points: the main masses, and one a decade lower
MAIN_POINT, SWEEP_POINT = "3e+10_1e+09", "3e+09_1e+08"


def test_changing_epochs_reruns_training_and_what_follows_only(tiny_run, tiny_config):
    plan = planned_outputs(tiny_run, "training:\n  max_epochs: 4\n")
    assert set(plan) == {"train_model", *EVALUATION_RULES, *SWEEP_RESULT_RULES}
    n_models = len(tiny_config["training"]["models"])
    assert len(plan["train_model"]) == n_models * 2 * 4  # models x 2 seeds x 4 files
    # the sweep retrains only its own point; its other point is the main run, retrained above
    assert {path.split("/")[2] for path in plan["sweep_train_model"]} == {SWEEP_POINT}


def test_changing_smoothing_reruns_residuals_and_residual_models_only(tiny_run, tiny_config):
    plan = planned_outputs(tiny_run, "features:\n  smoothing_sigma_px: 1.0\n")
    assert "simulate_shard" not in plan and "merge_class" not in plan
    assert "sweep_simulate_shard" not in plan and "sweep_merge_class" not in plan
    assert "split_dataset" not in plan
    # only the residual kind depends on the smoothing; the sweep point reuses the main one's
    assert plan["class_features"] == {f"data/features/residual/{c}.h5" for c in CLASS_NAMES}
    assert "sweep_class_features" not in plan
    models = tiny_config["training"]["models"]
    with_residual = {m for m, spec in models.items() if "residual" in spec["channels"]}
    trained = plan["train_model"] | plan.get("sweep_train_model", set())
    assert {path.split("/runs/")[1].split("/")[0] for path in trained} == with_residual
    assert "results/confusion_matrix_baseline.png" not in plan.get("confusion_matrix", set())
    assert "results/roc_baseline.png" not in plan.get("roc_curves", set())


def test_changing_one_class_reruns_only_its_shards(tiny_run, tiny_config):
    overlay = "simulation:\n  classes:\n    cdm:\n      mass_function_slope: -1.8\n"
    plan = planned_outputs(tiny_run, overlay)
    assert plan["simulate_shard"] == {"data/shards/cdm/0.h5", "data/shards/cdm/1.h5"}
    assert plan["merge_class"] == {"data/cdm.h5"}
    kinds = ("residual", "lens_model", "oracle")  # tiny.yaml's models read all three
    assert plan["class_features"] == {f"data/features/{kind}/cdm.h5" for kind in kinds}
    assert "split_dataset" not in plan
    assert len(plan["train_model"]) == len(tiny_config["training"]["models"]) * 2 * 4
    # the sweep re-simulates its own cdm point only; its no_sub and axion are the main files
    sweep_shards = {f"data/sweep/{SWEEP_POINT}/shards/cdm/{k}.h5" for k in (0, 1)}
    assert plan["sweep_simulate_shard"] == sweep_shards


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
    overlay.write_text("training:\n  max_epochs: -1\n")
    result = snakemake(tmp_path, "--cores", "1", configs=[overlay])
    assert result.returncode != 0
    assert "config error at training.max_epochs: -1 is less than the minimum of 1" in result.stderr
    assert not (tmp_path / "data").exists()


def test_sweep_plans_only_what_its_points_change(tmp_path):
    """tests/tiny.yaml sweeps cdm's mass scale (mass_max_msun and mass_min_msun together) over
    the main masses and a decade lower: only the lower point's cdm images, fits, residuals and
    runs are new; everything else is the main files."""
    plan = planned_outputs(tmp_path, "sweep: {enabled: true}\n")
    assert plan["sweep_merge_class"] == {f"data/sweep/{SWEEP_POINT}/cdm.h5"}
    assert plan["sweep_fit_class"] == {f"data/sweep/{SWEEP_POINT}/fits/cdm.h5"}
    # the sweep trains baseline and physics: only physics's lens_model planes are new
    assert plan["sweep_class_features"] == {f"data/sweep/{SWEEP_POINT}/features/lens_model/cdm.h5"}
    assert "sweep_split_dataset" not in plan
    runs = f"results/sweep/{SWEEP_POINT}/runs/{{}}/seed_0/{{}}"
    files = ("checkpoint.pt", "history.csv", "predictions.csv", "metrics.json")
    assert plan["sweep_train_model"] == {
        runs.format(model, name) for model in ("baseline", "physics") for name in files
    }
    assert plan["sweep_collect"] == {"results/sweep/sensitivity.csv"}
    assert plan["sensitivity_threshold"] == {"results/sweep/sensitivity_threshold.csv"}


def test_controls_are_planned_where_their_inputs_exist(tmp_path):
    """Every control by default; none made from the fits without fits; none on request."""
    files = ("predictions.csv", "metrics.json")
    controls = ("radial_profile", "nuisance", "fit_chi2")
    expected = {f"results/controls/{c}/{f}" for c in controls for f in files}
    plan = planned_outputs(tmp_path, "sweep: {enabled: false}\n")
    assert plan["train_control"] == expected
    (tmp_path / "no_fits").mkdir()
    no_fits = (
        "fitting: {enabled: false}\n"
        "sweep: {enabled: false}\n"
        "training: {models: {physics: null, oracle: null, lens_planes: null}}\n"
        "evaluation: {comparison: [seed_recipe, baseline], attribution_model: baseline, "
        "oracle: null}\n"
    )
    plan = planned_outputs(tmp_path / "no_fits", no_fits)
    assert plan["train_control"] == {f"results/controls/radial_profile/{f}" for f in files}
    (tmp_path / "none").mkdir()
    plan = planned_outputs(tmp_path / "none", "evaluation: {controls: []}\n")
    assert "train_control" not in plan and "summarize" in plan


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


def test_no_image_is_in_two_splits(tiny_run):
    """Hash the bytes of every image; no hash may appear in two splits (nor twice at all)."""
    split = json.loads((tiny_run / "data" / "split.json").read_text())
    images = []
    for name in CLASS_NAMES:  # global index = class offset + index within the class
        with h5py.File(tiny_run / "data" / f"{name}.h5") as handle:
            images += list(handle["images"][()])
    hashes = {
        part: {hashlib.sha256(images[i].tobytes()).hexdigest() for i in split[part]}
        for part in ("train", "val", "test")
    }
    assert len(set().union(*hashes.values())) == len(images)
    for a, b in itertools.combinations(hashes, 2):
        assert not hashes[a] & hashes[b], (a, b)


def test_test_images_choose_nothing(tiny_run, tiny_config):
    """Normalisation comes from the training split, the kept epoch from validation alone."""
    import torch

    split = json.loads((tiny_run / "data" / "split.json").read_text())
    images = []
    for name in CLASS_NAMES:
        with h5py.File(tiny_run / "data" / f"{name}.h5") as handle:
            images.append(handle["images"][()])
    images = np.concatenate(images).astype(np.float64)
    for model, spec in tiny_config["training"]["models"].items():
        if spec["channels"][0] != "image":  # channel 0's normalisation is checked below
            continue
        run = tiny_run / "results" / "runs" / model / "seed_0"
        checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert checkpoint["norm_mean"][0] == pytest.approx(images[split["train"]].mean(), rel=1e-5)
        metrics = json.loads((run / "metrics.json").read_text())
        assert (metrics["n_train"], metrics["n_val"]) == (len(split["train"]), len(split["val"]))
        history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
        best = history[int(np.argmin(history["val_loss"]))]  # the first lowest validation loss
        assert metrics["best_epoch"] == int(best["epoch"])


def test_summary_comparisons_and_figures(tiny_run, tiny_config):
    models = tiny_config["training"]["models"]
    with open(tiny_run / "results" / "summary.csv", newline="") as handle:
        summary = {row["model"]: row for row in csv.DictReader(handle)}
    with open(tiny_run / "results" / "metrics.csv", newline="") as handle:
        runs = list(csv.DictReader(handle))
    assert set(summary) == set(models)
    for model, row in summary.items():
        accuracies = [float(r["accuracy"]) for r in runs if r["model"] == model]
        assert float(row["accuracy_mean"]) == pytest.approx(np.mean(accuracies))
        assert float(row["accuracy_std"]) == pytest.approx(np.std(accuracies, ddof=1))
        for key in ("auc_macro_ovr", "auc_cdm", "cdm_to_axion", "axion_to_cdm"):
            assert f"{key}_mean" in row and f"{key}_std" in row
    with open(tiny_run / "results" / "comparisons.csv", newline="") as handle:
        comparisons = list(csv.DictReader(handle))
    headline = [c for c in comparisons if c["kind"] == "headline"]
    assert {(c["model"], c["reference"], c["metric"]) for c in headline} == {
        ("physics", "baseline", "accuracy"),
        ("physics", "baseline", "auc_macro_ovr"),
    }
    for c in comparisons:
        assert float(c["ci_low"]) <= float(c["effect"]) + 1e-12 <= float(c["ci_high"]) + 2e-12
        assert 0.0 < float(c["p_bootstrap"]) <= 1.0
    kinds = {c["kind"] for c in comparisons}
    assert {"headline", "channel effect", "vs reference"} <= kinds
    text = (tiny_run / "results" / "summary.md").read_text()
    assert "Headline:" in text and "| model |" in text and "## Ablation" in text

    with open(tiny_run / "results" / "sweep" / "sensitivity.csv", newline="") as handle:
        sweep = list(csv.DictReader(handle))
    sweep_config = tiny_config["sweep"]
    assert {(r["point"], r["model"]) for r in sweep} == {
        (p, m) for p in (MAIN_POINT, SWEEP_POINT) for m in sweep_config["models"]
    }
    assert {r["value"] for r in sweep} == {"30000000000.0", "3000000000.0"}  # the x: mass_max
    main_point = [r for r in sweep if r["point"] == MAIN_POINT]
    assert all(r["run"].startswith("results/runs/") for r in main_point)  # reused, not retrained
    assert all(0.0 <= float(r["auc_macro_ovr"]) <= 1.0 for r in sweep)
    with open(tiny_run / "results" / "sweep" / "sensitivity_threshold.csv", newline="") as handle:
        thresholds = list(csv.DictReader(handle))
    assert [r["model"] for r in thresholds] == sweep_config["models"]
    # the curve is cdm against no_sub (the pairwise AUC), not cdm against the rest
    assert all(r["metric"] == "auc_cdm_vs_no_sub" and r["reading"] for r in thresholds)
    assert all(0.0 <= float(r["auc_cdm_vs_no_sub"]) <= 1.0 for r in sweep)
    assert "## Sensitivity: lowest simulation.classes.cdm.mass_max_msun (M_sun)" in text

    pngs = [f"roc_{m}.png" for m in models]
    pngs += ["figures/accuracy_vs_substructure.png", "figures/sensitivity.png"]
    pngs += ["figures/attribution_physics.png"]
    for png in pngs:
        assert (tiny_run / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_report_is_offline_and_complete(tiny_run, tiny_config):
    result = snakemake(tiny_run, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    page = (tiny_run / "results" / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']https?:", page)
    names = ["summary.html", "training_curves.png", "samples.png", "sensitivity.png"]
    names += ["accuracy_vs_substructure.png", "attribution_physics.png"]
    names += [f"gallery_{name}.png" for name in CLASS_NAMES]
    for model in tiny_config["training"]["models"]:
        names += [f"roc_{model}.png", f"confusion_matrix_{model}.png"]
    for name in names:
        assert name in page, name
