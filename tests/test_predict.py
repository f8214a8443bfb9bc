import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from darklens import CLASS_NAMES
from darklens.cli import main
from darklens.features.channels import build_channels
from darklens.learning.checkpoint import load_checkpoint
from darklens.learning.predict import predict_images
from darklens.learning.train import TrainConfig, train

SIZE = 16
SIGMA_PX = 1.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-channel model trained for 2 epochs on 60 random 16x16 images (content is irrelevant)."""
    rng = np.random.default_rng(3)
    images = rng.gamma(2.0, 1.0, (60, SIZE, SIZE)).astype(np.float32)
    labels = np.arange(60) % 3
    split = {"train": np.arange(36), "val": np.arange(36, 48), "test": np.arange(48, 60)}
    x = build_channels(images, ["image", "residual"], SIGMA_PX)
    cfg = TrainConfig(
        architecture="physics_cnn",
        channels=["image", "residual"],
        augment_flips=True,
        max_epochs=2,
        batch_size=8,
        device="cpu",
        smoothing_sigma_px=SIGMA_PX,
    )
    out = tmp_path_factory.mktemp("predict")
    train(x, labels, split, cfg, out, log=lambda _: None)
    return out, images, split


def test_round_trip_reproduces_predictions_csv(trained):
    out, images, split = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    probs = predict_images(ckpt, images[split["test"]], device="auto", batch_size=5)
    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    saved = np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in rows])
    assert probs.shape == (len(split["test"]), len(CLASS_NAMES))
    np.testing.assert_allclose(probs, saved, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_empty_batch(trained):
    out, _, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert predict_images(ckpt, np.zeros((0, SIZE, SIZE))).shape == (0, len(CLASS_NAMES))


def test_wrong_image_size_says_what_is_expected(trained):
    out, images, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"20x20 px but the model expects 16x16"):
        predict_images(ckpt, np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match=r"\(N, 16, 16\)"):
        predict_images(ckpt, images[0])


def test_nan_image_raises(trained):
    out, images, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    bad = images[:3].copy()
    bad[1, 4, 4] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        predict_images(ckpt, bad)


# --- `darklens predict`: every input kind, and one line for every bad input ---


def cli(capsys, *args):
    """Run the darklens CLI in-process; returns (exit code, stdout, stderr lines)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def predict_cli(capsys, checkpoint, source, output, *options):
    """`darklens predict --checkpoint C --input S --output O [options]`, in-process."""
    args = ["--checkpoint", checkpoint, "--input", source, "--output", output, *options]
    return cli(capsys, "predict", *args)


def read_predictions(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows, np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in rows])


def object_array(image, mass=1e-23):
    """DeepLense's axion files: an object array [image, axion mass]."""
    array = np.empty(2, dtype=object)
    array[0], array[1] = image, mass
    return array


def test_predict_cli_reads_every_input_kind(trained, tmp_path, capsys):
    out, images, _ = trained
    expected = predict_images(load_checkpoint(out / "checkpoint.pt"), images[:7], device="cpu")
    h5_path = tmp_path / "new.h5"
    with h5py.File(h5_path, "w") as handle:
        handle["images"] = images[:7]
    np.save(tmp_path / "stack.npy", images[:7].astype(np.float64))
    folder = tmp_path / "folder"
    folder.mkdir()
    for k, image in enumerate(images[:7]):
        array = [image, image[None], object_array(image)][k % 3]
        np.save(folder / f"img_{k:02d}.npy", array, allow_pickle=True)
    for source, extra in [
        (h5_path, []),
        (tmp_path / "stack.npy", []),
        (folder, ["--allow-pickle"]),
    ]:
        output = tmp_path / f"{Path(source).stem}.csv"
        code, _, err = predict_cli(
            capsys, out / "checkpoint.pt", source, output, "--device", "cpu", *extra
        )
        assert code == 0, err
        rows, probs = read_predictions(output)
        assert list(rows[0]) == [
            "index",
            "source",
            *[f"prob_{c}" for c in CLASS_NAMES],
            "pred",
            "pred_name",
        ]
        np.testing.assert_allclose(probs, expected, atol=1e-6)
        assert [int(r["index"]) for r in rows] == list(range(7))
        assert [r["pred_name"] for r in rows] == [CLASS_NAMES[k] for k in probs.argmax(axis=1)]
    assert [r["source"] for r in rows] == [f"img_{k:02d}.npy" for k in range(7)]
    np.save(tmp_path / "one.npy", images[3])
    code, _, _ = predict_cli(
        capsys, out / "checkpoint.pt", tmp_path / "one.npy", tmp_path / "one.csv"
    )
    assert code == 0
    np.testing.assert_allclose(read_predictions(tmp_path / "one.csv")[1], expected[3:4], atol=1e-6)


