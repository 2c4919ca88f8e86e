"""Tune, compare and save cat/dog classifiers: ``python -m catdog_sk.fit --help``."""

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import _cli
from .exceptions import DatasetError
from .registry import FEATURE_SETS, FINETUNE, MODELS

ALL_SETS = tuple(FEATURE_SETS)
ALL_MODELS = tuple(MODELS)
MODEL_CHOICES = (*MODELS, *FINETUNE, "all")


def build_parser():
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
    parser.add_argument("--epochs", type=int, default=3, metavar="N",
                        help="most epochs of fine-tuning (--model finetune; early stopping on a held-out 10%%)")
    parser.add_argument("--features", default=",".join(ALL_SETS), metavar="LIST",
                        help=f"comma-separated feature sets from {', '.join(ALL_SETS)}")
    parser.add_argument("--data", metavar="PATH",
                        help="training images, or a split root with train/ and test/ "
                             "(default: $CATDOG_DATA, else download PetImages once)")
    parser.add_argument("--test", metavar="PATH",
                        help="held-out test images (default: test/ of a split root, else a seeded 20%% split)")
    parser.add_argument("--cv", type=int, default=5, metavar="K", help="stratified CV folds")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="parallel workers for extraction and grid search (default: all CPUs)")
    _cli.add_backbone_arg(parser)
    _cli.add_runtime_arg(parser)
    _cli.add_device_arg(parser)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without the cache")
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, splits and models")
    parser.add_argument("--run", metavar="NAME", help="run name (default: a UTC timestamp)")
    parser.add_argument("--artifacts", default="artifacts", metavar="DIR",
                        help="where models/<run>/ and reports/<run>/ are written")
    parser.add_argument("--save-all", action="store_true",
                        help="save every tuned model, not only the best (the best is models/<run>/, the others "
                             "models/<run>/<features>-<model>/)")
    parser.add_argument("--extra-data", action="append", default=[], metavar="SPEC",
                        help="more training images: 'feedback' (images users corrected through serve, from "
                             "ARTIFACTS/models/prediction_log.sqlite), a prediction-log .sqlite file, or a "
                             "labelled folder/CSV; repeatable")
    parser.add_argument("--unknown", default="auto", metavar="auto|off|P",
                        help="models with CNN features answer 'unknown' for photos that show neither a cat nor a "
                             "dog: 'auto' (operating point set on the training photos), 'off', or a presence "
                             "threshold in (0, 1) (higher abstains more)")
    parser.add_argument("--negatives", metavar="DIR", default=os.environ.get("CATDOG_NEGATIVES") or None,
                        help="photos of neither cats nor dogs (sub-folders cat/ and dog/ are skipped), part of "
                             "which trains the presence model and the rest is reported on "
                             "(default: $CATDOG_NEGATIVES; the offline check set is always used)")
    parser.add_argument("--negatives-fraction", type=float, default=0.5, metavar="F",
                        help="share of --negatives used for fitting, split by content hash within each sub-folder "
                             "(seeded by --seed); the rest is held out for the report (default 0.5)")
    _cli.add_strict_arg(parser)
    _cli.add_backend_args(parser)
    parser.add_argument("--no-promote", action="store_true",
                        help="never promote the new model (by default it is promoted when its test accuracy "
                             "is at least the current promoted model's on the same test set)")
    return parser


def _resolve_data(args):
    from .data import content_hashes, default_data_dir, find_images, find_splits, split_dataset

    source = args.data or str(default_data_dir())
    splits = find_splits(source)
    train = find_images(splits["train"] if splits else source)
    test_source = args.test or splits.get("test")
    if test_source:
        return train, find_images(test_source), str(splits.get("train", source)), str(test_source)
    idx = split_dataset(train.labels, hashes=content_hashes(train.paths), val_size=0.0, test_size=0.2,
                        random_state=args.seed)
    return train.subset(idx["train"]), train.subset(idx["test"]), f"{source} (seeded 80%)", f"{source} (seeded 20%)"


