"""The training journey of ``python -m catdog_sk.fit`` as five library calls.

Find the photos, extract their base features once, search every feature set x model, save the best
model with its card, report and promotion, and look at the comparison::

    from catdog_sk.data import load_training_data
    from catdog_sk.training import extract_features_for_run, save_run, search_models

    data = load_training_data("../shared/data/catsdogs", negatives="../shared/data/animals10")
    features = extract_features_for_run(data, ["hog", "cnn"], cache="artifacts/cache")
    comparison = search_models(features, ["logreg", "svm"])
    run = save_run(comparison, artifacts="artifacts")
    print(run.summary())

Each step takes plain parameters and an optional ``log`` callback (one line per event); none reads
command-line options. The arrows point one way: this module uses ``data``, ``features``, ``models``
and ``evaluation``, and only the CLI uses it.
"""

import contextlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import TrainingData
from .registry import FEATURE_SETS

__all__ = ["RunFeatures", "Comparison", "RunResult", "extract_features_for_run", "search_models", "save_run",
           "claim_run", "release_run", "feedback_dataset", "feedback_negatives"]


def _quiet(message):
    """The default ``log``: say nothing."""


@dataclass
class RunFeatures:
    """Base features of a run's photos, computed once and shared by every feature set x model.

    Attributes
    ----------
    data : TrainingData
        The photos, without the ones that could not be decoded.
    feature_sets : list of str
    train, test : dict of str to ndarray
        Base features (:data:`catdog_sk.registry.EXTRACTORS` names) of the training and test photos.
    negatives : dict of str to ndarray or None
        Of the photos of neither (check set + fitting part of the negatives), for the sets with CNN
        features, when the run answers "unknown".
    backbone, runtime, device : str
    unknown : 'auto', float or None
    skipped : list of dict
        The photos that could not be decoded (path, reason, detail).
    extract_seconds : float
    ms_per_image : dict of str to float
        Uncached end-to-end cost per image of each base feature, on up to 32 test photos.
    """

    data: TrainingData
    feature_sets: list
    train: dict
    test: dict
    negatives: "dict | None"
    backbone: str
    runtime: str
    device: str
    unknown: object
    skipped: list = field(default_factory=list)
    extract_seconds: float = 0.0
    ms_per_image: dict = field(default_factory=dict)


def _extractors(names, features):
    from .features import make_extractor

    return [make_extractor(n, backbone=features.backbone, runtime=features.runtime, device=features.device,
                           caller="fit") for n in names]


def _extract(images, names, plan, *, cache, n_jobs, client, progress, log, desc):
    """Base features of ``images`` (unreadable ones skipped and logged), the readable subset, the skips."""
    from .cluster import extract_features_with

    res = extract_features_with(client, images.paths, _extractors(names, plan), n_jobs=n_jobs, cache=cache,
                                on_error="skip", progress=progress, desc=desc)
    for err in res.errors:
        log(f"skipped {err}")
    return ({n: f[res.ok] for n, f in zip(names, res.features)}, images.subset(np.flatnonzero(res.ok)),
            [e.as_dict() for e in res.errors])


def _negative_base_features(names, plan, *, cache, n_jobs, progress, log):
    """Base features of :func:`catdog_sk.checkset.negative_images` (the check set + the fitting negatives)."""
    from .checkset import negative_images
    from .features import extract_features

    negatives = plan.data.negatives
    items = negative_images(negatives.paths if negatives is not None else (), random_state=plan.data.random_state)
    res = extract_features(items, _extractors(names, plan), cache=cache, n_jobs=n_jobs, on_error="skip",
                           progress=progress, desc="negatives")
    for err in res.errors:
        log(f"skipped negative {err}")
    return {n: f[res.ok] for n, f in zip(names, res.features)}


def _ms_per_image(names, plan, paths, n_jobs):
    """End-to-end feature cost per image (decode + features, no cache), per base feature."""
    from .features import extract_features

    out = {}
    for name in names:
        (ex,) = _extractors([name], plan)
        extract_features(paths[:2], [ex], n_jobs=n_jobs)  # warm up (model load, imports)
        res = extract_features(paths, [ex], n_jobs=n_jobs)
        out[name] = 1000 * res.seconds / max(1, len(paths))
    return out


