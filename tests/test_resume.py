"""SIGKILL the whole workflow during simulation and again during training; the rerun finishes
with results identical to an uninterrupted run, and no partial file is taken as finished."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from darklens import CLASS_NAMES

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
RUN = "results/runs/physics/seed_0"
# one shard per class; 6 to 12 short epochs (batch 4; early stopping with patience 3 from epoch 6)
# of the model with dropout, BatchNorm and flips (image channel only: no residual jobs, the test
# stays short)
OVERLAY = """\
simulation: {images_per_class: 40, images_per_shard: 40}
sweep: {enabled: false}
training:
  seeds: [0]
  max_epochs: 12
  min_epochs: 6
  early_stopping: {patience: 3}
  batch_size: 4
  models: {physics: {architecture: physics_cnn, channels: [image], augment_flips: true}}
evaluation: {comparison: [physics, physics], attribution_model: physics}
"""


def command(workdir: Path, *args: str) -> list[str]:
    workdir.mkdir(exist_ok=True)
    if not (workdir / "config.yaml").exists():  # as a user runs it, from a copy of config.yaml
        shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    overlay = workdir / "overlay.yaml"
    overlay.write_text(OVERLAY)
    return [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(REPO / "tests" / "tiny.yaml"), str(overlay), *args,
    ]  # fmt: skip


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command(workdir, *args), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_when(workdir: Path, ready, timeout: float = 300.0, whole_group: bool = True) -> None:
    """Start the workflow in its own process group; SIGKILL the whole group (or only the
    snakemake process, leaving its jobs running) once `ready()`."""
    target = f"{RUN}/metrics.json"
    process = subprocess.Popen(
        command(workdir, "--cores", "2", target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, "the workflow ended before it could be killed"
            assert time.monotonic() < deadline, "the workflow never reached the kill point"
            time.sleep(0.01)
    finally:
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def test_sigkill_during_simulation_and_training_then_rerun(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run(reference, "--cores", "2", f"{RUN}/metrics.json")

    shards = killed / "data" / "shards"
    kill_when(killed, lambda: any(shards.glob("*/*.h5")))
    assert len(list(shards.glob("*/*.h5"))) < 3  # killed while simulating
    assert not any((killed / "data").glob("*.h5"))

    # the directory lock of the killed run stays (Snakemake cannot tell it is stale): --unlock
    run(killed, "--unlock")
    resume_file = killed / RUN / "resume.pt"
    kill_when(killed, resume_file.is_file)
    assert resume_file.is_file() and not (killed / RUN / "metrics.json").exists()

    run(killed, "--unlock")
    run(killed, "--cores", "8", f"{RUN}/metrics.json")
    log = (killed / "logs" / "train_model" / "physics" / "seed_0.log").read_text()
    assert "resumed from resume.pt after epoch" in log
    assert torch.load(resume_file, weights_only=True)["finished"]  # kept for a lost record

    for name in CLASS_NAMES:
        path = f"data/{name}.h5"
        with h5py.File(reference / path) as a, h5py.File(killed / path) as b:
            assert a["images"][()].tobytes() == b["images"][()].tobytes(), path
            for param in a["params"]:
                np.testing.assert_array_equal(a["params"][param], b["params"][param])
    assert (reference / "data/split.json").read_text() == (killed / "data/split.json").read_text()
    for name in ("predictions.csv", "metrics.json"):
        assert (reference / RUN / name).read_bytes() == (killed / RUN / name).read_bytes(), name
    state = [torch.load(d / RUN / "checkpoint.pt", weights_only=True) for d in (reference, killed)]
    assert all(
        torch.equal(state[0]["model_state"][k], v) for k, v in state[1]["model_state"].items()
    )
    assert json.loads((killed / RUN / "metrics.json").read_text())["n_test"] == 30
    # every file at a final path is complete; leftovers of killed writes are only ".*.part"
    for path in killed.rglob("*.h5"):
        with h5py.File(path):
            pass
    assert all(p.name.startswith(".") for p in killed.rglob("*.part"))


def finished(resume_file: Path) -> bool:
    try:
        return bool(torch.load(resume_file, weights_only=True).get("finished"))
    except FileNotFoundError:
        return False


def test_sigkill_of_snakemake_alone_then_rerun_does_not_train_again(tmp_path):
    """Killing only the snakemake process leaves its training job running: it finishes and
    writes its outputs, which Snakemake never records. The rerun deletes them as incomplete and
    reruns the job, which finds the finished run's resume file and rewrites the same outputs."""
    workdir = tmp_path / "killed"
    resume_file = workdir / RUN / "resume.pt"
    kill_when(workdir, resume_file.is_file, whole_group=False)
    deadline = time.monotonic() + 300
    while not (workdir / RUN / "metrics.json").exists():  # the orphaned job goes on
        assert time.monotonic() < deadline, "the orphaned training job never finished"
        time.sleep(0.1)
    time.sleep(1.0)  # let it exit after its last write
    orphan = {
        name: (workdir / RUN / name).read_bytes() for name in ("predictions.csv", "metrics.json")
    }

    run(workdir, "--unlock")
    run(workdir, "--cores", "2", f"{RUN}/metrics.json")
    log = (workdir / "logs" / "train_model" / "physics" / "seed_0.log").read_text()
    epochs_run = json.loads((workdir / RUN / "metrics.json").read_text())["epochs_run"]
    assert f"resume.pt: this run finished after epoch {epochs_run}; rewriting its outputs" in log
    assert "INFO epoch " not in log.split("rewriting its outputs")[1]  # no epoch trained again
    for name, content in orphan.items():
        assert (workdir / RUN / name).read_bytes() == content, name