def _add_extra(train, args):
    """Append --extra-data images (feedback from the prediction log, or labelled folders) to train."""
    from .data import LabeledImages, find_images, normalize_label
    from .monitoring.log import PredictionLog

    sources = []
    for spec in args.extra_data:
        if spec == "feedback" or spec.endswith(".sqlite"):
            db = Path(args.artifacts) / "models" / "prediction_log.sqlite" if spec == "feedback" else Path(spec)
            if not db.is_file():
                raise DatasetError(f"--extra-data {spec}: no prediction log at {db}.")
            paths, labels, missing = PredictionLog(db).feedback_images()
            for sha in missing:
                _cli.log(args, f"feedback image {sha[:12]} is no longer in the uploads folder; skipped")
            extra = LabeledImages(paths, np.array([normalize_label(y) for y in labels], dtype=object),
                                  "feedback", str(db))
        else:
            extra = find_images(spec)
        _cli.log(args, f"extra training data {spec}: {len(extra)} images {extra.counts()}")
        sources.append(f"{spec} ({len(extra)} images)")
        train = LabeledImages(train.paths + extra.paths, np.concatenate([train.labels, extra.labels]),
                              train.layout, train.root, train.ignored + extra.ignored)
    return train, sources


def parse_unknown(parser, text):
    """--unknown: 'auto' -> 'auto', 'off' -> None, a number in (0, 1) -> float."""
    if text in ("auto", "off"):
        return None if text == "off" else "auto"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        parser.error(f"--unknown must be 'auto', 'off' or a presence threshold in (0, 1); got {text!r}")
    return value


def _extractors(names, args):
    """The extractor plans of ``names`` with the command's --backbone, --runtime and --device."""
    from .features import make_extractor

    return [make_extractor(n, backbone=args.backbone, runtime=args.runtime, device=args.device, caller="fit")
            for n in names]


def _negative_features(names, args, cache, negatives):
    """Base features of the photos of neither: the offline check set plus the fitting part of --negatives."""
    from .checkset import non_animal_images
    from .features import extract_features

    extractors = _extractors(names, args)
    _, images = non_animal_images(random_state=args.seed)
    items = images + (list(negatives.paths) if negatives is not None else [])
    res = extract_features(items, extractors, cache=cache, n_jobs=args.jobs, on_error="skip",
                           progress=_cli.show_progress(args), desc="negatives")
    for err in res.errors:
        _cli.log(args, f"skipped negative {err}")
    return {n: f[res.ok] for n, f in zip(names, res.features)}


def _held_out_negatives(clf, held, args, cache):
    """Decision of ``clf`` on the held-out photos of neither, as write_report's ``negatives``."""
    from .evaluation import negatives_decision

    if held is None or not len(held):
        return None
    decision, skipped = negatives_decision(
        clf, held, cache=cache, n_jobs=args.jobs,
        note=f"the {{n}} photos held out of fitting (--negatives-fraction {args.negatives_fraction}, seed {args.seed})")
    for err in skipped:
        _cli.log(args, f"skipped negative {err}")
    return decision


def _check_trainable(found, cv):
    counts = found.counts()
    present = [c for c, n in counts.items() if n]
    if len(present) < 2:
        raise DatasetError(f"Training data has a single class ({', '.join(present) or 'none'}: "
                           f"{sum(counts.values())} images); fitting needs both cats and dogs.")
    if min(counts.values()) < cv:
        raise DatasetError(f"Training data has too few images for {cv}-fold CV: {counts}; "
                           f"need at least {cv} of each class (or lower --cv).")


def _extract(found, names, args, cache, desc, client=None):
    from .cluster import extract_features_with

    extractors = _extractors(names, args)
    res = extract_features_with(client, found.paths, extractors, n_jobs=args.jobs, cache=cache, on_error="skip",
                                progress=_cli.show_progress(args), desc=desc)
    for err in res.errors:
        _cli.log(args, f"skipped {err}")
    base = {n: f[res.ok] for n, f in zip(names, res.features)}
    skipped = [e.as_dict() for e in res.errors]
    return base, found.subset(np.flatnonzero(res.ok)), skipped


def _uncached_ms_per_image(names, found, args, n=32):
    """End-to-end feature cost per image (decode + features, no cache), per base feature."""
    from .features import extract_features

    paths = found.paths[:n]
    out = {}
    for name in names:
        (ex,) = _extractors([name], args)
        extract_features(paths[:2], [ex], n_jobs=args.jobs)  # warm up (model load, imports)
        res = extract_features(paths, [ex], n_jobs=args.jobs)
        out[name] = 1000 * res.seconds / len(paths)
    return out


