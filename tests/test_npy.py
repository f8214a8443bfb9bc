"""io.npy: own images in DeepLense's layout ({root}/{class}/*.npy) -> darklens class files ->
workflow."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from darklens import CLASS_NAMES
from darklens.cli import main
from darklens.config import ConfigError, overlay, validate_config
from darklens.io.class_files import DataError, read_image_file, write_image_file
from darklens.io.npy import import_class, listing_digest

REPO = Path(__file__).resolve().parent.parent
SIZE = 16


def object_array(image, mass=1e-23):
    """DeepLense's axion files: an object array [image, axion mass] ([image] with mass None)."""
    array = np.empty(1 if mass is None else 2, dtype=object)
    array[0] = image
    if mass is not None:
        array[1] = mass
    return array


def write_class_folders(root: Path, n_per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Class folders of .npy files in all three layouts (axion files: all with a mass, as a class's
    files must be); returns the images in file-name order."""
    rng = np.random.default_rng(seed)
    written = {}
    for c, name in enumerate(CLASS_NAMES):
        folder = root / name
        folder.mkdir(parents=True)
        images = rng.gamma(2.0, 1.0, (n_per_class, SIZE, SIZE)).astype(np.float32)
        images[:, SIZE // 2, :] += 3.0 * c  # something to learn
        for k, image in enumerate(images):
            if name == "axion":
                layout = object_array([image.astype(np.float64), image[None], image][k % 3])
            else:
                layout = [image.astype(np.float64), image[None], object_array(image, None)][k % 3]
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
        (
            [object_array(np.ones((4, 4)), None), object_array(np.ones((4, 4)))],
            True,
            "1.npy holds an axion mass but 0.npy does not",
        ),
        ([object_array(np.ones((4, 4)), -1.0)], True, "not a positive number of eV"),
        ([np.array([np.ones((4, 4)), 1.0, 2.0], dtype=object)], True, "expected at most one"),
    ],
)
def test_import_rejects_bad_folders_without_output(tmp_path, arrays, allow_pickle, words):
    folder = _folder(tmp_path, arrays)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        import_class(folder, "cdm", tmp_path / "out.h5", allow_pickle)
    assert not (tmp_path / "out.h5").exists()


EXPOSURE_S = 1778.0


def write_deeplense_folders(root: Path, n: int, seed: int = 1) -> dict:
    """DeepLenseSim's layout: int64 raw counts, one image per file; axion files are object
    arrays [image, axion_mass]. Returns {class: (counts, masses or None)} in file-name order."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in CLASS_NAMES:
        (root / name).mkdir(parents=True)
        counts = rng.poisson(900.0, (n, SIZE, SIZE)).astype(np.int64)
        masses = 10.0 ** rng.uniform(-24, -22, n) if name == "axion" else None
        for k in range(n):
            array = counts[k] if masses is None else object_array(counts[k], masses[k])
            np.save(root / name / f"sim_{k}.npy", array, allow_pickle=True)
        order = np.argsort([f"sim_{k}.npy" for k in range(n)])  # file-name order: sim_10 < sim_2
        written[name] = (counts[order], None if masses is None else masses[order])
    return written


def test_deeplense_counts_import_as_counts_per_s_with_axion_mass(tmp_path):
    written = write_deeplense_folders(tmp_path / "dl", 5)
    for name, (counts, masses) in written.items():
        out = tmp_path / f"{name}.h5"
        n = import_class(tmp_path / "dl" / name, name, out, True, "counts", EXPOSURE_S)
        data = read_image_file(out, expected_class=name)
        assert n == 5
        np.testing.assert_array_equal(data["images"], (counts / EXPOSURE_S).astype(np.float32))
        attrs = data["attrs"]
        assert attrs["source_units"] == "counts" and attrs["exposure_time_s"] == EXPOSURE_S
        assert json.loads(attrs["units"])["images"] == "counts/s per pixel"
        assert json.loads(attrs["config"])["import"]["exposure_time_s"] == EXPOSURE_S
        if masses is None:
            assert "axion_mass_ev" not in data["params"]
        else:
            np.testing.assert_array_equal(data["params"]["axion_mass_ev"], masses)
            assert data["params"]["axion_mass_ev"].dtype == np.float64
            assert json.loads(attrs["units"])["axion_mass_ev"] == "eV"


def test_counts_per_s_keep_values_and_record_no_exposure(tmp_path, caplog):
    written = write_deeplense_folders(tmp_path / "dl", 3)
    with caplog.at_level(logging.WARNING):
        import_class(tmp_path / "dl" / "cdm", "cdm", tmp_path / "cdm.h5", True)
    assert "raw counts?" in caplog.text and "import.units: counts" in caplog.text
    data = read_image_file(tmp_path / "cdm.h5")
    np.testing.assert_array_equal(data["images"], written["cdm"][0].astype(np.float32))
    assert data["attrs"]["source_units"] == "counts/s" and "exposure_time_s" not in data["attrs"]


def _config(extra):
    return validate_config(overlay(yaml.safe_load((REPO / "config.yaml").read_text()), extra))


def test_units_counts_without_exposure_time_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as error:
        _config({"import": {"root": "dl", "units": "counts"}})
    assert str(error.value) == ("config error at import: 'exposure_time_s' is a required property")
    with pytest.raises(ConfigError, match=r"^config error at import\.exposure_time_s: 0 is"):
        _config({"import": {"root": "dl", "units": "counts", "exposure_time_s": 0}})
    with pytest.raises(ConfigError, match=r"^config error at import\.units: 'count' is not"):
        _config({"import": {"units": "count"}})
    assert _config({})["import"]["units"] == "counts_per_s"
    section = _config({"import": {"units": "counts", "exposure_time_s": 1778}})["import"]
    assert section["exposure_time_s"] == 1778


def test_cli_units_counts_without_exposure_time_is_one_line(tmp_path, capsys):
    write_deeplense_folders(tmp_path / "dl", 2)
    argv = ["import", "--class", "cdm", "--folder", str(tmp_path / "dl" / "cdm")]
    argv += ["--output", str(tmp_path / "cdm.h5"), "--units", "counts"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exposure time" in err[0] and "import.exposure_time_s" in err[0]
    assert not (tmp_path / "cdm.h5").exists()
    assert main([*argv, "--exposure-time-s", "100"]) == 0
    assert read_image_file(tmp_path / "cdm.h5")["attrs"]["exposure_time_s"] == 100.0


def test_chunked_import_equals_one_shot_and_has_the_class_file_layout(tmp_path):
    written = write_deeplense_folders(tmp_path / "dl", 37)
    folder = tmp_path / "dl" / "axion"
    import_class(folder, "axion", tmp_path / "one.h5", True, "counts", 10.0)
    import_class(folder, "axion", tmp_path / "chunked.h5", True, "counts", 10.0, chunk_files=5)
    one, chunked = read_image_file(tmp_path / "one.h5"), read_image_file(tmp_path / "chunked.h5")
    np.testing.assert_array_equal(chunked["images"], one["images"])
    np.testing.assert_array_equal(
        chunked["images"], (written["axion"][0] / 10.0).astype(np.float32)
    )
    for key in ("snr", "substructure_chi", "axion_mass_ev"):
        np.testing.assert_array_equal(chunked["params"][key], one["params"][key])
    np.testing.assert_array_equal(chunked["image_index"], np.arange(37))
    # the same /images layout as io.class_files.write_image_file (chunks, gzip, shuffle)
    n = 37
    reference = {
        "images": np.zeros((n, SIZE, SIZE), np.float32),
        "image_index": np.arange(n),
        "params": {},
        "subhalos": {},
        "subhalo_offsets": np.zeros(n + 1, dtype=np.int64),
    }
    write_image_file(tmp_path / "ref.h5", reference, {})
    with h5py.File(tmp_path / "ref.h5") as ref, h5py.File(tmp_path / "chunked.h5") as got:
        for prop in ("dtype", "shape", "chunks", "compression", "compression_opts", "shuffle"):
            assert getattr(got["images"], prop) == getattr(ref["images"], prop), prop
        assert got["subhalos/offset"].shape == (n + 1,)
        assert got.attrs["n_images"] == n


def test_listing_digest_changes_with_an_added_or_rewritten_file(tmp_path):
    write_deeplense_folders(tmp_path / "dl", 3)
    folder = tmp_path / "dl" / "cdm"
    before = listing_digest(folder)
    assert before.startswith("3 files, sha256 ") and listing_digest(folder) == before
    np.save(folder / "sim_1.npy", np.zeros((SIZE, SIZE), np.int64) + 7)
    rewritten = listing_digest(folder)
    np.save(folder / "sim_9.npy", np.zeros((SIZE, SIZE), np.int64))
    added = listing_digest(folder)
    assert len({before, rewritten, added}) == 3 and added.startswith("4 files")


def _snakemake(tmp_path, overlay_path, *args):
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d"]
    command += [str(tmp_path), "--configfile", str(REPO / "tests" / "tiny.yaml")]
    command += [str(overlay_path), "--cores", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.workflow
def test_import_rule_takes_the_folder_and_reruns_on_a_changed_file(tmp_path):
    written = write_deeplense_folders(tmp_path / "dl", 4)
    overlay_path = tmp_path / "import.yaml"
    overlay_path.write_text(
        "import: {root: dl, allow_pickle: true, units: counts, exposure_time_s: 4.0}\n"
        "sweep: {enabled: false}\n"
        # imported images have no fit and no true smooth model: the models needing them go
        "training: {models: {physics: null, oracle: null, lens_planes: null}}\n"
        "evaluation: {comparison: [seed_recipe, baseline], attribution_model: baseline, "
        "oracle: null}\n"
    )
    result = _snakemake(tmp_path, overlay_path, "data/axion.h5")
    assert result.returncode == 0, result.stderr[-3000:]
    data = read_image_file(tmp_path / "data" / "axion.h5", "axion")
    np.testing.assert_array_equal(data["images"], (written["axion"][0] / 4.0).astype(np.float32))
    np.testing.assert_array_equal(data["params"]["axion_mass_ev"], written["axion"][1])
    dry = _snakemake(tmp_path, overlay_path, "-n", "data/axion.h5")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    counts = written["axion"][0][2] + 1
    np.save(tmp_path / "dl" / "axion" / "sim_2.npy", object_array(counts, 2e-23), allow_pickle=True)
    dry = _snakemake(tmp_path, overlay_path, "-n", "data/axion.h5")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0 and "import_class" in out and "sim_2.npy" not in out
    assert "input: dl/axion" in out


@pytest.mark.workflow
def test_workflow_trains_and_evaluates_on_imported_images(tmp_path):
    write_class_folders(tmp_path / "own", 12)
    overlay = tmp_path / "import.yaml"
    overlay.write_text(
        "import: {root: own, allow_pickle: true}\n"
        "sweep: {enabled: false}\n"
        "training:\n"
        "  seeds: [0]\n"
        "  models:\n"
        "    physics: {architecture: physics_cnn, channels: [image, residual]}\n"
        "    baseline: null\n"  # null takes a model of tiny.yaml away
        "    oracle: null\n"
        "    seed_recipe: null\n"
        "    lens_planes: null\n"
        "evaluation: {comparison: [physics, physics], attribution_model: physics, oracle: null}\n"
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
