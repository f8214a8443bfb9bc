"""The fit_class rule: it writes the fit file and reruns when the fitting config changes."""

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def _snakemake(workdir: Path, *args: str, overlay: str = "") -> subprocess.CompletedProcess:
    configs = [str(REPO / "tests" / "tiny.yaml")]
    if overlay:
        (workdir / "overlay.yaml").write_text(overlay)
        configs.append(str(workdir / "overlay.yaml"))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    command += ["-d", str(workdir), "--configfile", *configs, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_fit_rule_writes_the_fit_and_reruns_on_fitting_changes_only(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = _snakemake(tmp_path, "--cores", "2", "data/fits/no_sub.h5")
    assert result.returncode == 0, result.stderr[-3000:]
    with h5py.File(tmp_path / "data" / "fits" / "no_sub.h5") as handle:
        assert handle["params/theta_E"].shape == (40,)
        assert handle.attrs["class_name"] == "no_sub"
        assert not handle["substructure_chi_refit"][()].any()  # no substructure: 0, no refit
    assert (tmp_path / "logs" / "fit_class" / "no_sub.log").stat().st_size > 0
    assert (tmp_path / "logs" / "benchmark" / "fit_class" / "no_sub.tsv").exists()
    same = _snakemake(tmp_path, "-n", "data/fits/no_sub.h5", overlay="fitting:\n  threads: 2\n")
    assert "Nothing to be done" in same.stdout + same.stderr
    changed = _snakemake(tmp_path, "-n", "data/fits/no_sub.h5", overlay="fitting:\n  n_starts: 3\n")
    text = changed.stdout + changed.stderr
    assert "fit_class" in text and "simulate_shard" not in text and "merge_class" not in text


def test_accuracy_vs_substructure_uses_the_fits_when_fitting_is_enabled(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    figure = "results/figures/accuracy_vs_substructure.png"
    enabled = _snakemake(tmp_path, "-n", "-p", figure)
    text = enabled.stdout + enabled.stderr
    assert enabled.returncode == 0, text[-3000:]
    assert "fit_class" in text and "--fits data/fits/" in text
    # without fits no model may use a lens-model channel: the overlay redefines those that do
    no_fits = (
        "fitting:\n  enabled: false\n"
        "training:\n  models:\n"
        "    physics: {channels: [image, residual]}\n"
        "    lens_planes: {channels: [image]}\n"
    )
    refused = _snakemake(tmp_path, "-n", figure, overlay="fitting:\n  enabled: false\n")
    assert refused.returncode != 0
    message = "needs the smooth-lens fits and fitting.enabled is false"
    assert message in refused.stdout + refused.stderr
    disabled = _snakemake(tmp_path, "-n", "-p", figure, overlay=no_fits)
    text = disabled.stdout + disabled.stderr
    assert disabled.returncode == 0, text[-3000:]
    assert "fit_class" not in text