def extract_features_for_run(data, feature_sets, *, backbone="efficientnet_lite0", runtime="openvino",
                             device="auto", unknown="auto", cv=5, cache=None, n_jobs=None, client=None,
                             progress=False, log=None):
    """Base features of a run's photos, once for all feature sets: the second step of ``fit``.

    Parameters
    ----------
    data : TrainingData
        From :func:`catdog_sk.data.load_training_data`.
    feature_sets : list of str
        Names from :data:`catdog_sk.registry.FEATURE_SETS`.
    backbone, runtime, device : str
        The CNN's (see :class:`catdog_sk.CatDogClassifier`).
    unknown : 'auto', float or None, default='auto'
        None: no model will answer "unknown", so the photos of neither are not featurized.
    cv : int, default=5
        The folds the search will use: after decoding, each class needs that many photos.
    cache : str or os.PathLike, default=None
        Feature cache folder.
    n_jobs : int, default=None
    client : dask.distributed.Client, default=None
        Extract on a cluster's workers (see :mod:`catdog_sk.cluster`).
    progress : bool, default=False
        Progress bars on stderr.
    log : callable(str), default=None

    Returns
    -------
    features : RunFeatures

    Raises
    ------
    DatasetError
        Too few decodable photos of a class for ``cv`` folds.
    """
    from .features import FEATURE_NAMES

    log = log or _quiet
    names = [n for n in FEATURE_NAMES if any(n in FEATURE_SETS[s] for s in feature_sets)]
    plan = RunFeatures(data, list(feature_sets), {}, {}, None, backbone, runtime, device, unknown)
    start = time.perf_counter()
    kw = dict(cache=cache, n_jobs=n_jobs, client=client, progress=progress, log=log)
    plan.train, train, skipped = _extract(data.train, names, plan, desc="train features", **kw)
    plan.test, test, skipped_test = _extract(data.test, names, plan, desc="test features", **kw)
    plan.data, plan.skipped = replace(data, train=train, test=test), skipped + skipped_test
    plan.data.check_trainable(cv)
    # photos of neither need only the features of the sets that can abstain (those with CNN features)
    neg_names = [n for n in names if any(n in FEATURE_SETS[s] for s in feature_sets if "cnn" in FEATURE_SETS[s])]
    if unknown is not None and neg_names:
        plan.negatives = _negative_base_features(neg_names, plan, cache=cache, n_jobs=n_jobs, progress=progress,
                                                 log=log)
    plan.extract_seconds = time.perf_counter() - start
    plan.ms_per_image = _ms_per_image(names, plan, test.paths[:32], n_jobs)
    return plan


@dataclass
class Comparison:
    """Every feature set x model of a run, tuned on train and scored once on test.

    Attributes
    ----------
    features : RunFeatures
    rows : list of dict
        One per searched model (see :func:`catdog_sk.models.workflow.compare`).
    fitted : dict of (str, str) to CatDogClassifier
    cv, random_state : int
    own_test : dict of (str, str) to ndarray
        Test features of models with their own network (the fine-tuned row).
    """

    features: RunFeatures
    rows: list
    fitted: dict
    cv: int
    random_state: int
    own_test: dict = field(default_factory=dict)

    @property
    def best(self):
        """The row chosen by CV accuracy on train (:func:`catdog_sk.models.workflow.choose_best`).

        Returns
        -------
        row : dict
        """
        from .models.workflow import choose_best

        return choose_best(self.rows)

    def test_features(self, key):
        """The test photos' feature matrix for model ``key`` = (feature set, model).

        Parameters
        ----------
        key : (str, str)

        Returns
        -------
        X : ndarray of shape (n_test, n_features)
        """
        from .models import stack_features

        own = self.own_test.get(key)
        return own if own is not None else stack_features(self.features.test, key[0])


def _searching(client):
    """A context factory: with a dask client, every CV fit is a task on the cluster's workers."""
    if client is None:
        return contextlib.nullcontext
    from .cluster import joblib_on_cluster

    return lambda: joblib_on_cluster(client)


