"""The `darklens` command line: one subcommand per workflow step, each a thin adapter over one
package function. Expected failures (bad config, bad data) print one line and exit with 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from darklens import CLASS_NAMES, __version__

log = logging.getLogger("darklens")


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON argument ({exc}): {text[:80]}") from None


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def cmd_validate_config(args) -> None:
    from darklens.config import load_config

    base = args.base or None
    if base and Path(base).resolve() == Path(args.config).resolve():
        base = None  # the default config itself
    load_config(args.config, base)
    print(f"{args.config}{f' over {base}' if base else ''}: valid")


def cmd_simulate(args) -> None:
    from darklens.simulation.shards import write_shard

    common, class_settings = _json(args.common), _json(args.class_settings)
    info = write_shard(
        common, args.class_name, class_settings, args.shard, args.seed, args.output, args.psf_kernel
    )
    log.info(
        "%s shard %d: %d images, median snr %.1f, substructure chi median %.2f, >1 in %.0f%%",
        args.class_name,
        args.shard,
        info["n_images"],
        info["median_snr"],
        info["median_chi"],
        100.0 * info["fraction_chi_above_1"],
    )


def cmd_gallery(args) -> None:
    from darklens.physics.instrument import load_psf_kernel
    from darklens.reporting.gallery import gallery_figure

    kernel = load_psf_kernel(args.psf_kernel) if args.psf_kernel else None
    gallery_figure(
        _json(args.common),
        args.class_name,
        _json(args.class_settings),
        args.seed,
        args.output,
        n_images=args.n_images,
        image_file=args.images,
        psf_kernel=kernel,
    )
    log.info("%s: gallery of %d %s images", args.output, args.n_images, args.class_name)


def cmd_merge(args) -> None:
    from darklens.io.class_files import merge_shards

    n = merge_shards(args.shards, args.output, args.class_name)
    log.info("%s: merged %d shards, %d images", args.class_name, len(args.shards), n)


def cmd_features(args) -> None:
    from darklens.features.files import write_features

    info = write_features(args.input, args.output, args.smoothing_sigma_px, args.fit, args.kind)
    costs = ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in info["seconds_per_image"].items())
    log.info("%s: %d images; planes per image: %s", args.output, info["n_images"], costs)


def cmd_split(args) -> None:
    from darklens.learning.split import write_stratified_split

    counts = {name: args.images_per_class for name in args.classes}
    split = write_stratified_split(args.output, counts, _json(args.fractions), args.seed)
    log.info("split: %s", {k: len(split[k]) for k in ("train", "val", "test")})


def cmd_train(args) -> None:
    from darklens.learning.train import train_from_files

    spec, training = _json(args.model_spec), _json(args.training)
    train_from_files(
        args.images,
        args.features,
        args.split,
        spec,
        training,
        args.seed,
        args.threads,
        args.smoothing_sigma_px,
        args.out_dir,
        log=log.info,
        warn=log.warning,
    )


def cmd_predict(args) -> None:
    from darklens.learning.predict import predict_file

    counts = predict_file(
        args.checkpoint,
        args.input,
        args.output,
        device=args.device,
        batch_size=args.batch_size,
        allow_pickle=args.allow_pickle,
        dataset=args.dataset,
        units=args.units,
        exposure_time_s=args.exposure_time_s,
        instrument=_json(args.instrument) if args.instrument else None,
        fitting=_json(args.fitting) if args.fitting else None,
    )
    log.info("%s: %d images, predicted %s", args.output, sum(counts.values()), counts)


def cmd_import(args) -> None:
    from darklens.io.npy import import_class

    n = import_class(
        args.folder,
        args.class_name,
        args.output,
        args.allow_pickle,
        units=args.units,
        exposure_time_s=args.exposure_time_s,
    )
    log.info("%s: imported %d images of %s from %s", args.output, n, args.class_name, args.folder)


def cmd_split_files(args) -> None:
    from darklens.learning.split import class_file_counts, write_stratified_split

    counts = class_file_counts(args.images)
    split = write_stratified_split(args.output, counts, _json(args.fractions), args.seed)
    log.info("split of %s: %s", counts, {k: len(split[k]) for k in ("train", "val", "test")})


def cmd_evaluate(args) -> None:
    from darklens.evaluation.collect import collect_metrics

    rows = collect_metrics(args.metrics, args.output)
    log.info("%s: %d runs", args.output, len(rows))


def cmd_plot(args) -> None:
    from darklens.reporting import figures

    if args.kind == "confusion":
        figures.confusion_matrix_figure(args.inputs, args.output, title=args.title)
    elif args.kind == "curves":
        figures.training_curves_figure(args.inputs, args.output)
    elif args.kind == "samples":
        figures.samples_figure(args.inputs, args.features, args.output)
    elif args.kind == "roc":
        figures.roc_figure(args.inputs, args.output, title=args.title)
    elif args.kind == "signal":
        figures.accuracy_vs_signal_figure(args.inputs, args.images, args.output, args.fits)
    elif args.kind == "sensitivity":
        threshold = args.inputs[1] if len(args.inputs) > 1 else None  # sensitivity_threshold.csv
        figures.sensitivity_figure(args.inputs[0], args.output, threshold)
    log.info("%s: %s figure from %d file(s)", args.output, args.kind, len(args.inputs))


def cmd_summarize(args) -> None:
    from darklens.reporting.summary import comparison_lines, summarize, training_description

    outputs = {"csv": args.csv, "comparisons": args.comparisons, "md": args.md, "html": args.html}
    models, evaluation = _json(args.models), _json(args.evaluation)
    text = training_description(args.max_epochs)
    comparisons = summarize(
        args.predictions,
        models,
        evaluation,
        args.seed,
        outputs,
        text,
        args.controls,
        args.sensitivity,
    )
    for line in comparison_lines(comparisons):
        log.info(line)


def cmd_control(args) -> None:
    from darklens.learning.controls import train_control

    train_control(args.control, args.images, args.split, args.out_dir, args.fits, log=log.info)


def cmd_attribution(args) -> None:
    from darklens.io.class_files import read_pixel_scale
    from darklens.learning.attribution import attribute_test_images
    from darklens.learning.dataset import class_paths
    from darklens.reporting import figures

    paths = class_paths(args.images, args.features)
    result = attribute_test_images(args.checkpoint, *paths, args.split, args.per_class)
    result["pixel_scale_arcsec"] = read_pixel_scale(args.images[0])
    run = Path(args.checkpoint).parent
    figures.attribution_figure(result, args.output, title=f"{run.parent.name} {run.name}")
    for name, share in result["share_by_class"].items():
        pairs = zip(result["channels"], share, strict=True)
        log.info(
            "%s: channel shares of |IG|: %s",
            name,
            ", ".join(f"{c} {100 * v:.0f}%" for c, v in pairs),
        )


def cmd_fit(args) -> None:
    from darklens.fitting.files import fit_class_file

    info = fit_class_file(args.input, args.output, _json(args.fitting), log=log.info)
    log.info(
        "%s: %d images fitted on %s, %d converged, median reduced chi2 %.3f",
        args.output,
        info["n_images"],
        info["device"],
        info["n_converged"],
        info["median_chi2_reduced"],
    )


def cmd_sweep_collect(args) -> None:
    from darklens.evaluation.sensitivity import collect_sensitivity

    rows = collect_sensitivity(_json(args.manifest), args.output)
    log.info("%s: %d runs", args.output, len(rows))


def cmd_sweep_threshold(args) -> None:
    from darklens.evaluation.sensitivity import write_thresholds

    evaluation = _json(args.evaluation)
    rows = write_thresholds(
        args.input,
        args.output,
        args.level,
        evaluation["bootstrap_samples"],
        evaluation["confidence"],
        args.seed,
    )
    for row in rows:
        log.info("%s: %s at AUC %s: %s", row["model"], row["parameter"], args.level, row["reading"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darklens", description=__doc__)
    parser.add_argument("--version", action="version", version=f"darklens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "validate-config",
        help="validate a config file against the schema",
        description="Validate CONFIG as the workflow sees it: merged over --base (the "
        "Snakefile's config.yaml), as `snakemake --configfile CONFIG` merges it.",
    )
    p.add_argument("config")
    p.add_argument(
        "--base",
        default="config.yaml",
        help="config the file overlays (default: config.yaml; '' to validate the file alone)",
    )
    p.set_defaults(func=cmd_validate_config)

    _add_data_commands(sub)
    _add_learning_commands(sub)
    _add_evaluation_commands(sub)
    _add_fitting_commands(sub)
    return parser


def _add_fitting_commands(sub) -> None:
    """The smooth-lens fit of a class file."""
    p = sub.add_parser("fit", help="fit SIE + shear + Sersic source to every image of a class")
    p.add_argument("--input", required=True, help="class file data/{class}.h5")
    p.add_argument("--output", required=True, help="fit file data/fits/{class}.h5")
    p.add_argument("--fitting", required=True, help="JSON of the fitting config section")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_fit)


def _add_units_arguments(p) -> None:
    """--units and --exposure-time-s of inputs that may be raw counts (DeepLense's)."""
    p.add_argument(
        "--units",
        choices=["counts", "counts_per_s"],
        default="counts_per_s",
        help="unit of the pixel values (counts: divided by --exposure-time-s into counts/s)",
    )
    p.add_argument("--exposure-time-s", type=float, help="exposure time [s] of counts")


def _add_data_commands(sub) -> None:
    """Simulation, gallery, merging and import: the steps that make class files."""
    p = sub.add_parser("simulate", help="simulate one shard of one class")
    p.add_argument("--class", dest="class_name", required=True, choices=CLASS_NAMES)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--common", required=True, help="JSON of simulation settings minus classes")
    p.add_argument("--class-settings", required=True, help="JSON of simulation.classes[class]")
    p.add_argument("--psf-kernel", help=".npy PSF kernel sampled on the pixel grid")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("gallery", help="gallery figure of one class (re-simulated, checked)")
    p.add_argument("--class", dest="class_name", required=True, choices=CLASS_NAMES)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--common", required=True, help="JSON of simulation settings minus classes")
    p.add_argument("--class-settings", required=True, help="JSON of simulation.classes[class]")
    p.add_argument("--psf-kernel", help="PSF kernel file (.npy or text)")
    p.add_argument("--n-images", type=int, default=4)
    p.add_argument("--images", help="the class file, to check the images against")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("merge", help="merge the shards of one class")
    p.add_argument("--class", dest="class_name", required=True, choices=CLASS_NAMES)
    p.add_argument("--output", required=True)
    p.add_argument("shards", nargs="+")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("import", help="a folder of .npy images of one class -> a class file")
    p.add_argument("--class", dest="class_name", required=True, choices=CLASS_NAMES)
    p.add_argument("--folder", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--allow-pickle", action="store_true", help="read .npy object arrays")
    _add_units_arguments(p)
    p.set_defaults(func=cmd_import)


def _add_features_argument(p) -> None:
    p.add_argument(
        "--features",
        "--residuals",
        dest="features",
        nargs="*",
        default=None,
        help="features files of the class files, named {class}.h5 (--residuals: former name)",
    )


def _add_learning_commands(sub) -> None:
    """Features, splits, training and prediction."""
    p = sub.add_parser(
        "features",
        help="input planes of a class file (docs/features.md)",
        description="Write a features file of a class file: with --kind, the planes of that kind "
        "(residual: the Gaussian residual, needs --smoothing-sigma-px; lens_model: fit_residual, "
        "source_plane, source_residual, needs --fit; oracle: oracle_residual, needs the class "
        "file's true smooth models); without, every plane it can derive.",
    )
    p.add_argument("--input", required=True, help="class file")
    p.add_argument("--kind", choices=["residual", "lens_model", "oracle"], default=None)
    p.add_argument("--fit", default=None, help="its fit file (data/fits/{class}.h5)")
    p.add_argument("--output", required=True)
    p.add_argument("--smoothing-sigma-px", type=float, default=None)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("split", help="seeded stratified train/val/test split")
    p.add_argument("--classes", nargs="+", default=list(CLASS_NAMES))
    p.add_argument("--images-per-class", type=int, required=True)
    p.add_argument(
        "--fractions", required=True, help='JSON, e.g. {"train":0.7,"val":0.15,"test":0.15}'
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("train", help="train one model with one seed")
    p.add_argument("--model", required=True)
    p.add_argument("--model-spec", required=True, help="JSON of training.models[model]")
    p.add_argument("--training", required=True, help="JSON of the training hyperparameters")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--images", nargs="+", required=True, help="class files, named {class}.h5")
    _add_features_argument(p)
    p.add_argument("--smoothing-sigma-px", type=float, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "predict",
        help="class probabilities of new images from a checkpoint",
        description="Write one CSV row per image (index, source, prob_<class>..., pred, "
        "pred_name). The input is an HDF5 file, a .npy stack (N, H, W) or image (H, W), or a "
        "folder of .npy images; its channels (a lens-model channel fits each image first) and "
        "normalisation are the model's own.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of a training run")
    p.add_argument("--input", required=True, help="HDF5 file, .npy stack, or folder of .npy")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dataset", default=None, help="HDF5 dataset (default: images)")
    p.add_argument(
        "--instrument",
        default=None,
        help="JSON instrument section of the images: needed by a model with a lens-model "
        "channel (fit_residual, source_plane, source_residual), which fits each image",
    )
    p.add_argument("--fitting", default=None, help="JSON fitting settings (lens-model channels)")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read .npy object arrays (DeepLense layout); runs pickle code: trusted files only",
    )
    _add_units_arguments(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("split-files", help="stratified split of the images in class files")
    p.add_argument("--fractions", required=True, help="JSON, as for split")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("images", nargs="+", help="class files, named {class}.h5, in class order")
    p.set_defaults(func=cmd_split_files)


def _add_evaluation_commands(sub) -> None:
    """Metrics, figures, summaries, attribution and the sensitivity table."""
    p = sub.add_parser("evaluate", help="collect metrics.json files into one CSV")
    p.add_argument("--output", required=True)
    p.add_argument("metrics", nargs="+")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("plot", help="figures")
    kinds = ["confusion", "curves", "samples", "roc", "signal", "sensitivity"]
    p.add_argument("kind", choices=kinds)
    p.add_argument("--images", nargs="*", default=None, help="class files (signal)")
    p.add_argument("--fits", nargs="*", default=None, help="fit files (signal; optional)")
    p.add_argument("--output", required=True)
    p.add_argument("--title", default="")
    _add_features_argument(p)
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("summarize", help="summary tables and paired comparisons of all runs")
    p.add_argument("--models", required=True, help="JSON of training.models")
    p.add_argument("--evaluation", required=True, help="JSON of the evaluation section")
    p.add_argument("--seed", type=int, required=True, help="seed of the bootstrap")
    p.add_argument("--max-epochs", type=int, default=0, help="training.max_epochs (for the text)")
    p.add_argument("--controls", nargs="*", default=[], help="controls/{control}/predictions.csv")
    p.add_argument("--sensitivity", default=None, help="results/sweep/sensitivity_threshold.csv")
    p.add_argument("--csv", required=True)
    p.add_argument("--comparisons", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--html", required=True)
    p.add_argument("predictions", nargs="+", help="runs/{model}/seed_{k}/predictions.csv")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("control", help="a shortcut control: logistic regression on the split")
    p.add_argument("--control", required=True, choices=["radial_profile", "nuisance", "fit_chi2"])
    p.add_argument("--split", required=True)
    p.add_argument("--images", nargs="+", required=True, help="class files, named {class}.h5")
    p.add_argument(
        "--fits", nargs="*", default=None, help="fit files, same order (nuisance, fit_chi2)"
    )
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_control)

    p = sub.add_parser("attribution", help="Grad-CAM and integrated gradients on test images")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--images", nargs="+", required=True, help="class files, named {class}.h5")
    _add_features_argument(p)
    p.add_argument("--per-class", type=int, default=2, help="test images shown per class")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_attribution)

    p = sub.add_parser("sweep-collect", help="metrics of every sweep point into one CSV")
    p.add_argument("--manifest", required=True, help="JSON: parameter, class, points and runs")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_sweep_collect)

    p = sub.add_parser("sweep-threshold", help="per model, where the sweep's AUC reaches a level")
    p.add_argument("--input", required=True, help="results/sweep/sensitivity.csv")
    p.add_argument("--level", type=float, required=True, help="the AUC (sweep.threshold_auc)")
    p.add_argument("--evaluation", required=True, help="JSON: bootstrap_samples, confidence")
    p.add_argument("--seed", type=int, required=True, help="seed of the bootstrap")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_sweep_threshold)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    if getattr(args, "threads", None):
        _set_threads(args.threads)
    if os.environ.get("SLURM_JOB_ID"):  # provenance of cluster jobs, in every rule's log
        log.info(
            "darklens %s: SLURM job %s on %s",
            args.command,
            os.environ["SLURM_JOB_ID"],
            os.uname().nodename,
        )
    try:
        args.func(args)
    except (ValueError, OSError, FloatingPointError) as exc:
        message = " ".join(str(exc).split())
        print(f"darklens {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
