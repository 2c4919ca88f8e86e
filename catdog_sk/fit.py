"""Tune, compare and save cat/dog classifiers: ``python -m catdog_sk.fit --help``."""

import os
from pathlib import Path
from types import SimpleNamespace

from . import _cli
from .registry import FEATURE_SETS, FINETUNE, MODELS, OPT_IN_FEATURE_SETS

ALL_SETS = tuple(FEATURE_SETS)
DEFAULT_SETS = tuple(s for s in FEATURE_SETS if s not in OPT_IN_FEATURE_SETS)
ALL_MODELS = tuple(MODELS)
MODEL_CHOICES = (*MODELS, *FINETUNE, "all")


def build_parser():
    """The ``fit`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "fit",
        "Tune SVM and logistic-regression pipelines with GridSearchCV (stratified k-fold on the training "
        "set) for each feature set, compare them on the held-out test set, and save the best model with "
        "its model card and an evaluation report.",
        epilog=_cli.SKIPPED_EPILOG + " Failures include one class and too few images.",
    )
    parser.add_argument("--model", default="all", metavar="LIST",
                        help=f"comma-separated classifier families from {', '.join(MODEL_CHOICES)}; 'all' is "
                             f"{' and '.join(ALL_MODELS)} on every feature set (frozen features); 'finetune' adds one "
                             f"row that fine-tunes the first --backbone on the training photos (cnn features; "
                             f"minutes per epoch on a CPU), e.g. --model all,finetune")
    parser.add_argument("--epochs", type=_cli.integer(1, 1000), default=3, metavar="N",
                        help="most epochs of fine-tuning (--model finetune; early stopping on a held-out 10%%)")
    parser.add_argument("--features", default=",".join(DEFAULT_SETS), metavar="LIST",
                        help=f"comma-separated feature sets from {', '.join(ALL_SETS)} (default: all but "
                             f"{' and '.join(OPT_IN_FEATURE_SETS)}, the slowest to tune)")
    parser.add_argument("--data", metavar="PATH",
                        help="training images, or a split root with train/ and test/ "
                             "(default: $CATDOG_DATA, else download PetImages once)")
    parser.add_argument("--test", metavar="PATH",
                        help="held-out test images (default: test/ of a split root, else a seeded 20%% split)")
    parser.add_argument("--cv", type=_cli.integer(2), default=5, metavar="K", help="stratified CV folds")
    parser.add_argument("--jobs", type=_cli.jobs, default=None, metavar="N",
                        help="parallel workers for extraction and grid search (default: all CPUs)")
    _cli.add_backbone_arg(parser)
    _cli.add_runtime_arg(parser)
    _cli.add_device_arg(parser)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without the cache")
    parser.add_argument("--seed", type=_cli.integer(0, 2**32 - 1), default=0, help="seed for folds, splits and models")
    parser.add_argument("--run", metavar="NAME", help="run folder under models/ and reports/ (default: UTC time + 8 hex, 20261203-183000-1a2b3c4d)")
    parser.add_argument("--artifacts", default="artifacts", metavar="DIR",
                        help="where models/<run>/ and reports/<run>/ are written")
    parser.add_argument("--save-all", action="store_true",
                        help="save every tuned model, not only the best (the best is models/<run>/, the others "
                             "models/<run>/<features>-<model>/)")
    parser.add_argument("--extra-data", action="append", default=[], metavar="SPEC",
                        help="more training images: 'feedback' (photos users labelled through serve, from the "
                             "prediction log of --log-db; those said to show neither become negatives of "
                             "'unknown'), a prediction log (.sqlite file, sqlite:///path or postgresql://...), or "
                             "a labelled folder/CSV; repeatable")
    parser.add_argument("--log-db", metavar="URL",
                        help="the servers' prediction log for --extra-data feedback: a SQLite file, sqlite:///path "
                             "or postgresql://user@host:port/db (default: ARTIFACTS/models/prediction_log.sqlite)")
    _add_unknown_args(parser)
    _cli.add_strict_arg(parser)
    _cli.add_backend_args(parser, "extraction partitions and grid-search fits run")
    parser.add_argument("--no-promote", action="store_true",
                        help="never promote the new model (by default it is promoted when its test accuracy "
                             "is at least the current promoted model's on the same test set)")
    return parser


def _add_unknown_args(parser):
    """--unknown, --negatives and --negatives-fraction."""
    parser.add_argument("--unknown", default="auto", metavar="auto|off|P",
                        help="models with CNN features answer 'unknown' for photos that show neither a cat nor a "
                             "dog: 'auto' (operating point set on the training photos), 'off', or a presence "
                             "threshold in (0, 1) (higher abstains more)")
    parser.add_argument("--negatives", metavar="DIR", default=os.environ.get("CATDOG_NEGATIVES") or None,
                        help="photos of neither cats nor dogs (sub-folders cat/ and dog/ are skipped), part of "
                             "which trains the presence model and the rest is reported on "
                             "(default: $CATDOG_NEGATIVES; the offline check set is always used)")
    parser.add_argument("--negatives-fraction", type=_cli.real(0, 1), default=0.5, metavar="F",
                        help="share of --negatives used for fitting, split by content hash within each sub-folder "
                             "(seeded by --seed); the rest is held out for the report (default 0.5)")


def parse_unknown(parser, text):
    """The value of ``--unknown``: 'auto' -> 'auto', 'off' -> None, a number in (0, 1) -> float.

    Parameters
    ----------
    parser, text : argparse.ArgumentParser and str
        Reports a bad value as a usage error (exit status 2); what was given.

    Returns
    -------
    unknown : 'auto', None or float
        The ``unknown`` parameter of :class:`~catdog_sk.CatDogClassifier`.
    """
    if text in ("auto", "off"):
        return None if text == "off" else "auto"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        parser.error(f"--unknown must be 'auto', 'off' or a presence threshold in (0, 1); got {text!r}")
    return value


def _plan(parser, args):
    """What to fit, from the parsed options (usage errors here, before any work)."""
    from .features import FEATURE_NAMES, make_extractor

    sets = _cli.parse_names(parser, "--features", args.features, ALL_SETS)
    chosen = _cli.parse_names(parser, "--model", args.model, MODEL_CHOICES)
    models = list(dict.fromkeys(m for c in chosen for m in (ALL_MODELS if c == "all" else (c,)) if m in MODELS))
    finetune = "finetune" in chosen
    if finetune and "cnn" not in sets:
        parser.error(f"--model finetune fine-tunes the CNN: it needs cnn in --features; got {args.features!r}")
    unknown = parse_unknown(parser, args.unknown)
    base_names = [n for n in FEATURE_NAMES if any(n in FEATURE_SETS[s] for s in sets)]
    if "cnn" in base_names:  # fail fast (offline backbone, no GPU for --device cuda)
        make_extractor("cnn", backbone=args.backbone, runtime=args.runtime, device=args.device, caller="fit").config()
    return SimpleNamespace(sets=sets, models=models, finetune=finetune, unknown=unknown, cnn="cnn" in base_names)


def _extra(args):
    """--extra-data: (labelled folders/CSVs/feedback, the feedback's photos of 'neither' as negatives)."""
    from .monitoring._store import is_log_url
    from .training import feedback_dataset, feedback_negatives

    out, negatives = [], []
    for spec in args.extra_data:
        if spec == "feedback" or spec.endswith(".sqlite") or is_log_url(spec):
            db = (args.log_db or Path(args.artifacts) / "models" / "prediction_log.sqlite") if spec == "feedback" \
                else spec
            spec, neg = feedback_dataset(db, log=lambda message: _cli.log(args, message)), feedback_negatives(db)
            negatives += [neg] if neg is not None else []
        out.append(spec)
    return out, negatives


def _work(args, plan, client):
    """The five steps of catdog_sk.training, with this command's options."""
    from .data import load_training_data
    from .training import extract_features_for_run, save_run, search_models

    log, progress, cache = (lambda message: _cli.log(args, message)), _cli.show_progress(args), _cli.open_cache(args)
    (extra, extra_negatives), presence = _extra(args), plan.unknown is not None and plan.cnn
    data = load_training_data(args.data, test=args.test, extra=extra, random_state=args.seed,
                              negatives=args.negatives if presence else None, negatives_fraction=args.negatives_fraction,
                              extra_negatives=extra_negatives if presence else (), log=log)
    data.check_trainable(args.cv)
    if args.runtime == "openvino-int8" and plan.cnn:  # calibrated on the training photos, never the test ones
        from .features import INT8_CALIBRATION_SIZE, calibrate_int8

        log(f"int8 network: calibrated on {min(len(data.train.paths), INT8_CALIBRATION_SIZE)} training photos "
            "(once per photo set)")
        calibrate_int8(data.train.paths, backbone=args.backbone)
    features = extract_features_for_run(data, plan.sets, backbone=args.backbone, runtime=args.runtime,
                                        device=args.device, unknown=plan.unknown, cv=args.cv, cache=cache,
                                        n_jobs=args.jobs, client=client, progress=progress, log=log)
    comparison = search_models(features, plan.models, finetune=plan.finetune, epochs=args.epochs, cv=args.cv,
                               n_jobs=args.jobs, random_state=args.seed, cache=cache, client=client,
                               fold_cache=not args.scheduler, progress=progress, log=log)
    result = save_run(comparison, artifacts=args.artifacts, run=args.run, cache=cache, n_jobs=args.jobs,
                      save_all=args.save_all, promote=not args.no_promote, unknown_setting=args.unknown, log=log)
    if args.json:
        _cli.emit_json(result.results)
    else:
        print(result.summary())
    return _cli.skipped_status(args, len(result.results["skipped"]))


def main(argv=None):
    """Run ``python -m catdog_sk.fit``: tune, compare, save and promote (see ``--help``).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        The exit status: 0 done, 1 failure, 2 usage error, 3 done with skipped files (see ``--help``).
    """
    parser = build_parser()

    def body(args):
        from .models.persistence import valid_run_name  # here, not above: --version and --help stay instant
        from .training import claim_run, release_run

        if args.run is not None and not valid_run_name(args.run):
            parser.error(f"--run must be one folder name of letters, digits, '.', '_' and '-' (not starting "
                         f"with '.', at most 100 characters); got {args.run!r}")
        args.run, created = claim_run(args.artifacts, args.run)
        try:
            with _cli.cluster(args) as client:
                return _work(args, _plan(parser, args), client)
        except BaseException:  # saving never overwrote another run; only this run's own folder goes
            release_run(created)
            raise

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