def _bad_inputs(tmp: Path, images: np.ndarray, checkpoint: Path):
    """name -> (checkpoint, input, expected words) for each bad case."""
    (tmp / "notes.txt").write_text("not an image\n")
    (tmp / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp / "rank4.npy", images[:2, None])
    np.save(tmp / "size.npy", np.zeros((3, 20, 20)))
    nan = images[:4].copy()
    nan[2, 3, 3] = np.nan
    np.save(tmp / "nan.npy", nan)
    (tmp / "inf").mkdir()
    np.save(tmp / "inf" / "a.npy", images[0])
    np.save(tmp / "inf" / "b.npy", np.full((16, 16), np.inf))
    (tmp / "empty").mkdir()
    np.save(tmp / "zero.npy", np.zeros((0, 16, 16)))
    np.save(tmp / "pickled.npy", object_array(images[0]), allow_pickle=True)
    np.save(tmp / "text.npy", np.array([["a"] * 16] * 16))
    with h5py.File(tmp / "two.h5", "w") as handle:
        handle["a"], handle["b"] = images[:2], images[:2]
    (tmp / "corrupt.pt").write_bytes(checkpoint.read_bytes()[:2000])
    other = torch.load(checkpoint, weights_only=True)
    other["architecture"] = "plain_cnn"  # weights of physics_cnn under another architecture
    torch.save(other, tmp / "other_model.pt")
    torch.save({"weight": torch.zeros(3)}, tmp / "state_dict.pt")
    good = tmp / "size.npy"
    return {
        "not an image file": (checkpoint, tmp / "notes.txt", "is not an image file"),
        "corrupt .npy": (checkpoint, tmp / "garbage.npy", "not a readable .npy file"),
        "wrong rank": (checkpoint, tmp / "rank4.npy", "expected (N, 16, 16) images"),
        "wrong size": (checkpoint, tmp / "size.npy", "20x20 px but the model expects 16x16"),
        "NaN pixel": (checkpoint, tmp / "nan.npy", "image 2 (nan.npy) holds NaN or inf"),
        "inf in a folder": (checkpoint, tmp / "inf", "b.npy: holds NaN or inf"),
        "empty folder": (checkpoint, tmp / "empty", "holds no images"),
        "empty stack": (checkpoint, tmp / "zero.npy", "holds no images"),
        "pickle not allowed": (checkpoint, tmp / "pickled.npy", "--allow-pickle"),
        "not numbers": (checkpoint, tmp / "text.npy", "are not pixel values"),
        "missing input": (checkpoint, tmp / "nowhere.npy", "does not exist"),
        "ambiguous HDF5": (checkpoint, tmp / "two.h5", "name one with --dataset"),
        "corrupt checkpoint": (tmp / "corrupt.pt", good, "is not readable"),
        "another model": (tmp / "other_model.pt", good, "do not fit its architecture"),
        "not a checkpoint": (tmp / "state_dict.pt", good, "lacks required key(s)"),
        "missing checkpoint": (tmp / "nope.pt", good, "does not exist"),
    }


BAD_CASES = [
    "not an image file",
    "corrupt .npy",
    "wrong rank",
    "wrong size",
    "NaN pixel",
    "inf in a folder",
    "empty folder",
    "empty stack",
    "pickle not allowed",
    "not numbers",
    "missing input",
    "ambiguous HDF5",
    "corrupt checkpoint",
    "another model",
    "not a checkpoint",
    "missing checkpoint",
]


@pytest.fixture(scope="module")
def bad_inputs(trained, tmp_path_factory):
    out, images, _ = trained
    return _bad_inputs(tmp_path_factory.mktemp("bad"), images, out / "checkpoint.pt")


@pytest.mark.parametrize("case", BAD_CASES)
def test_predict_cli_bad_input_is_one_line_and_no_output(bad_inputs, tmp_path, capsys, case):
    checkpoint, source, words = bad_inputs[case]
    output = tmp_path / "predictions.csv"
    code, out, err = cli(
        capsys, "predict", "--checkpoint", checkpoint, "--input", source, "--output", output
    )
    assert code == 2
    errors = [line for line in err if not re.match(r"^\d{4}-\d\d-\d\dT.* INFO ", line)]
    assert len(errors) == 1 and errors[0].startswith("darklens predict: error: "), err
    assert words in errors[0]
    assert not output.exists() and not list(tmp_path.iterdir())


