"""evaluation.comparisons: runs read back, means over seeds, the ablation grid and the plan."""

import numpy as np
import pytest
from darklens.evaluation.comparisons import (
    ablation_grid,
    comparison_plan,
    load_runs,
    mean_std,
    model_rows,
)
from darklens.io.class_files import DataError
from test_summary import SPECS, write_run


def test_load_runs_keys_runs_by_model_and_seed(tmp_path):
    path, metrics = write_run(tmp_path, "physics", 4, 2.0, n=9)
    runs = load_runs([path])
    run = runs[("physics", 4)]
    assert run.index.tolist() == list(range(100, 109))
    assert run.labels.tolist() == [0, 1, 2] * 3 and run.probs.shape == (9, 3)
    assert run.metrics["accuracy"] == metrics["accuracy"]
    rows = model_rows(runs, SPECS)
    assert [r["model"] for r in rows] == ["physics"]
    assert rows[0]["accuracy_mean"] == metrics["accuracy"] and np.isnan(rows[0]["accuracy_std"])
    (path.parent / "metrics.json").unlink()
    with pytest.raises(DataError, match="metrics.json: metrics file not found"):
        load_runs([path])


def test_ablation_grid_and_plan_from_specs():
    grid, columns = ablation_grid(SPECS)
    assert columns == ["image", "image + residual"]
    assert grid["plain_cnn"] == {"image": "baseline", "image + residual": "baseline_residual"}
    assert grid["physics_cnn + flips"] == {"image": "physics_image", "image + residual": "physics"}
    assert grid["resnet18 + flips"] == {"image": "resnet18"}
    plan = comparison_plan(SPECS, ("physics", "baseline"))
    assert plan[0] == ("headline", "physics", "baseline")
    pairs = [(a, b) for _, a, b in plan]
    assert len(pairs) == len(set(pairs))
    assert ("baseline_residual", "baseline") in pairs and ("physics", "physics_image") in pairs
    assert ("physics", "baseline_residual") in pairs and ("resnet18", "baseline") in pairs


def test_mean_std_ignores_undefined_values():
    assert mean_std([0.5, None, 0.7]) == (
        pytest.approx(0.6),
        pytest.approx(np.std([0.5, 0.7], ddof=1)),
    )
    mean, std = mean_std([0.5])
    assert mean == 0.5 and np.isnan(std)
    assert all(np.isnan(mean_std([None, None])))
