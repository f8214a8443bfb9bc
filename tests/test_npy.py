"""io.npy: own images in DeepLense's layout ({root}/{class}/*.npy) -> darklens class files ->
workflow."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.io.class_files import DataError, read_image_file
from darklens.io.npy import import_class

REPO = Path(__file__).resolve().parent.parent
SIZE = 16


def object_array(image, mass=1e-23):
    """DeepLense's axion files: an object array [image, axion mass]."""
    array = np.empty(2, dtype=object)
    array[0], array[1] = image, mass
    return array


def write_class_folders(root: Path, n_per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Class folders of .npy files in all three layouts; returns the images in file-name order."""
    rng = np.random.default_rng(seed)
    written = {}
    for c, name in enumerate(CLASS_NAMES):
        folder = root / name
        folder.mkdir(parents=True)
        images = rng.gamma(2.0, 1.0, (n_per_class, SIZE, SIZE)).astype(np.float32)
        images[:, SIZE // 2, :] += 3.0 * c  # something to learn
        for k, image in enumerate(images):
            layout = [image.astype(np.float64), image[None], object_array(image)][k % 3]
            np.save(folder / f"{k:04d}.npy", layout, allow_pickle=True)
        written[name] = images
    return written


def test_import_keeps_images_in_file_order(tmp_path):
    images = write_class_folders(tmp_path / "own", 7)["cdm"]
    n = import_class(tmp_path / "own" / "cdm", "cdm", tmp_path / "cdm.h5", allow_pickle=True)
    assert n == 7
    data = read_image_file(tmp_path / "cdm.h5", expected_class="cdm")
    np.testing.assert_array_equal(data["images"], images)
    assert data["images"].dtype == np.float32
    assert np.isnan(data["params"]["snr"]).all() and len(data["params"]["snr"]) == 7
    with h5py.File(tmp_path / "cdm.h5") as handle:
        names = [s.decode() for s in handle["source_files"][()]]
        assert names == [f"{k:04d}.npy" for k in range(7)]
        assert json.loads(handle.attrs["config"])["import"]["allow_pickle"] is True


def _folder(tmp_path, arrays):
    folder = tmp_path / "cls"
    folder.mkdir()
    for k, array in enumerate(arrays):
        np.save(folder / f"{k}.npy", array, allow_pickle=True)
    return folder


@pytest.mark.parametrize(
    ("arrays", "allow_pickle", "words"),
    [
        ([], False, "no .npy images"),
        ([np.ones((4, 4)), np.ones((5, 5))], False, "the first one is 4x4"),
        ([np.ones((4, 6))], False, "not square"),
        ([np.full((4, 4), np.nan)], False, "NaN or inf"),
        ([np.ones((2, 4, 4))], False, "not one (H, W) image"),
        ([object_array(np.ones((4, 4)))], False, "allow_pickle"),
        ([object_array("text")], True, "without an image"),
    ],
)
def test_import_rejects_bad_folders_without_output(tmp_path, arrays, allow_pickle, words):
    folder = _folder(tmp_path, arrays)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        import_class(folder, "cdm", tmp_path / "out.h5", allow_pickle)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.workflow
def test_workflow_trains_and_evaluates_on_imported_images(tmp_path):
    write_class_folders(tmp_path / "own", 12)
    overlay = tmp_path / "import.yaml"
    overlay.write_text(
        "import: {root: own, allow_pickle: true}\n"
        "sweep: {enabled: false}\n"
        "training:\n"
        "  seeds: [0]\n"
        "  models: {physics: {architecture: physics_cnn, channels: [image, residual]}}\n"
        "evaluation: {comparison: [physics, physics], attribution_model: physics}\n"
    )
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(REPO / "tests" / "tiny.yaml"),
        str(overlay),
        "--cores",
        "2",
        "results/metrics.csv",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "data" / "shards").exists()  # nothing was simulated
    for name in CLASS_NAMES:
        assert read_image_file(tmp_path / "data" / f"{name}.h5", name)["images"].shape == (
            12,
            SIZE,
            SIZE,
        )
    split = json.loads((tmp_path / "data" / "split.json").read_text())
    assert split["counts"] == dict.fromkeys(CLASS_NAMES, 12)
    metrics = (tmp_path / "results" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 2 and metrics[1].startswith("physics,0,")