def format_table(rows):
    head = (f"{'features':<10} {'model':<8} {'best params':<52} {'CV acc':>15} {'test acc':>9} "
            f"{'ROC AUC':>8} {'log loss':>9} {'fit s':>7} {'ms/img':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["best_params"].items())
        lines.append(
            f"{r['features']:<10} {r['model']:<8} {params:<52} "
            f"{r['cv_accuracy']:>8.4f}±{r['cv_std']:.4f} {r.get('test_accuracy', float('nan')):>9.4f} "
            f"{r.get('test_roc_auc', float('nan')):>8.4f} {r.get('test_log_loss', float('nan')):>9.4f} "
            f"{r['search_seconds'] + r['fit_seconds']:>7.1f} {r.get('predict_ms_per_image', float('nan')):>7.1f}")
    return "\n".join(lines)


def markdown_table(rows):
    lines = ["| features | model | best params | CV accuracy | test accuracy | ROC AUC | log loss | fit s | predict ms/img |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["best_params"].items())
        lines.append(f"| {r['features']} | {r['model']} | {params} | {r['cv_accuracy']:.4f} ± {r['cv_std']:.4f} "
                     f"| {r['test_accuracy']:.4f} | {r['test_roc_auc']:.4f} | {r['test_log_loss']:.4f} "
                     f"| {r['search_seconds'] + r['fit_seconds']:.1f} | {r['predict_ms_per_image']:.1f} |")
    return "\n".join(lines)


def _plot_comparison(rows, path):
    from .plotting import pyplot

    plt = pyplot()
    labels = [f"{r['features']}\n{r['model']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(rows)), 3.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["cv_accuracy"] for r in rows], 0.4, yerr=[r["cv_std"] for r in rows], label="CV (train)")
    ax.bar(x + 0.2, [r["test_accuracy"] for r in rows], 0.4, label="test")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    ax.set_title("Feature set x model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plan(parser, args):
    """What to fit, from the parsed options (usage errors here, before any work)."""
    from .features import FEATURE_NAMES

    sets = _cli.parse_names(parser, "--features", args.features, ALL_SETS)
    chosen = _cli.parse_names(parser, "--model", args.model, MODEL_CHOICES)
    models = list(dict.fromkeys(m for c in chosen for m in (ALL_MODELS if c == "all" else (c,)) if m in MODELS))
    finetune = "finetune" in chosen
    if finetune and "cnn" not in sets:
        parser.error(f"--model finetune fine-tunes the CNN: it needs cnn in --features; got {args.features!r}")
    if finetune and not 1 <= args.epochs <= 1000:
        parser.error(f"--epochs must be between 1 and 1000; got {args.epochs}")
    if args.cv < 2:
        parser.error(f"--cv must be >= 2; got {args.cv}")
    unknown = parse_unknown(parser, args.unknown)
    if not 0 <= args.negatives_fraction <= 1:
        parser.error(f"--negatives-fraction must be between 0 and 1; got {args.negatives_fraction}")
    if args.jobs is not None and args.jobs == 0:
        parser.error("--jobs must be a positive number or -1 for all CPUs; got 0")
    base_names = [n for n in FEATURE_NAMES if any(n in FEATURE_SETS[s] for s in sets)]
    if "cnn" in base_names:
        _extractors(["cnn"], args)[0].config()  # fail fast (offline backbone, no GPU for --device cuda)
    # photos of neither need only the features of the sets that can abstain (those with CNN features)
    neg_names = [n for n in base_names if any(n in FEATURE_SETS[s] for s in sets if "cnn" in FEATURE_SETS[s])]
    return SimpleNamespace(sets=sets, models=models, finetune=finetune, unknown=unknown, base_names=base_names,
                           neg_names=neg_names if unknown is not None else [])


def _load_data(args, plan):
    """Train and test images (with --extra-data), and the fitting / held-out parts of --negatives."""
    negatives = held = None
    if args.negatives and plan.unknown is not None and "cnn" in plan.base_names:
        from .data import find_negatives

        negatives, held = find_negatives(args.negatives).split(args.negatives_fraction, random_state=args.seed)
        _cli.log(args, f"negatives: {len(negatives)} photos for fitting, {len(held)} held out ({args.negatives})")
    train, test, train_src, test_src = _resolve_data(args)
    train, extra_src = _add_extra(train, args)
    if extra_src:
        train_src += " + " + " + ".join(extra_src)
    _check_trainable(train, args.cv)
    _cli.log(args, f"train: {len(train)} images {train.counts()}; test: {len(test)} images {test.counts()}")
    return SimpleNamespace(train=train, test=test, train_src=train_src, test_src=test_src, negatives=negatives,
                           held=held)


def _features(args, plan, data, cache, client):
    """Base features of train, test and the photos of neither; drops unreadable images from ``data``."""
    t0 = time.perf_counter()
    base_train, data.train, skipped = _extract(data.train, plan.base_names, args, cache, "train features", client)
    base_test, data.test, skipped_test = _extract(data.test, plan.base_names, args, cache, "test features", client)
    _check_trainable(data.train, args.cv)
    base_neg = _negative_features(plan.neg_names, args, cache, data.negatives) if plan.neg_names else None
    extract_s = time.perf_counter() - t0
    return SimpleNamespace(train=base_train, test=base_test, negatives=base_neg, skipped=skipped + skipped_test,
                           extract_s=extract_s, ms_per_image=_uncached_ms_per_image(plan.base_names, data.test, args))


def _search(args, plan, data, feats, client, cache):
    """models.workflow.compare with a progress bar, logging each row as it finishes."""
    from sklearn.model_selection import ParameterGrid
    from tqdm.auto import tqdm

    from .models import param_grid
    from .models.workflow import compare

    total = sum(len(ParameterGrid(param_grid(m, fs))) for fs in plan.sets for m in plan.models) * args.cv
    feats.own_test = {}  # models whose test features are their own (fine-tuned network), by (features, model)

    def searching():  # with --backend dask, every CV fit is a task on the cluster's workers
        if client is None:
            return contextlib.nullcontext()
        from .cluster import joblib_on_cluster

        return joblib_on_cluster(client)

    def on_row(row):
        row.setdefault("predict_ms_per_image", round(
            sum(feats.ms_per_image[n] for n in FEATURE_SETS[row["features"]]) + row["classifier_ms_per_image"], 2))
        _cli.log(args, f"{row['features']:>9} / {row['model']:<6} CV {row['cv_accuracy']:.4f}  "
                       f"test {row['test_accuracy']:.4f}")

    with tqdm(total=total, desc="grid search", unit="fit", file=sys.stderr,
              disable=not _cli.show_progress(args)) as bar:
        rows, fitted = compare(feats.train, data.train.labels, feats.test, data.test.labels, plan.sets, plan.models,
                               cv=args.cv, n_jobs=-1 if client is not None else args.jobs, random_state=args.seed,
                               backbone=args.backbone, runtime=args.runtime, device=args.device,
                               unknown=plan.unknown, base_negatives=feats.negatives, progress=bar,
                               searching=searching, on_row=on_row,
                               fold_cache=not args.scheduler)  # a remote cluster's workers cannot see our /tmp
    if plan.finetune:
        rows, fitted = _finetune(args, plan, data, feats, rows, fitted, on_row, cache)
    return rows, fitted


def _finetune(args, plan, data, feats, rows, fitted, on_row, cache):
    """The fine-tuning row (models.workflow.finetune_row), after the frozen-feature rows."""
    from .features import split_backbones
    from .models.workflow import finetune_row

    backbone = split_backbones(args.backbone)[0]
    _cli.log(args, f"fine-tuning {backbone} on {len(data.train)} training photos (at most {args.epochs} epochs)")
    row, clf, test_features = finetune_row(
        data.train.paths, data.train.labels, data.test.paths, data.test.labels, backbone=backbone,
        epochs=args.epochs, negatives=list(data.negatives.paths) if data.negatives is not None else None,
        unknown=plan.unknown, cache=cache, n_jobs=args.jobs, random_state=args.seed,
        runtime=args.runtime, device=args.device, verbose=_cli.show_progress(args))
    on_row(row)
    feats.own_test[("cnn", "finetune")] = test_features
    return rows + [row], {**fitted, ("cnn", "finetune"): clf}


def _test_features(feats, key):
    """The test photos' features for model ``key``: its own (fine-tuned) or the shared base features."""
    from .models import stack_features

    own = getattr(feats, "own_test", {}).get(key)
    return own if own is not None else stack_features(feats.test, key[0])


def _save_run(args, plan, data, feats, rows, fitted, cache):
    """Save the best model (every model with --save-all), write the report, promote; return comparison.json."""
    from ._io import atomic_dir
    from .models.persistence import promote, promotion_lock
    from .models.workflow import champion_decision, choose_best

    art = Path(args.artifacts)
    best = choose_best(rows)  # by CV accuracy (training data only), never the test set
    best_key = (best["features"], best["model"])
    for clf in fitted.values():  # so that evaluate can leave the photos they were fitted on out
        if data.negatives is not None and clf.presence_ is not None:
            clf.negatives_sha256_ = tuple(data.negatives.sha256)
    decisions = {key: fitted[key].predict_features(_test_features(feats, key))
                 for key in fitted if args.save_all or key == best_key}
    held = _held_out_negatives(fitted[best_key], data.held, args, cache) if fitted[best_key].presence_ is not None \
        else None
    # Compare with the model promoted *now*, save and promote in one locked step: two runs
    # finishing together decide one after the other (fcntl.flock on the models root).
    with promotion_lock(art / "models"):
        promotion = champion_decision(art / "models", best["test_accuracy"], data.test.paths, data.test.labels,
                                      cache=cache, n_jobs=args.jobs, enabled=not args.no_promote)
        with atomic_dir(art / "reports" / args.run) as work:  # the report folder appears whole or not at all
            saved = _save_models(args, data, feats, rows, fitted, decisions, best, promotion, held)
            results = _write_report(args, data, feats, rows, fitted[best_key], decisions[best_key], best, held, work,
                                    saved=saved, promotion=promotion)
        if promotion["promoted"]:  # last, once the model and its report are whole: never a dangling PROMOTED
            promote(art / "models", saved[f"{best['features']}/{best['model']}"])
    return results, fitted[best_key]


def _save_models(args, data, feats, rows, fitted, decisions, best, promotion, held):
    """Each model to save, with its card and reference embeddings; ``{'features/model': folder}``."""
    from .data import dataset_sha256
    from .evaluation import negatives_metrics
    from .models import save_model
    from .models.workflow import model_card_fields, save_reference_embeddings, unknown_card_fields

    train, test = data.train, data.test
    data_card = {"train": data.train_src, "test": data.test_src, "train_counts": train.counts(),
                 "test_counts": test.counts(), "train_sha256": dataset_sha256(train.paths, train.labels),
                 "test_sha256": dataset_sha256(test.paths, test.labels)}
    model_root, saved = Path(args.artifacts) / "models" / args.run, {}
    for row in rows:
        key, is_best = (row["features"], row["model"]), row is best
        if not (is_best or args.save_all):
            continue
        clf = fitted[key]
        # The best model is the run's folder (what PROMOTED names); --save-all puts the others inside it.
        target = model_root if is_best else model_root / f"{row['features']}-{row['model']}"
        card = model_card_fields(row, clf, decisions[key], run=args.run, seed=args.seed, data=data_card, cv=args.cv,
                                 is_best=is_best)
        if is_best:
            card["promotion"] = promotion
        if is_best and clf.presence_ is not None:
            held_metrics = None if held is None else dict(negatives_metrics(held["groups"], held["labels"]),
                                                          source=held["source"], note=held["note"])
            card["unknown"] = unknown_card_fields(
                clf, row, setting=args.unknown, held_out=held_metrics,
                negatives_used={"source": args.negatives, "n": len(data.negatives or ()),
                                "fraction": args.negatives_fraction, "seed": args.seed, "plus": "catdog_sk.checkset"})
        save_model(clf, target, card=card)
        if "cnn" in feats.test:  # reference sample for embedding-drift monitoring
            own = getattr(feats, "own_test", {}).get(key)
            save_reference_embeddings(target, clf, feats.test["cnn"] if own is None else own, seed=args.seed)
        saved[f"{row['features']}/{row['model']}"] = target
    return saved


def _write_report(args, data, feats, rows, best_clf, decision, best, held, work, *, saved, promotion):
    """The best model's report (+ the comparison of all rows) into ``work``; returns comparison.json's content."""
    from .evaluation import write_report
    from .models.persistence import library_versions

    test = data.test
    _plot_comparison(rows, work / "comparison.png")
    report = write_report(
        work, paths=test.paths, y_true=test.labels, pred=best_clf.classes_[np.argmax(decision.proba, 1)],
        proba=decision.proba, classes=best_clf.classes_,
        title=f"Best model: {best['features']} + {best['model']} on {data.test_src}",
        short_title=f"{best['features']} + {best['model']}",
        extra_md="## All feature sets x models\n\n" + markdown_table(rows)
                 + "\n\n![comparison](comparison.png)\n\nBest model chosen by CV accuracy on train."
                 + "".join(f" The {r['model']} row's CV accuracy is its {r['selection']}." for r in rows
                           if "selection" in r),
        labels=decision.labels if best_clf.presence_ is not None else None,
        presence=decision.presence, threshold=best_clf.presence_threshold_, negatives=held)
    if "negatives" in report:
        best["negatives"] = report["negatives"]
    results = {"run": args.run, "train": data.train_src, "test": data.test_src, "cv": args.cv, "seed": args.seed,
               "backbone": args.backbone, "extract_seconds": round(feats.extract_s, 2),
               "feature_ms_per_image": {k: round(v, 2) for k, v in feats.ms_per_image.items()},
               "rows": rows, "best": {"features": best["features"], "model": best["model"]},
               "models": {k: str(v) for k, v in saved.items()},
               "report": str(Path(args.artifacts) / "reports" / args.run), "promotion": promotion,
               "skipped": feats.skipped, "versions": library_versions()}
    (work / "comparison.json").write_text(json.dumps(results, indent=2, default=str))
    return results


def _print_summary(results, best_clf):
    rows, promotion, report_dir = results["rows"], results["promotion"], Path(results["report"])
    best = next(r for r in rows if (r["features"], r["model"]) == (results["best"]["features"],
                                                                    results["best"]["model"]))
    print(format_table(rows))
    print(f"\nbest (by CV accuracy): {best['features']} + {best['model']} -> test accuracy "
          f"{best['test_accuracy']:.4f}; model: {results['models'][best['features'] + '/' + best['model']]}; "
          f"report: {report_dir / 'report.md'}")
    if best_clf.presence_ is not None:
        line = (f"unknown: answers {best['test_coverage']:.2%} of the test photos, accuracy on those "
                f"{best['test_answered_accuracy']:.4f}")
        if "negatives" in best:
            line += (f"; answers 'unknown' for {best['negatives']['rejected']:.1%} of "
                     f"{best['negatives']['n']} held-out photos of neither")
        print(line)
    print(f"promotion: {'promoted' if promotion['promoted'] else 'not promoted'} ({promotion['reason']})")
    if results["skipped"]:
        print(f"skipped {len(results['skipped'])} unreadable file(s); listed in {report_dir / 'comparison.json'}")


def _claim_run(parser, args):
    """Name the run and create its model folder (mkdir is atomic: a second run with this name stops here).

    Returns the model folder and the folders above it that this call created, for :func:`_release_run`.
    """
    from ._io import check_new_dir
    from .models.persistence import valid_run_name

    if args.run is not None and not valid_run_name(args.run):
        parser.error(f"--run must be one folder name of letters, digits, '.', '_' and '-' (not starting "
                     f"with '.', at most 100 characters); got {args.run!r}")
    args.run = args.run or _cli.unique_name()
    art = Path(args.artifacts)
    model_root, report_dir = art / "models" / args.run, art / "reports" / args.run
    check_new_dir(report_dir, "report folder of run " + repr(args.run))
    check_new_dir(model_root, "model folder of run " + repr(args.run))
    created = [p for p in (model_root, *model_root.parents) if not p.exists()]
    try:
        model_root.mkdir(parents=True)
    except FileExistsError:
        check_new_dir(model_root, "model folder of run " + repr(args.run))
    except OSError as exc:
        from .exceptions import CacheError

        raise CacheError(f"Cannot create {model_root} ({exc.strerror}); check --artifacts.") from None
    return model_root, created


def _release_run(model_root, created):
    """After a failure: remove what this run created, and nothing else."""
    import shutil

    shutil.rmtree(model_root, ignore_errors=True)
    for folder in created[1:]:
        try:
            folder.rmdir()  # only when empty: another run may have written there meanwhile
        except OSError:
            break


def main(argv=None):
    parser = build_parser()

    def body(args):
        model_root, created = _claim_run(parser, args)
        finished = False
        try:
            with _cli.cluster(args) as client:
                status = work(args, client)
            finished = True
            return status
        finally:
            if not finished:  # saving never overwrote another run; only this run's own folder goes
                _release_run(model_root, created)

    def work(args, client):
        plan = _plan(parser, args)
        data = _load_data(args, plan)
        cache = _cli.open_cache(args)
        feats = _features(args, plan, data, cache, client)
        rows, fitted = _search(args, plan, data, feats, client, cache)
        results, best_clf = _save_run(args, plan, data, feats, rows, fitted, cache)
        if args.json:
            _cli.emit_json(results)
        else:
            _print_summary(results, best_clf)
        return _cli.skipped_status(args, len(results["skipped"]))

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