def test_predict_command_never_shows_a_traceback(bad_inputs, tmp_path):
    checkpoint, source, _ = bad_inputs["wrong size"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "darklens",
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "workflow")},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("darklens predict: error: ")


# --- an output that would overwrite an input or the checkpoint is refused before anything ---


def test_predict_refuses_to_overwrite_its_input_or_checkpoint(trained, tmp_path, capsys):
    out, images, _ = trained
    checkpoint = out / "checkpoint.pt"
    stack = tmp_path / "stack.npy"
    np.save(stack, images[:4])
    (tmp_path / "link.npy").symlink_to(stack)
    h5_path = tmp_path / "new.h5"
    with h5py.File(h5_path, "w") as handle:
        handle["images"] = images[:4]
    folder = tmp_path / "folder"
    folder.mkdir()
    np.save(folder / "a.npy", images[0])
    cases = [
        (stack, stack, "is the input"),
        (stack, tmp_path / "link.npy", "is the input"),  # a symlink to the input
        (tmp_path / "link.npy", tmp_path / "." / "stack.npy", "is the input"),
        (h5_path, h5_path, "is the input"),
        (stack, checkpoint, "is the checkpoint"),
        (folder, folder / "a.npy", "inside the input folder"),
        (folder, folder / "new.npy", "inside the input folder"),
    ]
    for source, output, words in cases:
        before = {p: p.read_bytes() for p in (stack, h5_path, folder / "a.npy", checkpoint)}
        code, _, err = cli(
            capsys, "predict", "--checkpoint", checkpoint, "--input", source, "--output", output
        )
        assert code == 2, (source, output)
        errors = [line for line in err if not re.match(r"^\d{4}-\d\d-\d\dT.* INFO ", line)]
        assert len(errors) == 1 and errors[0].startswith("darklens predict: error: output ")
        assert words in errors[0], errors
        assert {p: p.read_bytes() for p in before} == before
        assert not (folder / "new.npy").exists()
    # a CSV beside the images of an input folder is fine
    code, _, _ = predict_cli(capsys, checkpoint, folder, folder / "predictions.csv")
    assert code == 0 and len(read_predictions(folder / "predictions.csv")[0]) == 1


# --- a folder of class folders (DeepLense's layout): labelled images and metrics ---


