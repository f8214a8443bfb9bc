"""The tiny workflow on a real (one-node) SLURM cluster, through profiles/slurm.

Run with `python -m pytest -q -m slurm` (the default test run leaves it out). It needs root and
apt-get (it installs and starts slurm-wlm and munge with tests/slurm/start_cluster.sh) and the
snakemake-executor-plugin-slurm package; without them it is skipped. The profile is used as a user
would after editing it: partitions set to the cluster's only one (`debug`), no account, no GPU
(the CI node has none), and, as there is no slurmdbd, job status from squeue with short intervals.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml
from darklens import CLASS_NAMES

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
TARGET = "results/metrics.csv"
OVERLAY = """\
sweep: {enabled: false}
training:
  seeds: [0]
  models:
    baseline: {architecture: plain_cnn, channels: [image], augment_flips: false}
    physics: {architecture: physics_cnn, channels: [image, residual], augment_flips: true}
evaluation: {comparison: [physics, baseline], attribution_model: physics}
"""


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (it installs and starts slurmctld, slurmd, munged)")
    if not shutil.which("sinfo") and not shutil.which("apt-get"):
        pytest.skip("the SLURM test needs SLURM installed or apt-get to install it")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    started = subprocess.run(
        ["bash", str(REPO / "tests" / "slurm" / "start_cluster.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if started.returncode != 0:
        pytest.fail(f"could not start SLURM:\n{started.stdout[-2000:]}\n{started.stderr[-3000:]}")


def ci_profile(folder: Path) -> Path:
    """profiles/slurm with the edits README asks of a user, for this one-node cluster."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "debug"
    del profile["default-resources"]["slurm_account"]
    profile["slurm-no-account"] = True
    training = profile["set-resources"]["train_model"]
    training["slurm_partition"] = "debug"
    del training["gpu"]  # the CI node has no GPU
    training["cpus_per_task"] = 1  # as tests/tiny.yaml's training.threads, for equal results
    profile.update(
        {
            "slurm-status-command": "squeue",  # no slurmdbd here: sacct would hang
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 2,
            "latency-wait": 5,
            "keep-going": False,
            "retries": 0,
        }
    )
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "overlay.yaml").write_text(OVERLAY)
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(REPO / "tests" / "tiny.yaml"), str(workdir / "overlay.yaml"), *args,
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_tiny_workflow_on_slurm_equals_a_local_run(cluster, tmp_path):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    profile = ci_profile(tmp_path / "profile")
    snakemake(on_slurm, "--workflow-profile", str(profile), TARGET)
    snakemake(local, "--cores", "2", TARGET)

    logs = sorted((on_slurm / "logs").rglob("*.log"))
    assert len(logs) >= 16  # 6 shards, 3 merges, 3 features, split, 2 trainings, metrics
    for log in logs:
        assert re.search(r"SLURM job \d+ on ", log.read_text()), f"{log} did not run under SLURM"
    assert not re.search(r"SLURM job", (local / "logs/split_dataset/split.log").read_text())

    for name in CLASS_NAMES:
        for path, key in (
            (f"data/{name}.h5", "images"),
            (f"data/features/residual/{name}.h5", "residual"),
        ):
            with h5py.File(on_slurm / path) as a, h5py.File(local / path) as b:
                assert a[key][()].tobytes() == b[key][()].tobytes(), path
    files = ["data/split.json", TARGET]
    for model in ("baseline", "physics"):
        files += [f"results/runs/{model}/seed_0/{f}" for f in ("predictions.csv", "metrics.json")]
    for path in files:
        assert (on_slurm / path).read_bytes() == (local / path).read_bytes(), path
