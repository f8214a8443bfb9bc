"""io.tables: the CSV writer, the metrics and predictions readers, run directory names."""

import json

import numpy as np
import pytest
from darklens.io.class_files import DataError
from darklens.io.tables import (
    group_by_model,
    read_csv,
    read_metrics,
    read_predictions,
    run_identity,
    union_columns,
    write_csv,
    write_metrics,
    write_predictions,
)

NAMES = ["no_sub", "cdm", "axion"]


def test_csv_round_trip_with_empty_cells(tmp_path):
    path = tmp_path / "out" / "t.csv"
    rows = [{"a": 1, "b": None, "c": float("nan")}, {"a": 2.5, "d": "x,y", "c": float("inf")}]
    write_csv(path, rows)
    assert path.read_bytes() == b'a,b,c,d\r\n1,,,\r\n2.5,,,"x,y"\r\n'
    assert read_csv(path) == [
        {"a": "1", "b": "", "c": "", "d": ""},
        {"a": "2.5", "b": "", "c": "", "d": "x,y"},
    ]
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]  # no part file left


def test_columns_put_the_leading_ones_first():
    rows = [{"b": 1, "a": 2}, {"c": 3, "a": 4}]
    assert union_columns(rows) == ["b", "a", "c"]
    assert union_columns(rows, ["x", "a"]) == ["x", "a", "b", "c"]


def test_explicit_columns_order_the_file(tmp_path):
    write_csv(tmp_path / "t.csv", [{"a": 1, "b": 2}], ["b", "a", "z"])
    assert (tmp_path / "t.csv").read_text().splitlines() == ["b,a,z", "2,1,"]


def test_missing_csv_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.csv: file not found"):
        read_csv(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("results/runs/physics/seed_3/metrics.json", ("physics", 3)),
        ("runs/baseline/seed_12/predictions.csv", ("baseline", 12)),
        ("runs/baseline/seed_0", ("baseline", 0)),
    ],
)
def test_run_identity_of_run_paths(path, identity):
    assert run_identity(path) == identity


@pytest.mark.parametrize(
    "path", ["runs/physics/metrics.json", "runs/physics/seed_x/metrics.json", "seed_/a.csv"]
)
def test_run_identity_refuses_other_paths(path):
    with pytest.raises(DataError, match="expected a path like runs/<model>/seed_<k>"):
        run_identity(path)


def test_group_by_model_keeps_first_seen_order():
    paths = ["r/runs/b/seed_0/p.csv", "r/runs/a/seed_0/p.csv", "r/runs/b/seed_1/p.csv"]
    assert group_by_model(paths) == {"b": [paths[0], paths[2]], "a": [paths[1]]}


def test_metrics_reader(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"accuracy": 0.5, "auc_cdm": None}))
    assert read_metrics(path) == {"accuracy": 0.5, "auc_cdm": None}
    with pytest.raises(DataError, match="metrics file not found"):
        read_metrics(tmp_path / "none.json")
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_metrics(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a metrics object"):
        read_metrics(path)


def test_predictions_round_trip_sorted_by_index(tmp_path):
    rng = np.random.default_rng(0)
    index = np.array([7, 2, 5, 0])
    labels = np.array([1, 0, 2, 2])
    probs = rng.dirichlet(np.ones(3), size=4)
    path = tmp_path / "predictions.csv"
    write_predictions(path, index, labels, probs, NAMES)
    header = path.read_text().splitlines()[0]
    assert header == "index,label,label_name,prob_no_sub,prob_cdm,prob_axion,pred,pred_name"
    got_index, got_labels, got_probs, names = read_predictions(path)
    order = np.argsort(index)
    assert got_index.tolist() == [0, 2, 5, 7] and names == NAMES
    np.testing.assert_array_equal(got_labels, labels[order])
    np.testing.assert_allclose(got_probs, probs[order], rtol=1e-8)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("index,label,prob_a\n", "no predictions"),
        ("index,label,prob_a\n0,x,0.5\n", "not a darklens predictions file"),
        ("index,prob_a\n0,0.5\n", "not a darklens predictions file"),
    ],
)
def test_bad_predictions_files(tmp_path, text, match):
    path = tmp_path / "predictions.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_predictions(path)


def test_metrics_written_are_read_back_and_nan_is_refused(tmp_path):
    metrics = {"accuracy": 0.5, "class_names": ["a", "b"], "auc_a": None}
    write_metrics(tmp_path / "metrics.json", metrics)
    assert read_metrics(tmp_path / "metrics.json") == metrics
    with pytest.raises(ValueError):
        write_metrics(tmp_path / "bad.json", {"accuracy": float("nan")})
    assert not (tmp_path / "bad.json").exists()