def search_models(features, models, *, finetune=False, epochs=3, cv=5, n_jobs=None, random_state=0, cache=None,
                  client=None, fold_cache=True, progress=False, log=None):
    """Grid-search every feature set x model on train and score each once on test: the third step.

    Parameters
    ----------
    features : RunFeatures
        From :func:`extract_features_for_run`.
    models : list of str
        Names from :data:`catdog_sk.registry.MODELS`.
    finetune : bool, default=False
        Add one row that fine-tunes the first backbone (:func:`catdog_sk.models.workflow.finetune_row`).
    epochs : int, default=3
        Most epochs of fine-tuning.
    cv, n_jobs, random_state : int
    cache : str or os.PathLike, default=None
        Feature cache (the fine-tuned network's features).
    client : dask.distributed.Client, default=None
    fold_cache : bool, default=True
        Cache each fold's fitted transforms on local disk (off for a remote cluster).
    progress : bool, default=False
    log : callable(str), default=None
        One line per searched model.

    Returns
    -------
    comparison : Comparison
    """
    from sklearn.model_selection import ParameterGrid
    from ._progress import progress_bar

    from .models import param_grid
    from .models.workflow import compare

    log = log or _quiet
    ms = features.ms_per_image

    def on_row(row):
        row.setdefault("predict_ms_per_image", round(
            sum(ms[n] for n in FEATURE_SETS[row["features"]]) + row["classifier_ms_per_image"], 2))
        log(f"{row['features']:>9} / {row['model']:<6} CV {row['cv_accuracy']:.4f}  test {row['test_accuracy']:.4f}")

    total = sum(len(ParameterGrid(param_grid(m, fs))) for fs in features.feature_sets for m in models) * cv
    data = features.data
    with progress_bar(total, "grid search", "fit", enabled=progress) as bar:
        rows, fitted = compare(features.train, data.train.labels, features.test, data.test.labels,
                               features.feature_sets, models, cv=cv, n_jobs=-1 if client is not None else n_jobs,
                               random_state=random_state, backbone=features.backbone, runtime=features.runtime,
                               device=features.device, unknown=features.unknown, base_negatives=features.negatives,
                               progress=bar, searching=_searching(client), on_row=on_row, fold_cache=fold_cache)
    comparison = Comparison(features, rows, fitted, cv, random_state)
    if finetune:
        _add_finetune_row(comparison, epochs, on_row, cache=cache, n_jobs=n_jobs, progress=progress, log=log)
    return comparison


def _add_finetune_row(comparison, epochs, on_row, *, cache, n_jobs, progress, log):
    """The fine-tuning row (:func:`catdog_sk.models.workflow.finetune_row`), after the frozen-feature rows."""
    from .features import split_backbones
    from .models.workflow import finetune_row

    feats, data = comparison.features, comparison.features.data
    backbone = split_backbones(feats.backbone)[0]
    log(f"fine-tuning {backbone} on {len(data.train)} training photos (at most {epochs} epochs)")
    row, clf, test_features = finetune_row(
        data.train.paths, data.train.labels, data.test.paths, data.test.labels, backbone=backbone, epochs=epochs,
        negatives=list(data.negatives.paths) if data.negatives is not None else None, unknown=feats.unknown,
        cache=cache, n_jobs=n_jobs, random_state=comparison.random_state, runtime=feats.runtime,
        device=feats.device, verbose=progress)
    on_row(row)
    comparison.rows.append(row)
    comparison.fitted[("cnn", "finetune")] = clf
    comparison.own_test[("cnn", "finetune")] = test_features