def _class_tree(root: Path, images: np.ndarray, classes=CLASS_NAMES, per_class=4):
    """root/{class}/img_k.npy, `per_class` images each (axion as DeepLense's object arrays)."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            image = images[c * per_class + k]
            array = object_array(image) if name == "axion" else image
            np.save(root / name / f"img_{k}.npy", array, allow_pickle=True)
    return root


def test_predict_folder_of_class_folders_writes_truth_and_metrics(trained, tmp_path, caplog):
    from darklens.learning.predict import predict_file

    out, images, _ = trained
    root = _class_tree(tmp_path / "Model_I", images)
    output = tmp_path / "labelled.csv"
    with caplog.at_level("INFO", logger="darklens"):
        summary = predict_file(out / "checkpoint.pt", root, output, device="cpu", allow_pickle=True)
    rows, probs = read_predictions(output)
    assert list(rows[0]) == [
        "index",
        "source",
        *[f"prob_{c}" for c in CLASS_NAMES],
        "pred",
        "pred_name",
        "true_class",
        "label",
    ]
    expected = predict_images(load_checkpoint(out / "checkpoint.pt"), images[:12], device="cpu")
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert [r["source"] for r in rows[:5]] == [f"no_sub/img_{k}.npy" for k in range(4)] + [
        "cdm/img_0.npy"
    ]
    labels = np.repeat(np.arange(3), 4)
    assert [r["true_class"] for r in rows] == [CLASS_NAMES[k] for k in labels]
    assert [int(r["label"]) for r in rows] == labels.tolist()
    assert dict(summary) == {
        c: int((probs.argmax(1) == k).sum()) for k, c in enumerate(CLASS_NAMES)
    }
    assert summary.metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    for k, c in enumerate(CLASS_NAMES):
        recall = np.mean(probs[labels == k].argmax(1) == k)
        assert summary.metrics[f"recall_{c}"] == pytest.approx(recall)
    assert any("12 labelled images, accuracy" in r.getMessage() for r in caplog.records)


def test_predict_cli_class_folders_logs_metrics_and_plain_folder_unchanged(
    trained, tmp_path, capsys, caplog
):
    caplog.set_level("INFO", logger="darklens")
    out, images, _ = trained
    root = _class_tree(tmp_path / "Model_I", images, classes=["cdm", "axion"], per_class=2)
    output = tmp_path / "p.csv"
    code, _, err = predict_cli(capsys, out / "checkpoint.pt", root, output, "--allow-pickle")
    assert code == 0, err
    lines = [r.getMessage() for r in caplog.records]
    assert any("4 labelled images, accuracy" in m and "recall no_sub n/a" in m for m in lines)
    caplog.clear()
    assert [r["true_class"] for r in read_predictions(output)[0]] == ["cdm"] * 2 + ["axion"] * 2
    # a folder holding .npy images is a plain folder even if it has class subfolders too
    np.save(root / "loose.npy", images[0])
    code, _, err = predict_cli(capsys, out / "checkpoint.pt", root, output)
    assert code == 0, err
    rows = read_predictions(output)[0]
    assert len(rows) == 1 and "true_class" not in rows[0]
    assert not any("labelled images" in r.getMessage() for r in caplog.records)


def test_predict_class_folders_refuses_unknown_subfolders(trained, tmp_path, capsys):
    out, images, _ = trained
    root = _class_tree(tmp_path / "Model_I", images, per_class=1)
    (root / "CDM").mkdir()
    np.save(root / "CDM" / "x.npy", images[0])
    output = tmp_path / "p.csv"
    code, _, err = predict_cli(capsys, out / "checkpoint.pt", root, output, "--allow-pickle")
    assert code == 2 and "subfolder(s) CDM hold .npy images but are not classes" in err[-1]
    assert not output.exists()
    # no .npy and no class folder at all: the line says what it looked for
    empty = tmp_path / "empty"
    (empty / "other").mkdir(parents=True)
    code, _, err = predict_cli(capsys, out / "checkpoint.pt", empty, output)
    assert code == 2 and "holds no images (no .npy files, nor class folders no_sub/" in err[-1]


# --- inputs far from the training normalisation get one warning ---


def test_predict_warns_once_on_inputs_far_from_training(trained, tmp_path, capsys, caplog):
    from darklens.learning.predict import predict_file

    out, images, _ = trained
    np.save(tmp_path / "like.npy", images[:20])
    np.save(tmp_path / "counts.npy", images[:20] * 2000.0)  # e.g. counts, trained in counts/s
    with caplog.at_level("INFO", logger="darklens"):
        summary = predict_file(out / "checkpoint.pt", tmp_path / "like.npy", tmp_path / "a.csv")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert summary.far_channels == [] and summary.metrics is None
    caplog.clear()
    with caplog.at_level("INFO", logger="darklens"):
        summary = predict_file(out / "checkpoint.pt", tmp_path / "counts.npy", tmp_path / "b.csv")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "far from the training normalisation" in warnings[0]
    assert "image mean" in warnings[0] and "\n" not in warnings[0]
    assert "image" in summary.far_channels
    # the command shows it as one line on stderr (a fresh process: pytest holds the root logger)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "darklens",
            "predict",
            "--checkpoint",
            str(out / "checkpoint.pt"),
            "--input",
            str(tmp_path / "counts.npy"),
            "--output",
            str(tmp_path / "c.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "workflow")},
    )
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warned) == 1 and "far from the training normalisation" in warned[0]


def test_predict_divides_raw_counts_by_the_exposure_time(trained, tmp_path, capsys, caplog):
    """Counts (DeepLense's unit) with their exposure time predict as the same images in
    counts/s, without the far-from-training warning; counts without a time are refused."""
    out, images, _ = trained
    np.save(tmp_path / "rate.npy", images[:12])
    np.save(tmp_path / "counts.npy", images[:12] * np.float32(2000.0))
    ckpt = out / "checkpoint.pt"
    assert cli(capsys, "predict", "--checkpoint", ckpt, "--input", tmp_path / "rate.npy",
               "--output", tmp_path / "rate.csv")[0] == 0  # fmt: skip
    with caplog.at_level("INFO", logger="darklens"):
        code, _, _ = cli(capsys, "predict", "--checkpoint", ckpt, "--input",
                         tmp_path / "counts.npy", "--output", tmp_path / "counts.csv",
                         "--units", "counts", "--exposure-time-s", 2000)  # fmt: skip
    assert code == 0 and not [r for r in caplog.records if r.levelname == "WARNING"]
    _, rate = read_predictions(tmp_path / "rate.csv")
    _, counts = read_predictions(tmp_path / "counts.csv")
    np.testing.assert_allclose(counts, rate, atol=1e-5)
    code, _, err = cli(capsys, "predict", "--checkpoint", ckpt, "--input",
                       tmp_path / "counts.npy", "--output", tmp_path / "x.csv",
                       "--units", "counts")  # fmt: skip
    assert code == 2 and len(err) == 1 and "exposure time" in err[0]
    assert not (tmp_path / "x.csv").exists()
