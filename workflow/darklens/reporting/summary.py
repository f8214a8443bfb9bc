"""The results summary: every model's test metrics over seeds, paired comparisons and the ablation,
as tables and text (the numbers come from `evaluation.comparisons`).

Inputs are the runs of `learning.train` (`runs/{model}/seed_{k}/predictions.csv` with its
`metrics.json` alongside). Outputs:
- `summary.csv`: a row per model, mean and sample standard deviation over seeds of accuracy, macro
  and per-class one-vs-rest ROC AUC, per-class recall, the CDM <-> axion confusion rates, the
  best (validation-selected) epoch and the epochs run, the number of seeds that stopped at
  max_epochs instead of early (`n_max_epochs`), plus the model's architecture, channels, flips
  and size.
- `comparisons.csv`: a row per paired comparison and metric (statistics.paired_bootstrap).
- `summary.md` / `summary.html`: the same as readable tables, with a one-line verdict on the
  headline comparison (`evaluation.comparison`, by default physics vs baseline; judged by the
  larger of the bootstrap's and the seed t-test's p, `statistics.conservative_p`, naming which),
  a warning when seeds stopped at max_epochs, and, when shortcut
  controls are given (`controls/{control}/predictions.csv`, `learning.controls`), a "Shortcut
  controls" block: their AUCs beside the reference CNN's with bootstrap intervals, and a reading
  (near chance at macro AUC <= NEAR_CHANCE_AUC). summary.csv and comparisons.csv hold CNNs only.
"""

from __future__ import annotations

import html
import math

import numpy as np

from darklens.evaluation.comparisons import (
    ablation_grid,
    compare,
    comparison_plan,
    control_intervals,
    load_controls,
    load_runs,
    model_rows,
)
from darklens.evaluation.recovery import oracle_recovery
from darklens.evaluation.statistics import Comparison
from darklens.io.atomic import atomic_path
from darklens.io.tables import read_csv, write_csv
from darklens.learning.controls import CONTROLS

METRIC_LABELS = {"accuracy": "accuracy", "auc_macro_ovr": "macro AUC"}
NEAR_CHANCE_AUC = 0.60  # a control at or below this macro AUC reads "near chance"


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_signed(value, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}"