@dataclass
class RunResult:
    """What :func:`save_run` wrote.

    Attributes
    ----------
    results : dict
        The content of the report's ``comparison.json``: rows, best, model folders, promotion, skips.
    classifier : CatDogClassifier
        The best model (chosen by CV accuracy on train).
    model_dir, report_dir : pathlib.Path
    """

    results: dict
    classifier: object
    model_dir: Path
    report_dir: Path

    def summary(self):
        """What ``fit`` prints: the comparison table, the best model, "unknown" and promotion lines.

        Returns
        -------
        text : str
        """
        from .evaluation.comparison import format_table

        res, rows = self.results, self.results["rows"]
        best = next(r for r in rows if (r["features"], r["model"]) == (res["best"]["features"], res["best"]["model"]))
        lines = [format_table(rows), "",
                 f"best (by CV accuracy): {best['features']} + {best['model']} -> test accuracy "
                 f"{best['test_accuracy']:.4f}; model: {res['models'][best['features'] + '/' + best['model']]}; "
                 f"report: {self.report_dir / 'index.html'} (open it in a browser; report.md beside it)"]
        from .models.workflow import grid_edges

        lines += [f"note: {note}" for note in grid_edges(best["model"], best["features"], best["best_params"])]
        if res.get("top_two"):
            lines.append(_top_two_text(res["top_two"]))
        if self.classifier.presence_ is not None:
            line = (f"unknown: answers {best['test_coverage']:.2%} of the test photos, accuracy on those "
                    f"{best['test_answered_accuracy']:.4f}")
            if "negatives" in best:
                line += (f"; answers 'unknown' for {best['negatives']['rejected']:.1%} of "
                         f"{best['negatives']['n']} held-out photos of neither")
            lines.append(line)
        promotion = res["promotion"]
        lines.append(f"promotion: {'promoted' if promotion['promoted'] else 'not promoted'} ({promotion['reason']})")
        if res["skipped"]:
            lines.append(f"skipped {len(res['skipped'])} unreadable file(s); listed in "
                         f"{self.report_dir / 'comparison.json'}")
        return "\n".join(lines)


def claim_run(artifacts, run=None):
    """Name a run and create its model folder (``mkdir`` is atomic: a second run with this name stops here).

    Parameters
    ----------
    artifacts : str or os.PathLike
        Holds ``models/<run>/`` and ``reports/<run>/``.
    run : str, default=None
        Default: a UTC timestamp plus random digits.

    Returns
    -------
    run : str
    created : list of pathlib.Path
        The model folder and the folders above it that this call created, for :func:`release_run`.

    Raises
    ------
    CatDogError
        ``run`` is not a safe folder name, or its model or report folder exists.
    """
    from ._io import check_new_dir, unique_name
    from .exceptions import CacheError, InvalidParameterError
    from .models.persistence import valid_run_name

    if run is not None and not valid_run_name(run):
        raise InvalidParameterError(f"The run name must be one folder name of letters, digits, '.', '_' and '-' (not "
                                    f"starting with '.', at most 100 characters). Got {run!r} instead.")
    run = run or unique_name()
    model_root, report_dir = Path(artifacts) / "models" / run, Path(artifacts) / "reports" / run
    check_new_dir(report_dir, "report folder of run " + repr(run))
    check_new_dir(model_root, "model folder of run " + repr(run))
    created = [p for p in (model_root, *model_root.parents) if not p.exists()]
    try:
        model_root.mkdir(parents=True)
    except FileExistsError:
        check_new_dir(model_root, "model folder of run " + repr(run))
    except OSError as exc:
        raise CacheError(f"Cannot create {model_root} ({exc.strerror}); check the artifacts folder.") from None
    return run, created


def release_run(created):
    """After a failure: remove what :func:`claim_run` created (the model folder, and parents left empty).

    Parameters
    ----------
    created : list of pathlib.Path
        What :func:`claim_run` returned.
    """
    import shutil

    if created:
        shutil.rmtree(created[0], ignore_errors=True)
    for folder in created[1:]:
        try:
            folder.rmdir()  # only when empty: another run may have written there meanwhile
        except OSError:
            break


def _feedback(log_path, log):
    from .exceptions import DatasetError
    from .monitoring.log import PredictionLog

    paths, labels, missing = PredictionLog(log_path, create=False).feedback_images()
    for sha in missing if log is not None else ():
        log(f"feedback image {sha[:12]} is neither in the log nor in its uploads folder; skipped")
    return paths, labels


