"""Tune, compare and save cat/dog classifiers: ``python -m catdog_sk.fit --help``."""

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import _cli
from .exceptions import DatasetError
from .registry import FEATURE_SETS, MODELS

ALL_SETS = tuple(FEATURE_SETS)
ALL_MODELS = tuple(MODELS)


def build_parser():
    parser = _cli.make_parser(
        "fit",
        "Tune SVM and logistic-regression pipelines with GridSearchCV (stratified k-fold on the training "
        "set) for each feature set, compare them on the held-out test set, and save the best model with "
        "its model card and an evaluation report.",
        epilog=_cli.SKIPPED_EPILOG + " Failures include one class and too few images.",
    )
    parser.add_argument("--model", default="all", choices=(*ALL_MODELS, "all"), help="classifier family")
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
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without the cache")
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, splits and models")
    parser.add_argument("--run", metavar="NAME", help="run name (default: a UTC timestamp)")
    parser.add_argument("--artifacts", default="artifacts", metavar="DIR",
                        help="where models/<run>/ and reports/<run>/ are written")
    parser.add_argument("--save-all", action="store_true", help="save every tuned model, not only the best")
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
    from .serving import PredictionLog

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


def _champion_decision(models_root, challenger_acc, test, args, cache):
    """Champion/challenger: is the new model at least as good as the promoted one on this test set?"""
    from .models.persistence import PROMOTED_FILE, load_model, promoted_model_dir

    if args.no_promote:
        return {"promoted": False, "reason": "--no-promote"}
    if not (Path(models_root) / PROMOTED_FILE).is_file():
        return {"promoted": True, "reason": "no model was promoted before", "challenger_test_accuracy": challenger_acc}
    champion_dir = promoted_model_dir(models_root)
    try:
        champion = load_model(champion_dir)
        F, keep, _ = champion.featurize(test.paths, on_error="skip", cache=cache, n_jobs=args.jobs)
        proba = champion.predict_features(F).proba
    except Exception as exc:  # noqa: BLE001 - any champion we cannot score is replaced, and the card says why
        return {"promoted": True, "champion": str(champion_dir), "challenger_test_accuracy": challenger_acc,
                "reason": f"the promoted model could not be scored ({type(exc).__name__}: {exc})"}
    champion_acc = float(np.mean(champion.classes_[np.argmax(proba, axis=1)] == test.labels[keep]))
    promoted = challenger_acc >= champion_acc
    return {"promoted": promoted, "champion": str(champion_dir), "champion_test_accuracy": champion_acc,
            "challenger_test_accuracy": challenger_acc,
            "reason": "challenger is at least as accurate on the held-out test set" if promoted
                      else "challenger is less accurate than the promoted model on the held-out test set"}


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


def _negative_features(names, args, cache, negatives):
    """Base features of the photos of neither: the offline check set plus the fitting part of --negatives."""
    from .checkset import non_animal_images
    from .features import extract_features, make_extractor

    extractors = [make_extractor(n, backbone=args.backbone, runtime=args.runtime, caller="fit") for n in names]
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
    from .features import make_extractor

    extractors = [make_extractor(n, backbone=args.backbone, runtime=args.runtime, caller="fit") for n in names]
    res = extract_features_with(client, found.paths, extractors, n_jobs=args.jobs, cache=cache, on_error="skip",
                                progress=_cli.show_progress(args), desc=desc)
    for err in res.errors:
        _cli.log(args, f"skipped {err}")
    base = {n: f[res.ok] for n, f in zip(names, res.features)}
    skipped = [e.as_dict() for e in res.errors]
    return base, found.subset(np.flatnonzero(res.ok)), skipped


def _uncached_ms_per_image(names, found, args, n=32):
    """End-to-end feature cost per image (decode + features, no cache), per base feature."""
    from .features import extract_features, make_extractor

    paths = found.paths[:n]
    out = {}
    for name in names:
        ex = make_extractor(name, backbone=args.backbone, runtime=args.runtime, caller="fit")
        extract_features(paths[:2], [ex], n_jobs=args.jobs)  # warm up (model load, imports)
        res = extract_features(paths, [ex], n_jobs=args.jobs)
        out[name] = 1000 * res.seconds / len(paths)
    return out


