"""The sensitivity threshold (darklens.evaluation.sensitivity): the lowest swept value at which the
seed-mean AUC reaches a level, its bootstrap interval over seeds, the table, the summary block and
the figure. Synthetic AUC tables whose crossing is known."""

import csv
import math

import numpy as np
import pytest
from darklens.evaluation.sensitivity import (
    BELOW_GRID,
    CROSSED,
    NOT_REACHED,
    axis_unit,
    crossing,
    crossings,
    sensitivity_thresholds,
    threshold_with_interval,
    write_thresholds,
)
from darklens.io.tables import write_csv
from test_figures import check_figure

MASSES = [1e8, 1e9, 1e10, 1e11]  # one decade apart: log-linear fractions are easy to read off
PARAMETER = "simulation.classes.cdm.mass_max_msun"


def test_log_linear_interpolation_between_the_bracketing_points():
    # 0.75 is halfway from 0.70 (1e9) to 0.80 (1e10): half a decade above 1e9
    assert crossing(MASSES, [0.5, 0.7, 0.8, 0.9], 0.75) == pytest.approx(10**9.5)
    # a quarter of the way from 0.6 to 1.0 in AUC: a quarter decade above 1e8
    assert crossing(MASSES, [0.6, 1.0, 1.0, 1.0], 0.7) == pytest.approx(10**8.25)
    # exactly at a grid point: that point
    assert crossing(MASSES, [0.5, 0.75, 0.9, 0.9], 0.75) == pytest.approx(1e9)
    # linear interpolation in x on request (e.g. when a value is 0)
    assert crossing([0.0, 10.0], [0.5, 1.0], 0.75, log_x=False) == pytest.approx(5.0)


def test_the_lowest_crossing_counts_and_the_grid_ends_are_censored():
    # a dip after the first crossing does not move it
    assert crossing(MASSES, [0.6, 0.8, 0.7, 0.9], 0.75) == pytest.approx(10**8.75)
    assert crossing(MASSES, [0.8, 0.9, 0.9, 0.9], 0.75) == -math.inf  # below the grid
    assert crossing(MASSES, [0.5, 0.6, 0.7, 0.74], 0.75) == math.inf  # not reached
    assert crossing(MASSES, [0.5, np.nan, 0.7, 0.74], 0.75) == math.inf  # NaN never reaches
    rows = crossings(MASSES, [[0.8] * 4, [0.5] * 4, [0.5, 0.7, 0.8, 0.9]], 0.75)
    np.testing.assert_allclose(rows, [-math.inf, math.inf, 10**9.5])


@pytest.mark.parametrize(
    ("x", "match"), [([1e9, 1e8], "increase"), ([0.0, 1.0], "x > 0"), ([1.0], "one column")]
)
def test_crossings_reject_a_bad_grid(x, match):
    with pytest.raises(ValueError, match=match):
        crossings(x, [[0.5, 0.9]], 0.75)


def test_without_seed_spread_the_interval_is_the_estimate():
    seeds = [[0.5, 0.5, 0.5], [0.7, 0.7, 0.7], [0.8, 0.8, 0.8], [0.9, 0.9, 0.9]]
    result = threshold_with_interval(MASSES, seeds, 0.75, 200, 0.95, np.random.default_rng(0))
    assert result["status"] == CROSSED
    assert result["threshold"] == pytest.approx(10**9.5)
    assert result["ci_low"] == pytest.approx(10**9.5) and result["ci_high"] == pytest.approx(
        10**9.5
    )


def test_the_interval_follows_the_seed_spread():
    """Seeds at the bracketing points spread by +-0.05: the replicates' crossings lie between the
    crossings of the lowest and the highest seed curves, and the interval holds the estimate."""
    rng = np.random.default_rng(1)
    seeds = [[0.5, 0.5, 0.5], [0.65, 0.70, 0.75], [0.75, 0.80, 0.85], [0.9, 0.9, 0.9]]
    narrow = threshold_with_interval(MASSES, seeds, 0.75, 2000, 0.95, rng)
    assert narrow["threshold"] == pytest.approx(10**9.5)
    low_curve = crossing(MASSES, [0.5, 0.65, 0.75, 0.9], 0.75)  # the latest possible crossing
    high_curve = crossing(MASSES, [0.5, 0.75, 0.85, 0.9], 0.75)  # the earliest
    assert high_curve <= narrow["ci_low"] < narrow["threshold"] < narrow["ci_high"] <= low_curve
    wider = [[0.5, 0.5, 0.5], [0.55, 0.70, 0.85], [0.65, 0.80, 0.95], [0.9, 0.9, 0.9]]
    wide = threshold_with_interval(MASSES, wider, 0.75, 2000, 0.95, np.random.default_rng(1))
    assert wide["ci_high"] / wide["ci_low"] > narrow["ci_high"] / narrow["ci_low"]