def feedback_dataset(log_path, *, log=None):
    """Photos users labelled cat or dog through ``serve``'s feedback, as a training set for ``extra``.

    Those they said show neither are :func:`feedback_negatives`.

    Parameters
    ----------
    log_path : str or os.PathLike
        The servers' prediction log: a SQLite file (``prediction_log.sqlite``), ``sqlite:///path`` or
        ``postgresql://user@host:port/db``. The photos are kept in it (logs from before that: in
        ``uploads/`` beside the file).
    log : callable(str), default=None
        Told about each labelled image that is no longer there.

    Returns
    -------
    images : catdog_sk.data.LabeledImages

    Raises
    ------
    DatasetError
        No prediction log at ``log_path``.
    """
    from .data import LabeledImages, normalize_label
    from .models.classifier import UNKNOWN

    pets = [(p, y) for p, y in zip(*_feedback(log_path, log or _quiet)) if y != UNKNOWN]
    return LabeledImages([p for p, _ in pets], np.array([normalize_label(y) for _, y in pets], dtype=object),
                         "feedback", str(log_path))


def feedback_negatives(log_path):
    """Photos users said show neither a cat nor a dog (feedback 'neither'), as negatives for fitting.

    A wrongly accepted photo of another animal becomes a negative of the presence model, as a wrongly
    rejected pet becomes a positive through :func:`feedback_dataset`.

    Parameters
    ----------
    log_path : str or os.PathLike
        The servers' prediction log, as for :func:`feedback_dataset`.

    Returns
    -------
    negatives : catdog_sk.data.Negatives or None
        Group ``'feedback'``; None when no feedback said neither.

    Raises
    ------
    DatasetError
        No prediction log at ``log_path``.
    """
    from .data import Negatives, content_hashes
    from .models.classifier import UNKNOWN

    paths = [p for p, y in zip(*_feedback(log_path, None)) if y == UNKNOWN]
    return Negatives(paths, ["feedback"] * len(paths), content_hashes(paths), f"{log_path} (feedback)") if paths \
        else None


def _held_out_decision(clf, data, cache, n_jobs, log):
    """The best model's answers on the held-out photos of neither (``write_report(negatives=...)``)."""
    from .evaluation import negatives_decision

    if clf.presence_ is None or data.held_out is None or not len(data.held_out):
        return None
    decision, skipped = negatives_decision(
        clf, data.held_out, cache=cache, n_jobs=n_jobs,
        note=f"the {{n}} photos held out of fitting (negatives fraction {data.negatives_fraction}, "
             f"seed {data.random_state})")
    for err in skipped:
        log(f"skipped negative {err}")
    return decision


def _data_card(data):
    from .data import dataset_sha256

    train, test = data.train, data.test
    return {"train": data.train_source, "test": data.test_source, "train_counts": train.counts(),
            "test_counts": test.counts(), "train_sha256": dataset_sha256(train.paths, train.labels),
            "test_sha256": dataset_sha256(test.paths, test.labels)}


def _save_models(comparison, decisions, model_root, *, run, save_all, promotion, held, unknown_setting):
    """Each model to save, with its card and reference embeddings; ``{'features/model': folder}``."""
    from .evaluation import negatives_metrics
    from .models import save_model
    from .models.workflow import model_card_fields, save_reference_embeddings, unknown_card_fields

    data, best, saved = comparison.features.data, comparison.best, {}
    for row in comparison.rows:
        key, is_best = (row["features"], row["model"]), row is best
        if not (is_best or save_all):
            continue
        clf = comparison.fitted[key]
        # The best model is the run's folder (what PROMOTED names); save_all puts the others inside it.
        target = model_root if is_best else model_root / f"{row['features']}-{row['model']}"
        card = model_card_fields(row, clf, decisions[key], run=run, seed=comparison.random_state,
                                 data=_data_card(data), cv=comparison.cv, is_best=is_best)
        if is_best:
            card["promotion"] = promotion
        if is_best and clf.presence_ is not None:
            held_metrics = None if held is None else dict(negatives_metrics(held["groups"], held["labels"]),
                                                          source=held["source"], note=held["note"])
            negatives = data.negatives
            card["unknown"] = unknown_card_fields(
                clf, row, setting=unknown_setting, held_out=held_metrics,
                negatives_used={"source": negatives.root if negatives is not None else None,
                                "n": len(negatives or ()), "fraction": data.negatives_fraction,
                                "seed": data.random_state, "plus": "catdog_sk.checkset"})
        save_model(clf, target, card=card)
        if "cnn" in comparison.features.test:  # reference sample for embedding-drift monitoring
            own = comparison.own_test.get(key)
            save_reference_embeddings(target, clf, comparison.features.test["cnn"] if own is None else own,
                                      seed=comparison.random_state)
        saved[f"{row['features']}/{row['model']}"] = target
    return saved