def fmt_mean_std(row: dict, key: str, digits: int = 3) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if not math.isfinite(mean):
        return "n/a"
    return fmt(mean, digits) if not math.isfinite(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def fmt_p_bootstrap(c: Comparison) -> str:
    """The bootstrap p-value; at its floor 2 / (B + 1) written as an upper bound."""
    floor = 2.0 / (c.n_bootstrap + 1)
    if math.isfinite(c.p_bootstrap) and c.p_bootstrap <= floor * (1 + 1e-9):
        return f"≤ {floor:.2g}"
    return fmt_p(c.p_bootstrap)


def _seeds_text(n: int) -> str:
    return f"{n} seed" + ("s" if n != 1 else "")


def p_text(c: Comparison) -> str:
    """The p-value a comparison is judged by (the larger of bootstrap and seed t-test)."""
    text = fmt_p_bootstrap(c) if c.p_source == "bootstrap" else fmt_p(c.p_value)
    return f"p {text}" if text.startswith("≤") else f"p = {text}"


def p_source_text(c: Comparison) -> str:
    """Where the p of `p_text` comes from: the larger of the two p-values, naming which."""
    boot = fmt_p_bootstrap(c)
    boot = f"p {boot}" if boot.startswith("≤") else f"p = {boot}"
    if c.p_seed_t_test is None:
        return (
            f"the crossed bootstrap's ({boot}; no paired t-test: fewer than 2 seeds or "
            "identical per-seed differences)"
        )
    which = "the t-test's" if c.p_source == "seed t-test" else "the bootstrap's"
    return (
        f"the larger of the crossed bootstrap's ({boot}) and the paired t-test's over "
        f"{_seeds_text(c.n_seeds)} (p = {fmt_p(c.p_seed_t_test)}): {which}"
    )


def fmt_effect(c: Comparison) -> str:
    return f"{c.effect:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"


def verdict(c_auc: Comparison, c_acc: Comparison | None) -> str:
    """One plain sentence on the headline comparison."""
    alpha = 1.0 - c_auc.confidence
    level = f"{100 * c_auc.confidence:.0f}%"
    if c_auc.p_value < alpha and c_auc.effect > 0:
        outcome = f"**{c_auc.model} beats {c_auc.reference}**"
    elif c_auc.p_value < alpha and c_auc.effect < 0:
        outcome = f"**{c_auc.model} is worse than {c_auc.reference}**"
    else:
        outcome = f"**no significant difference between {c_auc.model} and {c_auc.reference}**"
    text = (
        f"Headline: {outcome} in macro AUC at the {100 * alpha:.0f}% level: difference "
        f"{c_auc.effect:+.4f} ({level} CI {c_auc.ci_low:+.4f} to {c_auc.ci_high:+.4f}; "
        f"{p_text(c_auc)}, {p_source_text(c_auc)}; better on {c_auc.seeds_better} of "
        f"{_seeds_text(c_auc.n_seeds)})"
    )
    if c_acc is not None:
        text += (
            f"; accuracy difference {c_acc.effect:+.4f} ({level} CI {c_acc.ci_low:+.4f} to "
            f"{c_acc.ci_high:+.4f}, {p_text(c_acc)})"
        )
    return text + "."


def _headline_blocks(by_pair: dict, headline) -> list[tuple]:
    head_auc = by_pair.get((headline[0], headline[1], "auc_macro_ovr"))
    head_acc = by_pair.get((headline[0], headline[1], "accuracy"))
    if not head_auc:
        return []
    return [("p", verdict(head_auc[1], head_acc[1] if head_acc else None))]


def _recovery_blocks(recovery: dict | None) -> list[tuple]:
    """One paragraph: how much of the oracle's macro-AUC gain the headline model recovers."""
    if recovery is None:
        return []
    r = recovery
    gains = (
        f"{r['model']} gains {fmt_signed(r['gain_model'])} macro AUC over {r['reference']}; the "
        f"upper bound {r['oracle']} (the residual from the TRUE smooth model, which real data "
        f"does not have) gains {fmt_signed(r['gain_oracle'])} "
        f"[{fmt_signed(r['gain_oracle_low'])}, {fmt_signed(r['gain_oracle_high'])}]"
    )
    if np.isnan(r["fraction"]):
        reading = "the oracle's gain is not clearly above zero, so no recovered fraction is defined"
    else:
        reading = (
            f"**{r['model']} recovers {fmt(r['fraction'], 2)} "
            f"[{fmt(r['fraction_low'], 2)}, {fmt(r['fraction_high'], 2)}] of the oracle's gain**"
        )
    seeds = f"{r['n_seeds']} shared seeds, crossed bootstrap over seeds and test images"
    return [("p", f"Oracle recovery: {gains}; {reading} ({seeds}).")]


def _models_blocks(rows, class_names) -> list[tuple]:
    header = ["model", "architecture", "channels", "flips", "parameters", "seeds", "accuracy"]
    header += ["macro AUC", *[f"AUC {c}" for c in class_names], "cdm→axion", "axion→cdm"]
    header += ["best epoch", "epochs run", "stopped at max_epochs"]
    table = [
        [
            row["model"],
            row["architecture"],
            row["channels"].replace("+", " + "),
            "yes" if row["augment_flips"] else "no",
            f"{row['n_parameters']:,}" if row["n_parameters"] else "n/a",
            str(row["n_seeds"]),
            fmt_mean_std(row, "accuracy"),
            fmt_mean_std(row, "auc_macro_ovr"),
            *[fmt_mean_std(row, f"auc_{c}") for c in class_names],
            fmt_mean_std(row, "cdm_to_axion"),
            fmt_mean_std(row, "axion_to_cdm"),
            fmt_mean_std(row, "best_epoch", 1),
            fmt_mean_std(row, "epochs_run", 1),
            f"{row['n_max_epochs']}/{row['n_seeds']}",
        ]
        for row in rows
    ]
    return [
        ("h2", "Models (test set, mean ± standard deviation over seeds)"),
        ("table", header, table),
        *[("p", line) for line in stopping_lines(rows)],
    ]


def stopping_lines(rows) -> list[str]:
    """Where and why training stopped: the rule, and a warning naming the models with seeds that
    reached max_epochs before early stopping (they may not have converged)."""
    lines = [
        "Best epoch: the epoch of lowest validation loss, whose checkpoint is kept; training "
        "stops early once the validation loss has not improved for `training.early_stopping."
        "patience` epochs, else at `training.max_epochs`."
    ]
    hit = [r for r in rows if r.get("n_max_epochs")]
    if hit:
        named = ", ".join(f"{r['model']} ({r['n_max_epochs']} of {r['n_seeds']})" for r in hit)
        lines.append(
            f"**Warning: seeds stopped at max_epochs before early stopping**: {named}; their "
            "validation loss was still improving, so these models may be under-trained "
            "(raise `training.max_epochs`)."
        )
    return lines


def _ablation_cell(row: dict | None, model: str | None, effect=None) -> str:
    if not row:
        return "—"
    text = f"{model}: {fmt_mean_std(row, 'auc_macro_ovr')}; {fmt_mean_std(row, 'accuracy')}"
    if effect:
        text += f"; vs image {fmt_effect(effect[1])}, {p_text(effect[1])}"
    return text


def _ablation_blocks(rows, by_pair: dict, specs: dict) -> list[tuple]:
    grid, columns = ablation_grid(specs)
    if len(columns) < 2 or not any("image" in cells and len(cells) > 1 for cells in grid.values()):
        return []
    by_model = {r["model"]: r for r in rows}
    table = []
    for row_label, cells in grid.items():
        line = [row_label]
        for column in columns:
            model = cells.get(column)
            effect = by_pair.get((model, cells.get("image"), "auc_macro_ovr"))
            line.append(_ablation_cell(by_model.get(model), model, effect))
        table.append(line)
    return [
        ("h2", "Ablation: architecture × input channels (macro AUC; accuracy)"),
        ("table", ["architecture", *columns], table),
        (
            "p",
            "Each cell: the model, its macro AUC and accuracy (mean ± sd over seeds) and, beside "
            "the image column, the channel effect: the paired macro-AUC difference against the "
            "image-only model of the same row [CI] and its p-value (the larger of the bootstrap's "
            "and the seed t-test's). Architecture effects are listed below as "
            "`architecture effect`.",
        ),
    ]


def _comparison_blocks(comparisons) -> list[tuple]:
    header = ["kind", "model", "reference", "metric", "difference [CI]", "p bootstrap"]
    header += ["p t-test (seeds)", "p (larger)", "seeds better"]
    table = [
        [
            kind,
            c.model,
            c.reference,
            METRIC_LABELS[c.metric],
            fmt_effect(c),
            fmt_p_bootstrap(c),
            fmt_p(c.p_seed_t_test),
            p_text(c).removeprefix("p = ").removeprefix("p "),
            f"{c.seeds_better}/{c.n_seeds}",
        ]
        for kind, c in comparisons
    ]
    blocks = [
        ("h2", "Paired comparisons (model − reference, same test images and seeds)"),
        ("table", header, table),
    ]
    if comparisons:
        c = comparisons[0][1]
        blocks.append(
            (
                "p",
                f"Difference: mean over seeds on the full test set; CI: {100 * c.confidence:.0f}% "
                f"percentile interval of a crossed paired bootstrap ({c.n_bootstrap} replicates "
                "resampling test images and seeds); p bootstrap: two-sided, from the same "
                "replicates; p t-test: paired t-test of the per-seed metrics; p (larger): the "
                "larger of the two, by which every comparison is judged (with few seeds the "
                "bootstrap rejects a true null too often; the t-test keeps its level). Only the "
                "headline "
                "comparison is pre-specified; the others are exploratory (no multiplicity "
                "correction).",
            )
        )
    return blocks


def fmt_interval(row: dict, key: str) -> str:
    """`value [low, high]` of a control_intervals row."""
    value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    if value is None or not math.isfinite(value):
        return "n/a"
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return fmt(value)
    signed = key.endswith("difference")
    f = (lambda v: f"{v:+.3f}") if signed else fmt
    return f"{f(value)} [{f(low)}, {f(high)}]"


def control_reading(row: dict) -> str:
    """One line on a control: near chance (macro AUC <= NEAR_CHANCE_AUC) or not; for the fit's
    chi^2, which is meant to detect substructure, how the CNN given the fit compares with it."""
    auc = row["auc_macro_ovr"]
    name, what = row["name"], CONTROLS.get(row["name"], "its features")
    if name == "fit_chi2":
        reading = (
            f"`fit_chi2` (the chi² test of the smooth-lens fit, a physics detector rather than a "
            f"shortcut): macro AUC {fmt_interval(row, 'auc_macro_ovr')}"
        )
        if "model_difference" in row:
            reading += (
                "; the headline model minus this test: "
                f"{fmt_interval(row, 'model_difference')} (above zero: the residual's "
                "morphology adds to its amplitude)"
            )
        return reading + "."
    if math.isfinite(auc) and auc <= NEAR_CHANCE_AUC:
        return (
            f"`{name}`: near chance (macro AUC {fmt_interval(row, 'auc_macro_ovr')} ≤ "
            f"{NEAR_CHANCE_AUC:.2f}): the classes are not told apart by the {what} alone."
        )
    return (
        f"`{name}`: **above chance** (macro AUC {fmt_interval(row, 'auc_macro_ovr')} > "
        f"{NEAR_CHANCE_AUC:.2f}): the {what} alone tells the classes apart, so a CNN can too "
        "without seeing substructure."
    )


def _controls_blocks(control_rows, class_names) -> list[tuple]:
    if not control_rows:
        return []
    cnn = next((r for r in control_rows if r["kind"] == "CNN"), None)
    model = next((r for r in control_rows if r["kind"] == "CNN (model)"), None)
    header = ["classifier", "features", "runs", "macro AUC [CI]"]
    header += [f"AUC {c} [CI]" for c in class_names]
    if cnn:
        header.append(f"{cnn['name']} − control, macro AUC [CI]")
    if model:
        header.append(f"{model['name']} − control, macro AUC [CI]")
    table = []
    for row in control_rows:
        is_cnn = row["kind"] != "control"
        line = [
            row["name"] + (" (CNN)" if is_cnn else ""),
            row.get("channels", "image") if is_cnn else CONTROLS.get(row["name"], row["name"]),
            str(row["n_runs"]) + (" seeds" if is_cnn else ""),
            fmt_interval(row, "auc_macro_ovr"),
            *[fmt_interval(row, f"auc_{c}") for c in class_names],
        ]
        if cnn:
            line.append("—" if is_cnn else fmt_interval(row, "difference"))
        if model:
            line.append("—" if is_cnn else fmt_interval(row, "model_difference"))
        table.append(line)
    return [
        ("h2", "Shortcut controls (test set, logistic regression on simple features)"),
        ("table", header, table),
        *[("p", control_reading(r)) for r in control_rows if r["kind"] == "control"],
        (
            "p",
            "Controls: multinomial logistic regression on standardised features, trained on the "
            "runs' training split, C chosen on validation, scored once on the same test images "
            "(deterministic: one run, no seed). CI: percentile interval of a bootstrap over test "
            "images (the same draws for every row; the CNN's AUC is its mean over seeds, seeds "
            "held fixed). Reported whatever they show; near chance means macro AUC ≤ "
            f"{NEAR_CHANCE_AUC:.2f}.",
        ),
    ]


def _sensitivity_blocks(threshold_rows) -> list[tuple]:
    """The sweep's sensitivity threshold per model (results/sweep/sensitivity_threshold.csv)."""
    if not threshold_rows:
        return []
    first = threshold_rows[0]
    unit = f" ({first['unit']})" if first.get("unit") else ""
    level = f"{100 * float(first['confidence']):.0f}%" if first.get("confidence") else ""
    return [
        (
            "h2",
            f"Sensitivity: lowest {first['parameter']}{unit} at which "
            f"{first['metric']} reaches {first['level']}",
        ),
        (
            "table",
            ["model", f"threshold [{level} CI]"],
            [[r["model"], r["reading"]] for r in threshold_rows],
        ),
        (
            "p",
            f"Seed-mean {first['metric']} over {first['n_points']} sweep points "
            f"({first['seeds_per_point']} seed(s) each), {first['interpolation']} interpolation "
            "between the bracketing points; interval: percentile bootstrap over each point's seeds "
            f"({first['n_bootstrap']} replicates). Figure: results/figures/sensitivity.png.",
        ),
    ]


def build_blocks(
    rows,
    comparisons,
    specs,
    headline,
    class_names,
    description: str,
    control_rows=(),
    threshold_rows=(),
    recovery: dict | None = None,
) -> list[tuple]:
    """The summary as blocks: ("h1"|"h2"|"p", text) and ("table", header, rows)."""
    by_pair = {(c.model, c.reference, c.metric): (kind, c) for kind, c in comparisons}
    return [
        ("h1", "darklens results summary"),
        ("p", description),
        *_headline_blocks(by_pair, headline),
        *_recovery_blocks(recovery),
        *_models_blocks(rows, class_names),
        *_controls_blocks(control_rows, class_names),
        *_ablation_blocks(rows, by_pair, specs),
        *_comparison_blocks(comparisons),
        *_sensitivity_blocks(threshold_rows),
    ]


def render_markdown(blocks) -> str:
    out = []
    for block in blocks:
        if block[0] == "h1":
            out.append(f"# {block[1]}\n")
        elif block[0] == "h2":
            out.append(f"## {block[1]}\n")
        elif block[0] == "p":
            out.append(f"{block[1]}\n")
        else:
            _, header, rows = block
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def render_html(blocks) -> str:
    def inline(text: str) -> str:
        text = html.escape(text)
        parts = text.split("**")
        text = "".join(f"<b>{p}</b>" if k % 2 else p for k, p in enumerate(parts))
        parts = text.split("`")
        return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))

    body = []
    for block in blocks:
        if block[0] in ("h1", "h2"):
            body.append(f"<{block[0]}>{inline(block[1])}</{block[0]}>")
        elif block[0] == "p":
            body.append(f"<p>{inline(block[1])}</p>")
        else:
            _, header, rows = block
            head = "".join(f"<th>{inline(h)}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 6px;font-size:90%;text-align:left}"
        "th{background:#eee}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>darklens summary</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def training_description(max_epochs: int) -> str:
    """The sentence on training in the summary's description ("" when `max_epochs` is 0)."""
    if not max_epochs:
        return ""
    return (
        f"Training: at most {max_epochs} epochs with early stopping on the validation loss; the "
        "checkpoint kept is the epoch of lowest validation loss."
    )


def describe_test_set(runs: dict) -> str:
    """The sentence on the test set and seeds, from any run (all share the test images)."""
    any_run = next(iter(runs.values()))
    per_class = ", ".join(
        f"{int(np.sum(any_run.labels == k))} {name}" for k, name in enumerate(any_run.class_names)
    )
    seeds = sorted({s for (_, s) in runs})
    return (
        f"Test set: {len(any_run.labels)} images ({per_class}), the same for every model and "
        f"seed; seeds {', '.join(map(str, seeds))}. "
    )


def comparison_lines(comparisons) -> list[str]:
    """One log line per comparison: kind, model - reference, metric, effect [CI] and p."""
    lines = []
    for kind, c in comparisons:
        effect = f"{c.effect:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}], p = {c.p_value:.3g}"
        effect += f" ({c.p_source})"
        lines.append(f"{kind}: {c.model} - {c.reference} {c.metric} = {effect}")
    return lines


def summarize(
    prediction_paths,
    specs: dict,
    evaluation: dict,
    seed: int,
    outputs: dict,
    description: str = "",
    control_paths=(),
    sensitivity_path=None,
) -> list[tuple[str, Comparison]]:
    """Write summary.csv, comparisons.csv, summary.md and summary.html (keys of `outputs`:
    "csv", "comparisons", "md", "html"). `evaluation` holds comparison, bootstrap_samples and
    confidence (config section `evaluation`); `seed` seeds the bootstrap. `control_paths`:
    `controls/{control}/predictions.csv` of shortcut controls (a block in md and html only);
    `sensitivity_path`: the sweep's sensitivity_threshold.csv (a block in md and html only)."""
    runs = load_runs(prediction_paths)
    headline = tuple(evaluation["comparison"])
    for model in headline:
        if model not in specs:
            raise ValueError(f"evaluation.comparison names {model!r}, not a configured model")
    rows = model_rows(runs, specs)
    if not rows:
        raise ValueError("no runs to summarise")
    comparisons = compare(
        runs,
        comparison_plan(specs, headline),
        evaluation["bootstrap_samples"],
        evaluation["confidence"],
        seed,
    )
    write_csv(outputs["csv"], rows)
    write_csv(outputs["comparisons"], [{"kind": k, **c.as_row()} for k, c in comparisons])
    text = (describe_test_set(runs) + description).strip()
    names = next(iter(runs.values())).class_names
    controls = control_intervals(
        load_controls(control_paths),
        runs,
        headline[1],
        evaluation["bootstrap_samples"],
        evaluation["confidence"],
        seed,
        model=headline[0],
    )
    for row in controls:
        if row["kind"] != "control" and row["name"] in specs:
            row["channels"] = " + ".join(specs[row["name"]]["channels"])
    thresholds = read_csv(sensitivity_path) if sensitivity_path else ()
    recovery = None
    if evaluation.get("oracle") in specs:
        recovery = oracle_recovery(
            runs,
            *headline,
            evaluation["oracle"],
            n_bootstrap=evaluation["bootstrap_samples"],
            confidence=evaluation["confidence"],
            seed=seed,
        )
    blocks = build_blocks(
        rows, comparisons, specs, headline, names, text, controls, thresholds, recovery
    )
    with atomic_path(outputs["md"]) as tmp:
        tmp.write_text(render_markdown(blocks))
    with atomic_path(outputs["html"]) as tmp:
        tmp.write_text(render_html(blocks))
    return comparisons
