"""The cluster profiles plan the tiny workflow (dry runs), and training jobs ask for what they use.

The real run through profiles/slurm is tests/test_slurm.py (mark `slurm`); Kubernetes cannot run
here, so its profile is checked by a dry run with the object store swapped for a local folder.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent


def dry_run(workdir: Path, *args: str, overlay: str = "") -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "overlay.yaml").write_text(overlay or "sweep: {enabled: false}\n")
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(REPO / "tests" / "tiny.yaml"), str(workdir / "overlay.yaml"),
        "-n", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def training_resources(plan: str, rule: str = "train_model") -> list[dict[str, str]]:
    """The resources line of each job of `rule` (default train_model) of a dry run."""
    found = []
    for block in re.split(r"\n(?=\[|rule |localrule )", plan):
        if block.lstrip().startswith(f"rule {rule}:"):
            line = re.search(r"resources: (.*)", block).group(1)
            found.append(dict(item.split("=", 1) for item in line.split(", ")))
    return found


def training_rules() -> set[str]:
    """train_model and every rule made from it (`use rule train_model as ...`)."""
    text = "\n".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    return {"train_model", *re.findall(r"use rule train_model as (\w+)", text)}


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_profiles_give_every_training_rule_the_training_resources(profile):
    """A rule made from train_model (the sweep's) needs its own set-resources entry."""
    resources = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    resources = resources["set-resources"]
    assert "sweep_train_model" in training_rules()
    for rule in training_rules():
        assert resources.get(rule) == resources["train_model"], rule


def tiny_training_runs() -> int:
    """Models x seeds of tests/tiny.yaml merged over config.yaml (as the dry runs see them)."""
    tiny = yaml.safe_load((REPO / "tests" / "tiny.yaml").read_text())
    default = yaml.safe_load((REPO / "config.yaml").read_text())
    models = {**default["training"]["models"], **tiny["training"].get("models", {})}
    return len(models) * len(tiny["training"]["seeds"])


def test_slurm_profile_plans_training_on_the_gpu_partition(tmp_path):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    plan = dry_run(
        tmp_path,
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        overlay="sweep: {enabled: true}\n",  # tests/tiny.yaml: point 2 trains 2 models
    )
    main, sweep = training_resources(plan), training_resources(plan, "sweep_train_model")
    assert (len(main), len(sweep)) == (tiny_training_runs(), 2)
    for job in main + sweep:
        assert job["slurm_partition"] == "gpu" and job["gpu"] == "1"
        assert job["cpus_per_task"] == "4" and job["runtime"] == "240"
    assert "slurm_partition=cpu" in plan  # every other rule


def test_kubernetes_profile_passes_a_dry_run(tmp_path):
    for plugin in ("snakemake_executor_plugin_kubernetes", "snakemake_storage_plugin_fs"):
        if importlib.util.find_spec(plugin) is None:
            pytest.skip(f"{plugin} is not installed")
    # the profile stores files in S3; a dry run without credentials uses a local folder instead
    store = ["--default-storage-provider", "fs", "--default-storage-prefix", str(tmp_path / "s")]
    plan = dry_run(
        tmp_path / "work", "--workflow-profile", str(REPO / "profiles" / "kubernetes"), *store
    )
    assert re.search(rf"train_model\s+{tiny_training_runs()}\b", plan)
    assert "This was a dry-run" in plan
    assert all(job["gpu"] == "1" for job in training_resources(plan))


def test_training_jobs_hold_a_gpu_only_when_they_use_one(tmp_path):
    """`--resources gpu=N` (profiles/default: 1) then limits how many train on a GPU at once."""
    # tests/tiny.yaml with its sweep: train_model and sweep_train_model jobs
    plans = {
        device: dry_run(
            tmp_path / device, "--cores", "2", overlay=f"training: {{device: {device}}}\n"
        )
        for device in ("cpu", "cuda")
    }
    for rule in training_rules():
        assert {job["gpu"] for job in training_resources(plans["cpu"], rule)} == {"0"}
        assert {job["gpu"] for job in training_resources(plans["cuda"], rule)} == {"1"}
    # memory: 1500 MB plus 1.2 x the float32 training set (here 120 images of 32 x 32 px)
    jobs = training_resources(plans["cpu"]) + training_resources(plans["cpu"], "sweep_train_model")
    sweep_runs = 2  # tiny.yaml's sweep: one new point x sweep.models (2) x seeds [0]
    assert len(jobs) == tiny_training_runs() + sweep_runs
    assert all(1500 <= int(job["mem_mb"]) <= 1502 for job in jobs)


def test_auto_device_holds_a_gpu_where_the_driver_lists_one(monkeypatch, tmp_path):
    import darklens.learning.devices as devices

    monkeypatch.setattr(devices, "NVIDIA_GPUS", tmp_path)
    assert devices.nvidia_gpu_count() == 0
    (tmp_path / "0000:00:1e.0").mkdir()
    assert devices.nvidia_gpu_count() == 1
    monkeypatch.setattr(devices, "NVIDIA_GPUS", tmp_path / "absent")
    assert devices.nvidia_gpu_count() == 0