def test_an_interval_end_beyond_the_grid_stays_open():
    """At the lowest point one seed of three reaches the level: some replicates cross below the
    grid, so the interval's low end is 'below the grid'; likewise at the top."""
    seeds = [[0.6, 0.7, 0.8], [0.8, 0.8, 0.8], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]]
    result = threshold_with_interval(MASSES, seeds, 0.75, 2000, 0.95, np.random.default_rng(2))
    assert result["status"] == CROSSED and 1e8 < result["threshold"] < 1e9
    assert result["ci_low_status"] == BELOW_GRID and result["ci_low"] == -math.inf
    top = [[0.5] * 3, [0.6] * 3, [0.7] * 3, [0.7, 0.74, 0.8]]
    result = threshold_with_interval(MASSES, top, 0.75, 2000, 0.95, np.random.default_rng(2))
    assert result["status"] == NOT_REACHED and result["ci_high_status"] == NOT_REACHED
    assert result["ci_low_status"] == CROSSED and 1e10 < result["ci_low"] <= 1e11


def _table(aucs: dict, models=("baseline",), class_name="cdm"):
    """Sensitivity rows (as read from sensitivity.csv): {x: per-seed AUCs}, in the given order."""
    rows = []
    for model in models:
        for x, seeds in aucs.items():
            for seed, auc in enumerate(seeds):
                rows.append(
                    {
                        "parameter": PARAMETER,
                        "class": class_name,
                        "point": f"{x:g}",
                        "value": f"{x!r}" if isinstance(x, float) else str(x),
                        "settings": f"{PARAMETER}={x:g}; simulation.classes.cdm.mass_min_msun=1",
                        "model": model,
                        "seed": str(seed),
                        "auc_macro_ovr": "0.6",
                        "auc_cdm": "" if auc is None else str(auc),
                        "chi_median": str(np.log10(x)),
                        "chi_refit_median": str(np.log10(x) / 2),
                    }
                )
    return rows


def test_thresholds_per_model_from_the_table():
    """Points in any order (the tiny config lists the main point first); the AUC is the swept
    class's; each model gets its own crossing."""
    table = _table({1e10: [0.8, 0.8], 1e8: [0.5, 0.5], 1e9: [0.7, 0.7]}, models=("a",))
    table += _table({1e10: [0.6, 0.6], 1e8: [0.5, 0.5], 1e9: [0.55, 0.55]}, models=("b",))
    rows = sensitivity_thresholds(table, 0.75, 100, 0.9, seed=0)
    a, b = rows
    assert (a["model"], a["metric"], a["unit"]) == ("a", "auc_cdm", "M_sun")
    assert a["status"] == CROSSED and a["threshold"] == pytest.approx(10**9.5)
    assert (a["grid_min"], a["grid_max"], a["n_points"], a["seeds_per_point"]) == (1e8, 1e10, 3, 2)
    assert a["interpolation"] == "log-linear"
    assert a["reading"] == "3.16e+09 M_sun [3.16e+09, 3.16e+09]"
    assert b["status"] == NOT_REACHED
    assert b["reading"].startswith("not reached within the grid (AUC < 0.75 up to 1e+10 M_sun)")


def test_threshold_below_the_grid_and_undefined_x():
    rows = sensitivity_thresholds(_table({1e8: [0.9], 1e9: [0.95]}), 0.75, 50, 0.95, seed=0)
    assert rows[0]["status"] == BELOW_GRID
    assert rows[0]["reading"] == (
        "below the grid (AUC ≥ 0.75 already at 1e+08 M_sun) [< 1e+08, < 1e+08]"
    )
    table = _table({1e8: [0.5], 1e9: [0.9]})
    for row, value in zip(table, ("tnfw", "point_mass"), strict=True):
        row["value"] = value
    (row,) = sensitivity_thresholds(table, 0.75, 50, 0.95, seed=0)
    assert row["status"].startswith("not defined") and "threshold" not in row