def _run_markdown(comparison, run, version):
    """The report's "Run" table: what produced it, so a page read later says where it came from."""
    import datetime

    from .models.persistence import library_versions

    data = comparison.features.data
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    cells = [("run", run), ("written (UTC)", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")),
             ("model version", version), ("training photos", f"{len(data.train)} from {data.train_source}"),
             ("test photos", f"{len(data.test)} from {data.test_source}"),
             ("cross-validation", f"{comparison.cv}-fold stratified, seed {comparison.random_state}"),
             ("library versions", versions)]
    return "\n".join(["## Run", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in cells], "", ""])


def _top_two(comparison, decisions):
    """The best row against the runner-up (the same CV ranking) on the test photos: the exact McNemar test."""
    from .metrics import mcnemar_test
    from .models.workflow import choose_best

    best = comparison.best
    rest = [r for r in comparison.rows if r is not best]
    if not rest:
        return None
    rows, preds = (best, choose_best(rest)), []
    for row in rows:
        key = (row["features"], row["model"])
        clf = comparison.fitted[key]
        decision = decisions.get(key) or clf.predict_features(comparison.test_features(key))
        preds.append(clf.classes_[np.argmax(decision.proba, 1)])
    test = mcnemar_test(comparison.features.data.test.labels, *preds)
    return dict(best=f"{best['features']} + {best['model']}", runner_up=f"{rows[1]['features']} + {rows[1]['model']}",
                **test)


def _top_two_text(top):
    """One sentence on :func:`catdog_sk.metrics.mcnemar_test` of the top two rows, for the summary and report.

    Parameters
    ----------
    top : dict
        ``comparison.json``'s ``top_two``.

    Returns
    -------
    text : str
    """
    verdict = ("the difference is significant at the 5% level" if top["p_value"] < 0.05 else
               "no evidence that they differ: either could be the better model")
    return (f"top two by CV, {top['best']} against {top['runner_up']} on the {top['n']} test photos: "
            f"{top['errors_a']} vs {top['errors_b']} errors; {top['only_a_right']} photos only the first gets right, "
            f"{top['only_b_right']} only the second; exact McNemar test p = {top['p_value']:.2g} ({verdict})")


def _write_report(comparison, decision, held, work, run, version, top_two):
    """The best model's report (+ the comparison of all rows) into ``work``; returns the report's summary."""
    from .evaluation import write_report
    from .evaluation.comparison import markdown_table, plot_comparison

    rows, best, test = comparison.rows, comparison.best, comparison.features.data.test
    clf = comparison.fitted[(best["features"], best["model"])]
    plot_comparison(rows, work / "comparison.png")
    report = write_report(
        work, paths=test.paths, y_true=test.labels, pred=clf.classes_[np.argmax(decision.proba, 1)],
        proba=decision.proba, classes=clf.classes_,
        title=f"Best model: {best['features']} + {best['model']} on {comparison.features.data.test_source}",
        short_title=f"{best['features']} + {best['model']}",
        extra_md=_run_markdown(comparison, run, version) + "## All feature sets x models\n\n" + markdown_table(rows)
                 + "\n\n![comparison](comparison.png)\n\nBest model chosen by CV accuracy on train."
                 + (f" The {_top_two_text(top_two)}." if top_two else "")
                 + "".join(f" The {r['model']} row's CV accuracy is its {r['selection']}." for r in rows
                           if "selection" in r),
        labels=decision.labels if clf.presence_ is not None else None,
        presence=decision.presence, threshold=clf.presence_threshold_, negatives=held)
    if "negatives" in report:
        best["negatives"] = report["negatives"]


