"""learning.dataset: class files and features files stacked into channels and labels."""

import numpy as np
import pytest
from darklens.io.class_files import DataError, write_features_file, write_image_file
from darklens.learning.dataset import class_paths, load_training_set
from test_class_files import fake_shard


def test_load_dataset_stacks_channels_and_labels(tmp_path):
    images, residuals = {}, {}
    for k, name in enumerate(("no_sub", "cdm", "axion")):
        images[name] = tmp_path / f"{name}.h5"
        shard = fake_shard(0, 3)
        shard["images"][:] = k
        write_image_file(images[name], shard, {"class_name": name})
        residuals[name] = tmp_path / f"res_{name}.h5"
        write_features_file(residuals[name], np.full((3, 8, 8), -k, np.float32), {})
    x, y, counts = load_training_set(images, residuals, ["image", "residual"])
    assert x.shape == (9, 2, 8, 8) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.all(x[y == 2, 0] == 2) and np.all(x[y == 2, 1] == -2)
    assert counts == {"no_sub": 3, "cdm": 3, "axion": 3}


def test_load_dataset_checks_class_names_even_without_the_image_channel(tmp_path):
    images = {"no_sub": tmp_path / "no_sub.h5", "cdm": tmp_path / "cdm.h5"}
    residuals = {name: tmp_path / f"res_{name}.h5" for name in images}
    for name in images:
        write_image_file(images[name], fake_shard(0, 3), {"class_name": "no_sub"})
        write_features_file(residuals[name], np.zeros((3, 8, 8), np.float32), {})
    with pytest.raises(DataError, match="expected 'cdm'"):
        load_training_set(images, residuals, ["residual"])


def test_each_plane_is_read_from_whichever_features_file_of_its_class_holds_it(tmp_path):
    """One features file per kind and class (data/features/{kind}/{class}.h5)."""
    images, files = [], []
    for k, name in enumerate(("no_sub", "cdm", "axion")):
        images.append(tmp_path / f"{name}.h5")
        write_image_file(images[-1], fake_shard(0, 3), {"class_name": name})
        for kind, plane, value in (("residual", "residual", k), ("lens_model", "fit_residual", -k)):
            (tmp_path / kind).mkdir(exist_ok=True)
            files.append(tmp_path / kind / f"{name}.h5")
            write_features_file(files[-1], {plane: np.full((3, 8, 8), value, np.float32)}, {})
    image_paths, feature_paths = class_paths(images, files)
    assert feature_paths["cdm"] == [
        tmp_path / "residual" / "cdm.h5",
        tmp_path / "lens_model" / "cdm.h5",
    ]
    x, y, _ = load_training_set(image_paths, feature_paths, ["fit_residual", "residual"])
    assert np.all(x[y == 2, 0] == -2) and np.all(x[y == 2, 1] == 2)
    with pytest.raises(DataError, match="the oracle_residual channel of no_sub is in none of"):
        load_training_set(image_paths, feature_paths, ["oracle_residual"])
    with pytest.raises(DataError, match="a features file of no class given"):
        class_paths(images, [*files, tmp_path / "lens_model" / "other.h5"])
