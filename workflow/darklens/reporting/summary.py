"""The results summary: every model's test metrics over seeds, paired comparisons and the ablation.

Inputs are the runs of `training.train` (`runs/{model}/seed_{k}/predictions.csv` with its
`metrics.json` alongside). Outputs:
- `summary.csv`: a row per model, mean and sample standard deviation over seeds of accuracy, macro
  and per-class one-vs-rest ROC AUC, per-class recall, the CDM <-> axion confusion rates and the
  best (validation-selected) epoch, plus the model's architecture, channels, flips and size.
- `comparisons.csv`: a row per paired comparison and metric (statistics.paired_bootstrap).
- `summary.md` / `summary.html`: the same as readable tables, with a one-line verdict on the
  headline comparison (`evaluation.comparison`, by default physics vs baseline).

The ablation grid puts each model whose input is `[image]` or `[image, residual]` in a row named by
its architecture and flips and a column named by its channels; the residual effect is the paired
difference between the two columns of a row, the architecture effect between a row and the row of
the headline reference model in the same column.
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darklens.evaluation.collect import run_identity
from darklens.evaluation.statistics import (
    METRICS,
    Comparison,
    bootstrap_draws,
    paired_bootstrap,
    replicate_metrics,
    seed_positions,
    seed_t_test,
)
from darklens.io.atomic import atomic_path

CHANNEL_COLUMNS = {("image",): "image", ("image", "residual"): "image + residual"}
METRIC_LABELS = {"accuracy": "accuracy", "auc_macro_ovr": "macro AUC"}


@dataclass
class Run:
    """The test predictions and metrics of one model and seed."""

    model: str
    seed: int
    index: np.ndarray  # (n,) global image indices
    labels: np.ndarray  # (n,) integer labels
    probs: np.ndarray  # (n, K)
    class_names: list[str]
    metrics: dict


def read_predictions(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(index, labels, probs, class names) of a predictions.csv, sorted by image index."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no predictions")
    names = [key.removeprefix("prob_") for key in rows[0] if key.startswith("prob_")]
    index = np.array([int(r["index"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    probs = np.array([[float(r[f"prob_{c}"]) for c in names] for r in rows])
    order = np.argsort(index)
    return index[order], labels[order], probs[order], names


def load_runs(prediction_paths) -> dict[tuple[str, int], Run]:
    """Runs keyed by (model, seed); metrics.json is read from the predictions' directory."""
    runs = {}
    for path in prediction_paths:
        path = Path(path)
        model, seed = run_identity(path)
        index, labels, probs, names = read_predictions(path)
        try:
            metrics = json.loads((path.parent / "metrics.json").read_text())
        except FileNotFoundError:
            raise ValueError(f"{path.parent / 'metrics.json'}: metrics file not found") from None
        runs[(model, seed)] = Run(model, seed, index, labels, probs, names, metrics)
    return runs


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN with one value), ignoring undefined (None)."""
    array = np.array([_number(v) for v in values], dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return float("nan"), float("nan")
    std = float(np.std(array, ddof=1)) if array.size > 1 else float("nan")
    return float(np.mean(array)), std


def summary_keys(class_names) -> list[str]:
    return [
        "accuracy",
        "auc_macro_ovr",
        *[f"auc_{c}" for c in class_names],
        *[f"recall_{c}" for c in class_names],
        "cdm_to_axion",
        "axion_to_cdm",
        "best_epoch",
    ]


def model_rows(runs: dict, specs: dict) -> list[dict]:
    """A summary.csv row per model (in the order of `specs`) that has runs."""
    rows = []
    for model, spec in specs.items():
        model_runs = sorted((r for (m, _), r in runs.items() if m == model), key=lambda r: r.seed)
        if not model_runs:
            continue
        names = model_runs[0].class_names
        row = {
            "model": model,
            "architecture": spec["architecture"],
            "channels": "+".join(spec["channels"]),
            "augment_flips": bool(spec.get("augment_flips", False)),
            "n_parameters": model_runs[0].metrics.get("n_parameters"),
            "n_seeds": len(model_runs),
            "seeds": " ".join(str(r.seed) for r in model_runs),
            "n_test": len(model_runs[0].labels),
        }
        for key in summary_keys(names):
            mean, std = mean_std(r.metrics.get(key) for r in model_runs)
            row[f"{key}_mean"], row[f"{key}_std"] = mean, std
        rows.append(row)
    return rows


def _check_paired(run_a: Run, run_b: Run) -> None:
    if not np.array_equal(run_a.index, run_b.index) or not np.array_equal(
        run_a.labels, run_b.labels
    ):
        raise ValueError(
            f"{run_a.model} and {run_b.model} (seed {run_a.seed}) were not scored on the same "
            "test images; a paired comparison needs the same split"
        )


def compare(
    runs: dict, pairs, n_bootstrap: int, confidence: float, seed: int
) -> list[tuple[str, Comparison]]:
    """Paired comparisons [(kind, Comparison)] for each (kind, model, reference) in `pairs` and
    each metric, on the seeds both models share. The bootstrap draws are the same for all."""
    pairs = [p for p in pairs if _seeds(runs, p[1]) and _seeds(runs, p[2])]
    if not pairs:
        return []
    any_run = next(iter(runs.values()))
    n_test = len(any_run.labels)
    all_seeds = sorted({s for (_, s) in runs})
    image_draws, uniforms = bootstrap_draws(n_test, len(all_seeds), n_bootstrap, seed)
    cache: dict[tuple[str, int], dict] = {}

    def replicates(model: str, run_seed: int) -> dict:
        if (model, run_seed) not in cache:
            run = runs[(model, run_seed)]
            cache[(model, run_seed)] = replicate_metrics(run.labels, run.probs, image_draws)
        return cache[(model, run_seed)]

    out = []
    for kind, model, reference in pairs:
        seeds = sorted(set(_seeds(runs, model)) & set(_seeds(runs, reference)))
        if not seeds:
            continue
        for s in seeds:
            _check_paired(runs[(model, s)], runs[(reference, s)])
        draws = seed_positions(uniforms, len(seeds))  # positions into `seeds`
        for metric in METRICS:
            per_a = [_number(runs[(model, s)].metrics[metric]) for s in seeds]
            per_b = [_number(runs[(reference, s)].metrics[metric]) for s in seeds]
            rep_a = np.stack([replicates(model, s)[metric] for s in seeds])
            rep_b = np.stack([replicates(reference, s)[metric] for s in seeds])
            effect, low, high, p = paired_bootstrap(per_a, per_b, rep_a, rep_b, draws, confidence)
            comparison = Comparison(
                model=model,
                reference=reference,
                metric=metric,
                effect=effect,
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                p_bootstrap=p,
                p_seed_t_test=seed_t_test(per_a, per_b),
                seeds_better=int(sum(a > b for a, b in zip(per_a, per_b, strict=True))),
                n_seeds=len(seeds),
                n_test=n_test,
                n_bootstrap=n_bootstrap,
            )
            out.append((kind, comparison))
    return out


def _seeds(runs: dict, model: str) -> list[int]:
    return sorted(s for (m, s) in runs if m == model)


def ablation_grid(specs: dict) -> tuple[dict, list[str]]:
    """{row label: {column label: model}} and the column labels, from the model specs."""
    grid: dict[str, dict[str, str]] = {}
    for model, spec in specs.items():
        column = CHANNEL_COLUMNS.get(tuple(spec["channels"]))
        if column is None:
            continue
        row = spec["architecture"] + (" + flips" if spec.get("augment_flips") else "")
        grid.setdefault(row, {}).setdefault(column, model)
    return grid, list(CHANNEL_COLUMNS.values())


def comparison_plan(specs: dict, headline) -> list[tuple[str, str, str]]:
    """(kind, model, reference) pairs: the headline, the ablation effects, and every other model
    against the headline reference."""
    model, reference = headline
    plan = [("headline", model, reference)]
    grid, columns = ablation_grid(specs)
    for cells in grid.values():
        if all(c in cells for c in columns):
            plan.append(("residual effect", cells[columns[1]], cells[columns[0]]))
    ref_row = next((r for r, cells in grid.items() if reference in cells.values()), None)
    if ref_row is not None:
        for row, cells in grid.items():
            for column, cell_model in cells.items():
                ref_model = grid[ref_row].get(column)
                if row != ref_row and ref_model:
                    plan.append(("architecture effect", cell_model, ref_model))
    for other in specs:
        if other != reference:
            plan.append(("vs reference", other, reference))
    seen, unique = set(), []
    for kind, a, b in plan:
        if (a, b) not in seen and a != b:
            seen.add((a, b))
            unique.append((kind, a, b))
    return unique


# --- formatting ---


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


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
    text = fmt_p_bootstrap(c)
    return f"p {text}" if text.startswith("≤") else f"p = {text}"


def fmt_effect(c: Comparison) -> str:
    return f"{c.effect:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"


def verdict(c_auc: Comparison, c_acc: Comparison | None) -> str:
    """One plain sentence on the headline comparison."""
    alpha = 1.0 - c_auc.confidence
    level = f"{100 * c_auc.confidence:.0f}%"
    if c_auc.p_bootstrap < alpha and c_auc.effect > 0:
        outcome = f"**{c_auc.model} beats {c_auc.reference}**"
    elif c_auc.p_bootstrap < alpha and c_auc.effect < 0:
        outcome = f"**{c_auc.model} is worse than {c_auc.reference}**"
    else:
        outcome = f"**no significant difference between {c_auc.model} and {c_auc.reference}**"
    text = (
        f"Headline: {outcome} in macro AUC at the {100 * alpha:.0f}% level: difference "
        f"{c_auc.effect:+.4f} ({level} CI {c_auc.ci_low:+.4f} to {c_auc.ci_high:+.4f}, "
        f"bootstrap {p_text(c_auc)}; paired t-test over {_seeds_text(c_auc.n_seeds)} "
        f"p = {fmt_p(c_auc.p_seed_t_test)}; better on {c_auc.seeds_better} of "
        f"{_seeds_text(c_auc.n_seeds)})"
    )
    if c_acc is not None:
        text += (
            f"; accuracy difference {c_acc.effect:+.4f} ({level} CI {c_acc.ci_low:+.4f} to "
            f"{c_acc.ci_high:+.4f}, {p_text(c_acc)})"
        )
    return text + "."


def build_blocks(rows, comparisons, specs, headline, class_names, description: str) -> list[tuple]:
    """The summary as blocks: ("h1"|"h2"|"p", text) and ("table", header, rows)."""
    blocks: list[tuple] = [("h1", "darklens results summary"), ("p", description)]

    by_pair = {(c.model, c.reference, c.metric): (kind, c) for kind, c in comparisons}
    head_auc = by_pair.get((headline[0], headline[1], "auc_macro_ovr"))
    head_acc = by_pair.get((headline[0], headline[1], "accuracy"))
    if head_auc:
        blocks.append(("p", verdict(head_auc[1], head_acc[1] if head_acc else None)))

    header = ["model", "architecture", "channels", "flips", "parameters", "seeds", "accuracy"]
    header += ["macro AUC", *[f"AUC {c}" for c in class_names], "cdm→axion", "axion→cdm"]
    header += ["best epoch"]
    table = []
    for row in rows:
        table.append(
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
            ]
        )
    blocks += [("h2", "Models (test set, mean ± standard deviation over seeds)")]
    blocks.append(("table", header, table))

    grid, columns = ablation_grid(specs)
    if any(all(c in cells for c in columns) for cells in grid.values()):
        blocks.append(("h2", "Ablation: architecture × input channels (macro AUC; accuracy)"))
        by_model = {r["model"]: r for r in rows}
        table = []
        for row_label, cells in grid.items():
            line = [row_label]
            for column in columns:
                model = cells.get(column)
                r = by_model.get(model)
                line.append(
                    f"{model}: {fmt_mean_std(r, 'auc_macro_ovr')}; {fmt_mean_std(r, 'accuracy')}"
                    if r
                    else "—"
                )
            effect = by_pair.get((cells.get(columns[1]), cells.get(columns[0]), "auc_macro_ovr"))
            line.append(f"{fmt_effect(effect[1])}, {p_text(effect[1])}" if effect else "—")
            table.append(line)
        blocks.append(("table", ["architecture", *columns, "residual effect on macro AUC"], table))
        blocks.append(
            (
                "p",
                "Residual effect: paired difference (image + residual) − (image) within a row; "
                "architecture effects are listed below as `architecture effect`.",
            )
        )

    blocks.append(("h2", "Paired comparisons (model − reference, same test images and seeds)"))
    header = ["kind", "model", "reference", "metric", "difference [CI]", "p bootstrap"]
    header += ["p t-test (seeds)", "seeds better"]
    table = [
        [
            kind,
            c.model,
            c.reference,
            METRIC_LABELS[c.metric],
            fmt_effect(c),
            fmt_p_bootstrap(c),
            fmt_p(c.p_seed_t_test),
            f"{c.seeds_better}/{c.n_seeds}",
        ]
        for kind, c in comparisons
    ]
    blocks.append(("table", header, table))
    if comparisons:
        c = comparisons[0][1]
        blocks.append(
            (
                "p",
                f"Difference: mean over seeds on the full test set; CI: {100 * c.confidence:.0f}% "
                f"percentile interval of a crossed paired bootstrap ({c.n_bootstrap} replicates "
                "resampling test images and seeds); p bootstrap: two-sided, from the same "
                "replicates; p t-test: paired t-test of the per-seed metrics. Only the headline "
                "comparison is pre-specified; the others are exploratory (no multiplicity "
                "correction).",
            )
        )
    return blocks


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


def _write_csv(path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _csv_value(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


def summarize(
    prediction_paths,
    specs: dict,
    evaluation: dict,
    seed: int,
    outputs: dict,
    description: str = "",
) -> list[tuple[str, Comparison]]:
    """Write summary.csv, comparisons.csv, summary.md and summary.html (keys of `outputs`:
    "csv", "comparisons", "md", "html"). `evaluation` holds comparison, bootstrap_samples and
    confidence (config section `evaluation`); `seed` seeds the bootstrap."""
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
    _write_csv(outputs["csv"], rows)
    _write_csv(outputs["comparisons"], [{"kind": k, **c.as_row()} for k, c in comparisons])
    any_run = next(iter(runs.values()))
    names = any_run.class_names
    per_class = ", ".join(
        f"{int(np.sum(any_run.labels == k))} {name}" for k, name in enumerate(names)
    )
    seeds = sorted({s for (_, s) in runs})
    text = f"Test set: {len(any_run.labels)} images ({per_class}), the same for every model and "
    text += f"seed; seeds {', '.join(map(str, seeds))}. " + description
    blocks = build_blocks(rows, comparisons, specs, headline, names, text.strip())
    with atomic_path(outputs["md"]) as tmp:
        tmp.write_text(render_markdown(blocks))
    with atomic_path(outputs["html"]) as tmp:
        tmp.write_text(render_html(blocks))
    return comparisons