def test_threshold_file_summary_block_and_figure(tmp_path):
    table = _table({1e8: [0.45, 0.5, 0.55], 1e9: [0.65, 0.7, 0.75], 1e10: [0.8, 0.85, 0.9]})
    table += _table({1e8: [0.8, 0.85, 0.9], 1e9: [0.9] * 3, 1e10: [0.95] * 3}, models=("physics",))
    write_csv(tmp_path / "sensitivity.csv", table)
    out = tmp_path / "sensitivity_threshold.csv"
    write_thresholds(tmp_path / "sensitivity.csv", out, 0.75, 300, 0.95, seed=3)
    with open(out, newline="") as handle:
        written = {row["model"]: row for row in csv.DictReader(handle)}
    assert written["baseline"]["status"] == CROSSED
    assert 1e9 < float(written["baseline"]["threshold"]) < 1e10
    assert written["physics"]["status"] == BELOW_GRID and written["physics"]["threshold"] == ""

    from darklens.reporting.summary import _sensitivity_blocks, render_markdown

    text = render_markdown(_sensitivity_blocks(list(written.values())))
    assert "lowest simulation.classes.cdm.mass_max_msun (M_sun)" in text
    assert "| physics | below the grid" in text and "95% CI" in text

    from darklens.reporting import figures

    fig = figures.build_sensitivity(tmp_path / "sensitivity.csv", out)
    check_figure(fig)
    sweep_ax, chi_ax = fig.get_axes()
    assert sweep_ax.get_xscale() == "log" and "(M_sun)" in sweep_ax.get_xlabel()
    assert "mass_min_msun" in sweep_ax.get_xlabel()
    assert "substructure_chi_refit" in chi_ax.get_xlabel()
    assert "dimensionless" in chi_ax.get_xlabel()
    lo, hi = sweep_ax.get_ylim()
    assert lo < 0.45 and hi >= 1.0
    figures.sensitivity_figure(tmp_path / "sensitivity.csv", tmp_path / "s.png", out)
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_units_from_the_key_name():
    assert axis_unit("simulation.classes.cdm.mass_max_msun") == "M_sun"
    assert axis_unit("simulation.instrument.psf_fwhm_arcsec") == "arcsec"
    assert axis_unit("simulation.classes.cdm.n_subhalos.mean") == ""


def test_the_curve_uses_the_swept_class_against_no_sub_not_against_the_rest(tmp_path):
    """cdm indistinguishable from no_sub, axion easy: cdm-vs-rest AUC is high by setting axion
    apart, cdm-vs-no_sub stays at chance, and the curve uses the latter."""
    from darklens.evaluation.sensitivity import auc_metric, pairwise_auc
    from darklens.io.tables import write_predictions

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)  # no_sub, cdm, axion
    probs = np.empty((600, 3))
    same = rng.random(600)  # no_sub and cdm: the same scores, whatever the class
    probs[:, 0], probs[:, 1], probs[:, 2] = 0.5 * same, 0.5 * (1 - same), 0.0
    probs[labels == 2] = [0.05, 0.05, 0.9]
    path = tmp_path / "predictions.csv"
    write_predictions(path, np.arange(600), labels, probs, ["no_sub", "cdm", "axion"])
    from darklens.evaluation.metrics import classification_metrics

    one_vs_rest = classification_metrics(labels, probs, ["no_sub", "cdm", "axion"])["auc_cdm"]
    assert one_vs_rest > 0.7
    assert abs(pairwise_auc(path, "cdm", "no_sub") - 0.5) < 0.07
    rows = [{"class": "cdm", "auc_cdm": "0.8", "auc_cdm_vs_no_sub": "0.5"}]
    assert auc_metric(rows) == "auc_cdm_vs_no_sub"
    assert auc_metric([{"class": "cdm", "auc_cdm": "0.8"}]) == "auc_cdm"