def _results(comparison, run, saved, report_dir, promotion, top_two):
    """The content of ``comparison.json``."""
    from .models.persistence import library_versions

    feats, data, best = comparison.features, comparison.features.data, comparison.best
    return {"run": run, "train": data.train_source, "test": data.test_source, "cv": comparison.cv,
            "seed": comparison.random_state, "backbone": feats.backbone,
            "extract_seconds": round(feats.extract_seconds, 2),
            "feature_ms_per_image": {k: round(v, 2) for k, v in feats.ms_per_image.items()},
            "rows": comparison.rows, "best": {"features": best["features"], "model": best["model"]},
            "top_two": top_two,
            "models": {k: str(v) for k, v in saved.items()}, "report": str(report_dir), "promotion": promotion,
            "skipped": feats.skipped, "versions": library_versions()}


def save_run(comparison, *, artifacts="artifacts", run=None, cache=None, n_jobs=None, save_all=False, promote=True,
             unknown_setting="auto", log=None):
    """Save the best model with its card, write the run's report, and promote it: the fourth step.

    The model folder, the report folder and the promotion are one locked step: two runs finishing
    together decide one after the other, the report folder appears whole or not at all, and
    ``PROMOTED`` is written last, once the model and its report are whole.

    Parameters
    ----------
    comparison : Comparison
        From :func:`search_models`.
    artifacts : str or os.PathLike, default='artifacts'
        Writes ``models/<run>/`` and ``reports/<run>/``.
    run : str, default=None
        The run's name (default: a timestamp); its folders must not exist, except the empty model
        folder :func:`claim_run` created.
    cache, n_jobs
        For scoring the promoted model and the held-out photos of neither.
    save_all : bool, default=False
        Also save every other searched model, in ``models/<run>/<features>-<model>/``.
    promote : bool, default=True
        Promote the best model when it is at least as accurate on the test photos as the promoted one.
    unknown_setting : str, default='auto'
        How "unknown" was asked for, as the card records it.
    log : callable(str), default=None

    Returns
    -------
    result : RunResult
    """
    from ._io import atomic_dir
    from .models.card import CARD_FILE, read_card
    from .models.persistence import promote as promote_model
    from .models.persistence import promotion_lock
    from .models.workflow import champion_decision

    log, art = log or _quiet, Path(artifacts)
    claimed = run is not None and (art / "models" / run).is_dir() and not any((art / "models" / run).iterdir())
    if not claimed:  # claim_run refuses a model folder that exists: a finished run is never written into
        run, _ = claim_run(art, run)
    best, data, fitted = comparison.best, comparison.features.data, comparison.fitted
    best_key = (best["features"], best["model"])
    for clf in fitted.values():  # so that evaluate can leave the photos they were fitted on out
        if data.negatives is not None and clf.presence_ is not None:
            clf.negatives_sha256_ = tuple(data.negatives.sha256)
    decisions = {key: fitted[key].predict_features(comparison.test_features(key))
                 for key in fitted if save_all or key == best_key}
    held = _held_out_decision(fitted[best_key], data, cache, n_jobs, log)
    with promotion_lock(art / "models"):
        promotion = champion_decision(art / "models", best["test_accuracy"], data.test.paths, data.test.labels,
                                      cache=cache, n_jobs=n_jobs, enabled=promote)
        with atomic_dir(art / "reports" / run) as work:
            saved = _save_models(comparison, decisions, art / "models" / run, run=run, save_all=save_all,
                                 promotion=promotion, held=held, unknown_setting=unknown_setting)
            best_dir = saved[f"{best['features']}/{best['model']}"]
            top_two = _top_two(comparison, decisions)
            _write_report(comparison, decisions[best_key], held, work, run, read_card(best_dir / CARD_FILE).version,
                          top_two)
            results = _results(comparison, run, saved, art / "reports" / run, promotion, top_two)
            (work / "comparison.json").write_text(json.dumps(results, indent=2, default=str))
        if promotion["promoted"]:
            promote_model(art / "models", saved[f"{best['features']}/{best['model']}"])
    return RunResult(results, fitted[best_key], art / "models" / run, art / "reports" / run)