def format_table(rows):
    head = (f"{'features':<10} {'model':<7} {'best params':<42} {'CV acc':>15} {'test acc':>9} "
            f"{'ROC AUC':>8} {'log loss':>9} {'fit s':>7} {'ms/img':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["best_params"].items())
        lines.append(
            f"{r['features']:<10} {r['model']:<7} {params:<42} "
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
    from .evaluation import _plt

    plt = _plt()
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


def main(argv=None):
    parser = build_parser()

    def body(args):
        import shutil

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
        # Claim the run's model folder now (mkdir is atomic: a second run with this name stops here), so
        # saving never overwrites another run; on failure only this run's own folder is removed.
        created = [p for p in (model_root, *model_root.parents) if not p.exists()]
        try:
            model_root.mkdir(parents=True)
        except FileExistsError:
            check_new_dir(model_root, "model folder of run " + repr(args.run))
        except OSError as exc:
            from .exceptions import CacheError

            raise CacheError(f"Cannot create {model_root} ({exc.strerror}); check --artifacts.") from None
        finished = False
        try:
            with _cli.cluster(args) as client:
                status = work(args, client)
            finished = True
            return status
        finally:
            if not finished:  # remove what this run created, and nothing else
                shutil.rmtree(model_root, ignore_errors=True)
                for folder in created[1:]:
                    try:
                        folder.rmdir()  # only when empty: another run may have written there meanwhile
                    except OSError:
                        break

    def work(args, client):
        from tqdm.auto import tqdm

        from ._io import atomic_dir
        from .data import dataset_sha256
        from .features import FEATURE_NAMES
        from .models import param_grid, run_search, save_model
        from .models._registry import grid_summary
        from .models.persistence import library_versions, promote, promotion_lock
        from .monitoring import REFERENCE_EMBEDDINGS

        sets = _cli.parse_names(parser, "--features", args.features, ALL_SETS)
        models = list(ALL_MODELS) if args.model == "all" else [args.model]
        if args.cv < 2:
            parser.error(f"--cv must be >= 2; got {args.cv}")
        unknown = parse_unknown(parser, args.unknown)
        if not 0 <= args.negatives_fraction <= 1:
            parser.error(f"--negatives-fraction must be between 0 and 1; got {args.negatives_fraction}")
        if args.jobs is not None and args.jobs == 0:
            parser.error("--jobs must be a positive number or -1 for all CPUs; got 0")
        base_names = [n for n in FEATURE_NAMES if any(n in FEATURE_SETS[s] for s in sets)]
        if "cnn" in base_names:
            from .features import make_extractor

            make_extractor("cnn", backbone=args.backbone, runtime=args.runtime, caller="fit").config()  # fail fast
        negatives = held = None
        if args.negatives and unknown is not None and "cnn" in base_names:
            from .data import find_negatives

            negatives, held = find_negatives(args.negatives).split(args.negatives_fraction, random_state=args.seed)
            _cli.log(args, f"negatives: {len(negatives)} photos for fitting, {len(held)} held out "
                           f"({args.negatives})")
        train, test, train_src, test_src = _resolve_data(args)
        train, extra_src = _add_extra(train, args)
        if extra_src:
            train_src += " + " + " + ".join(extra_src)
        _check_trainable(train, args.cv)
        cache = _cli.open_cache(args)
        run = args.run
        _cli.log(args, f"train: {len(train)} images {train.counts()}; test: {len(test)} images {test.counts()}")

        t0 = time.perf_counter()
        base_train, train, skipped = _extract(train, base_names, args, cache, "train features", client)
        base_test, test, skipped_test = _extract(test, base_names, args, cache, "test features", client)
        skipped += skipped_test
        _check_trainable(train, args.cv)
        # photos of neither need only the features of the sets that can abstain (those with CNN features)
        neg_names = [n for n in base_names if any(n in FEATURE_SETS[s] for s in sets if "cnn" in FEATURE_SETS[s])]
        base_neg = _negative_features(neg_names, args, cache, negatives) if unknown is not None and neg_names \
            else None
        extract_s = time.perf_counter() - t0
        feature_ms = _uncached_ms_per_image(base_names, test, args)

        rows, fitted = [], {}
        from sklearn.model_selection import ParameterGrid

        total = sum(len(ParameterGrid(param_grid(m, fs))) for fs in sets for m in models) * args.cv
        bar = tqdm(total=total, desc="grid search", unit="fit", file=sys.stderr,
                   disable=not _cli.show_progress(args))
        def searching():  # with --backend dask, every CV fit is a task on the cluster's workers
            if client is None:
                return contextlib.nullcontext()
            from .cluster import joblib_on_cluster

            return joblib_on_cluster(client)

        search_jobs = -1 if client is not None else args.jobs
        for fs, m in ((fs, m) for fs in sets for m in models):
            with searching():
                bar.set_postfix_str(f"{fs} / {m}")
                row, clf = run_search(base_train, train.labels, fs, m, cv=args.cv, n_jobs=search_jobs,
                                      random_state=args.seed, progress=bar, base_test=base_test,
                                      y_test=test.labels, backbone=args.backbone, runtime=args.runtime,
                                      unknown=unknown, base_negatives=base_neg)
                row["predict_ms_per_image"] = round(
                    sum(feature_ms[n] for n in FEATURE_SETS[fs]) + row["classifier_ms_per_image"], 2)
                rows.append(row)
                fitted[(fs, m)] = clf
                _cli.log(args, f"{fs:>9} / {m:<6} CV {row['cv_accuracy']:.4f}  test {row['test_accuracy']:.4f}")
        bar.close()
        # The best model is chosen on CV accuracy (training data only), never on the test set.
        best = max(rows, key=lambda r: (round(r["cv_accuracy"], 6), -r["n_features"]))
        art = Path(args.artifacts)
        model_root = art / "models" / run
        report_dir = art / "reports" / run
        data_card = {"train": train_src, "test": test_src, "train_counts": train.counts(),
                     "test_counts": test.counts(), "train_sha256": dataset_sha256(train.paths, train.labels),
                     "test_sha256": dataset_sha256(test.paths, test.labels)}
        # Compare with the model promoted *now*, save and promote in one locked step: two runs
        # finishing together decide one after the other (fcntl.flock on the models root).
        best_clf = fitted[(best["features"], best["model"])]
        X_test = np.hstack([base_test[n] for n in FEATURE_SETS[best["features"]]])
        for clf in fitted.values():  # so that evaluate can leave the photos they were fitted on out
            if negatives is not None and clf.presence_ is not None:
                clf.negatives_sha256_ = tuple(negatives.sha256)
        best_decision = best_clf.predict_features(X_test)
        held_decision = _held_out_negatives(best_clf, held, args, cache) if best_clf.presence_ is not None else None
        with promotion_lock(art / "models"):
            promotion = _champion_decision(art / "models", best["test_accuracy"], test, args, cache)
            with atomic_dir(report_dir) as work:  # the report folder appears whole or not at all
                saved = {}
                for row in rows:
                    is_best = row is best
                    if not (is_best or args.save_all):
                        continue
                    # Test-set probabilities: the card's reference distribution of P(positive), against
                    # which `monitor` measures score drift of live traffic (and the best model's report).
                    row_clf = fitted[(row["features"], row["model"])]
                    decision_r = best_decision if is_best else row_clf.predict_features(
                        np.hstack([base_test[n] for n in FEATURE_SETS[row["features"]]]))
                    proba_r = decision_r.proba
                    target = model_root if not args.save_all else model_root / f"{row['features']}-{row['model']}"
                    card = {"run": run, "seed": args.seed, "data": data_card, "metrics": {
                        k: v for k, v in row.items() if k.startswith("test_") or k in ("cv_accuracy", "cv_std")},
                        "feature_set": row["features"], "model": row["model"], "best_params": row["best_params"],
                        "cv_folds": args.cv, "cv_results": row["cv_results"],
                        "grid": grid_summary(row["model"], row["features"]),
                        "selected_by": "highest mean CV accuracy on the training set", "is_best": is_best,
                        "reference": {"p_positive": [round(float(v), 5) for v in proba_r[:, 1]],
                                      "source": "held-out test set"}}
                    if row_clf.presence_ is not None:  # what `monitor` compares the "unknown" share with
                        card["reference"]["presence"] = [round(float(v), 5) for v in decision_r.presence]
                        card["reference"]["unknown_rate"] = float(np.mean(decision_r.labels.astype(str) == "unknown"))
                    if is_best:
                        card["promotion"] = promotion
                        if best_clf.presence_ is not None:
                            card["unknown"] = {"threshold": best_clf.presence_threshold_, "setting": args.unknown,
                                               "test_coverage": best["test_coverage"],
                                               "test_answered_accuracy": best["test_answered_accuracy"],
                                               "negatives_used": {"source": args.negatives, "n": len(negatives or ()),
                                                                  "fraction": args.negatives_fraction,
                                                                  "seed": args.seed, "plus": "catdog_sk.checkset"}}
                            if held_decision is not None:
                                from .evaluation import negatives_metrics

                                card["unknown"]["negatives"] = dict(
                                    negatives_metrics(held_decision["groups"], held_decision["labels"]),
                                    source=held_decision["source"], note=held_decision["note"])
                    save_model(fitted[(row["features"], row["model"])], target, card=card)
                    if "cnn" in base_test:  # reference sample for embedding-drift monitoring
                        rng = np.random.RandomState(args.seed)
                        pick = np.sort(rng.choice(len(base_test["cnn"]), size=min(500, len(base_test["cnn"])),
                                                  replace=False))
                        width = row_clf.extractors()[-1].embedding_dim  # the embedding, no head columns
                        np.save(target / REFERENCE_EMBEDDINGS, base_test["cnn"][pick, :width], allow_pickle=False)
                    saved[f"{row['features']}/{row['model']}"] = str(target)
                    if is_best:
                        best_target = target

                from .evaluation import write_report

                proba = best_decision.proba
                pred = best_clf.classes_[np.argmax(proba, axis=1)]
                _plot_comparison(rows, work / "comparison.png")
                table_md = markdown_table(rows)
                abstains = best_clf.presence_ is not None
                report = write_report(work, paths=test.paths, y_true=test.labels, pred=pred, proba=proba,
                                      classes=best_clf.classes_,
                                      title=f"Best model: {best['features']} + {best['model']} on {test_src}",
                                      short_title=f"{best['features']} + {best['model']}",
                                      extra_md="## All feature sets x models\n\n" + table_md
                                               + "\n\n![comparison](comparison.png)\n\nBest model chosen by CV accuracy "
                                                 "on train.",
                                      labels=best_decision.labels if abstains else None,
                                      presence=best_decision.presence, threshold=best_clf.presence_threshold_,
                                      negatives=held_decision)
                if "negatives" in report:
                    best["negatives"] = report["negatives"]
                results = {"run": run, "train": train_src, "test": test_src, "cv": args.cv, "seed": args.seed,
                           "backbone": args.backbone, "extract_seconds": round(extract_s, 2),
                           "feature_ms_per_image": {k: round(v, 2) for k, v in feature_ms.items()},
                           "rows": rows, "best": {"features": best["features"], "model": best["model"]},
                           "models": saved, "report": str(report_dir), "promotion": promotion, "skipped": skipped,
                           "versions": library_versions()}
                (work / "comparison.json").write_text(json.dumps(results, indent=2, default=str))
            if promotion["promoted"]:  # last, once the model and its report are whole: never a dangling PROMOTED
                promote(art / "models", best_target)
        if args.json:
            _cli.emit_json(results)
        else:
            print(format_table(rows))
            print(f"\nbest (by CV accuracy): {best['features']} + {best['model']} -> test accuracy "
                  f"{best['test_accuracy']:.4f}; model: {saved[best['features'] + '/' + best['model']]}; "
                  f"report: {report_dir / 'report.md'}")
            if best_clf.presence_ is not None:
                line = (f"unknown: answers {best['test_coverage']:.2%} of the test photos, accuracy on those "
                        f"{best['test_answered_accuracy']:.4f}")
                if "negatives" in best:
                    line += (f"; answers 'unknown' for {best['negatives']['rejected']:.1%} of "
                             f"{best['negatives']['n']} held-out photos of neither")
                print(line)
            print(f"promotion: {'promoted' if promotion['promoted'] else 'not promoted'} ({promotion['reason']})")
            if skipped:
                print(f"skipped {len(skipped)} unreadable file(s); listed in {report_dir / 'comparison.json'}")
        return _cli.skipped_status(args, len(skipped))

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
