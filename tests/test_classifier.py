import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from catdog_sk import CatDogClassifier
from catdog_sk.data import load_dataset
from catdog_sk.exceptions import DatasetError, ImageDecodeError, InvalidParameterError
from catdog_sk.models import ModelLoadError, load_model, run_search, save_model


# --- scikit-learn's own checks -----------------------------------------------------------------
# scikit-learn skips every check for an estimator whose input is not a 2-D numeric array, so
# we run them on a subclass that claims numeric input. The checks that pass are real passes of
# the API contract (cloning, params, repr, unfitted errors, one-label data ...); each one that
# must fail is listed with the reason image input makes unavoidable.
class _ChecksOnNumericX(CatDogClassifier):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = False
        return tags


_NUMERIC_X = "X is a sequence of images; the check passes rows of numbers, refused as 'bad_array'"
_MULTICLASS = "cats vs dogs is binary; the check fits 3 or more classes, refused with a DatasetError"
_EXPECTED_FAILURES = {
    **dict.fromkeys([
        "check_estimators_dtypes", "check_complex_data", "check_estimators_empty_data_messages",
        "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimator_sparse_tag",
        "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_estimators_pickle",
        "check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_train",
        "check_classifiers_regression_target", "check_class_weight_classifiers",
        "check_decision_proba_consistency", "check_fit2d_1sample", "check_fit2d_1feature",
        "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
        "check_requires_y_none", "check_positive_only_tag_during_fit",
    ], _NUMERIC_X),
    **dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_dtype_object", "check_f_contiguous_array_estimator", "check_supervised_y_2d",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_dict_unchanged",
        "check_fit2d_predict1d",
    ], _MULTICLASS),
}


@parametrize_with_checks([_ChecksOnNumericX(features="color")],
                         expected_failed_checks=lambda est: _EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- explicit contract on real photos ----------------------------------------------------------

@pytest.fixture(scope="module")
def small_split(shared_data):
    """60 train and 40 test photos, balanced, from the shared split."""
    splits = load_dataset(shared_data)

    def take(found, n):
        idx = np.concatenate([np.flatnonzero(found.labels == c)[:n // 2] for c in ("cat", "dog")])
        return [found.paths[i] for i in idx], found.labels[idx]

    return take(splits["train"], 60), take(splits["test"], 40)


def test_init_only_stores_and_params_round_trip():
    clf = CatDogClassifier(model="svm", C=3.0, features="hog+color")
    assert clf.get_params()["C"] == 3.0 and clone(clf).get_params() == clf.get_params()
    assert not [k for k in vars(clf) if k.endswith("_")]
    # invalid values are accepted by __init__/set_params and refused by fit, before any image is read
    clf.set_params(model="forest")
    with pytest.raises(InvalidParameterError,
                       match=r"The 'model' parameter of CatDogClassifier must be one of 'logreg', 'svm' or "
                             r"'finetune'\. Got 'forest' instead\."):
        clf.fit(["/does/not/exist.jpg", "/nor/this.jpg"], ["cat", "dog"])


def test_unfitted_predict_raises_not_fitted():
    with pytest.raises(NotFittedError):
        CatDogClassifier().predict(["x.jpg"])


def test_fit_refuses_one_class_and_length_mismatch(small_split):
    (paths, labels), _ = small_split
    with pytest.raises(DatasetError, match="exactly two classes; got 1"):
        CatDogClassifier(features="color").fit(paths[:5], ["cat"] * 5)
    with pytest.raises(DatasetError, match="X has 5 images but y has 4 labels"):
        CatDogClassifier(features="color").fit(paths[:5], ["cat", "dog"] * 2)
    with pytest.raises(InvalidParameterError, match="sequence of images"):
        CatDogClassifier(features="color").fit(paths[0], labels[:1])


def test_fit_predict_proba_and_classes_order(small_split, feature_cache):
    (X, y), (X_test, y_test) = small_split
    clf = CatDogClassifier(features="hog+color", model="svm", C=1.0, cache=feature_cache).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog"] and clf.feature_names_ == ("hog", "color")
    proba = clf.predict_proba(X_test)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = clf.decision_function(X_test)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[(scores > 0).astype(int)])
    assert 0.0 <= clf.score(X_test, y_test) <= 1.0


def test_integer_labels_are_kept(small_split, feature_cache):
    (X, y), (X_test, _) = small_split
    y01 = (y == "dog").astype(int)
    clf = CatDogClassifier(features="color", cache=feature_cache).fit(X, y01)
    assert list(clf.classes_) == [0, 1] and set(clf.predict(X_test)) <= {0, 1}


@pytest.mark.cnn
def test_grid_search_over_model_and_C_and_cross_val_and_pipeline(small_split, feature_cache, shared_embeddings):
    (X, y), (X_test, y_test) = small_split
    search = GridSearchCV(CatDogClassifier(cache=feature_cache),
                          {"model": ["logreg", "svm"], "C": [0.01, 1.0]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"model", "C"}
    assert len(search.cv_results_["params"]) == 4
    assert search.score(X_test, y_test) >= 0.9  # CNN features: even 60 photos suffice
    scores = cross_val_score(CatDogClassifier(cache=feature_cache), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() >= 0.8
    pipe = Pipeline([("clf", CatDogClassifier(cache=feature_cache))]).fit(X, y)
    assert pipe.score(X_test, y_test) >= 0.9


@pytest.mark.cnn
def test_pickle_joblib_and_skops_round_trips_predict_identically(small_split, feature_cache, tmp_path,
                                                                  shared_embeddings):
    (X, y), (X_test, _) = small_split
    clf = CatDogClassifier(cache=feature_cache).fit(X, y)
    expected = clf.predict_proba(X_test)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X_test), expected)
    joblib.dump(clf, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(X_test), expected)
    save_model(clf, tmp_path / "model", card={"run": "test"})
    loaded = load_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(X_test), expected)
    assert loaded.card_["run"] == "test" and loaded.card_["backbone"]["backbones"][0]["backbone"] == "efficientnet_lite0"


def test_tampered_or_foreign_model_files_are_refused(small_split, tmp_path):
    import skops.io as sio

    (X, y), _ = small_split
    clf = CatDogClassifier(features="color").fit(X, y)
    save_model(clf, tmp_path / "m")
    model_file = tmp_path / "m" / "model.skops"
    # 1. bytes changed after saving: the card's SHA-256 no longer matches
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(ModelLoadError, match="SHA-256 does not match"):
        load_model(tmp_path / "m")
    # 2. a file naming a foreign type (no card to vouch for it)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sio.dump({"model": clf, "payload": _Foreign()}, foreign / "model.skops")
    with pytest.raises(ModelLoadError, match=r"does not trust: .*_Foreign"):
        load_model(foreign)
    # 3. not a model at all
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.skops").write_bytes(b"PK not really")
    with pytest.raises(ModelLoadError, match="not a skops model file"):
        load_model(tmp_path / "junk")


class _Foreign:
    pass


@pytest.mark.cnn
def test_same_seed_same_cv_scores_with_one_or_two_jobs(shared_features):
    X, y = shared_features["train"]
    idx = np.r_[0:150, 1000:1150]
    base = {"cnn": X[idx]}
    row1, _ = run_search(base, y[idx], "cnn", "logreg", cv=3, n_jobs=1, random_state=3)
    row2, _ = run_search(base, y[idx], "cnn", "logreg", cv=3, n_jobs=2, random_state=3)
    assert [r["mean"] for r in row1["cv_results"]] == [r["mean"] for r in row2["cv_results"]]
    assert row1["best_params"] == row2["best_params"]
    row3, _ = run_search(base, y[idx], "cnn", "logreg", cv=3, n_jobs=1, random_state=4)
    assert [r["mean"] for r in row3["cv_results"]] != [r["mean"] for r in row1["cv_results"]]


def test_augmented_copies_enlarge_the_training_set(small_split, feature_cache):
    (X, y), _ = small_split
    idx = [0, 1, 2, 3, 4, -5, -4, -3, -2, -1]
    X10, y10 = [X[i] for i in idx], y[idx]
    clf = CatDogClassifier(features="color", augment=2, random_state=0, cache=feature_cache).fit(X10, y10)
    assert clf.pipeline_.named_steps["scale"].n_samples_seen_ == 30
    # the same seed gives the same augmented copies, hence the same model
    again = CatDogClassifier(features="color", augment=2, random_state=0).fit(X10, y10)
    np.testing.assert_array_equal(again.predict_proba(X10), clf.predict_proba(X10))


@pytest.mark.cnn
def test_unknown_for_photos_of_neither_and_it_survives_saving(small_split, feature_cache, tmp_path,
                                                               shared_embeddings, animals10):
    from catdog_sk.checkset import non_animal_images
    from catdog_sk.data import find_negatives

    (X, y), (X_test, y_test) = small_split
    negatives, held = find_negatives(animals10).split(0.5, random_state=0)
    clf = CatDogClassifier(unknown="auto", cache=str(feature_cache), random_state=0)
    clf.fit(X, y, negatives=negatives.paths)
    assert clf.presence_threshold_ == 0.5 and set(clf.negatives_sha256_) == set(negatives.sha256)
    _, others = non_animal_images(n_crops=2, random_state=1)  # other crops and scenes than the fitted ones
    pred_others = clf.predict(others)
    pred_held = clf.predict(held.paths)
    pred_test = clf.predict(X_test)
    assert np.mean(pred_others == "unknown") >= 0.8  # most non-animal photos
    assert np.mean(pred_held == "unknown") >= 0.8  # most other animals, none of them seen in fitting
    assert np.mean(pred_test == "unknown") <= 0.1  # few cat/dog photos
    known = pred_test != "unknown"
    np.testing.assert_array_equal(pred_test[known], clf.classes_[clf.predict_proba(X_test).argmax(1)][known])
    np.testing.assert_array_equal(clf.presence_score(others) < 0.5, pred_others == "unknown")
    # one decision path: featurize + predict_features is what predict does
    F, ok, errors, _ = clf.featurize(held.paths, on_error="skip")
    assert len(ok) == len(held) and not errors
    np.testing.assert_array_equal(clf.predict_features(F).labels, pred_held)
    save_model(clf, tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(others), pred_others)
    # a stricter threshold abstains at least as often; without unknown, always cat or dog
    strict = clone(clf).set_params(unknown=0.9).fit(X, y, negatives=negatives.paths)
    assert np.all((strict.predict(X_test) == "unknown") >= (pred_test == "unknown"))
    plain = clone(clf).set_params(unknown=None).fit(X, y)
    assert set(plain.predict(others)) <= {"cat", "dog"} and plain.presence_ is None
    np.testing.assert_array_equal(plain.presence_score(others), 1.0)


def test_unknown_needs_cnn_features_and_is_checked_first():
    with pytest.raises(InvalidParameterError, match="'unknown' parameter of CatDogClassifier needs CNN"):
        CatDogClassifier(features="hog", unknown="auto").fit(["never-read.jpg"] * 4, ["cat", "dog"] * 2)
    for bad in (0.0, 1.0, 1.5, "yes", True):
        with pytest.raises(InvalidParameterError, match=r"'unknown' parameter of CatDogClassifier must be None, "
                                                        r"'auto' or a float in the open interval \(0, 1\)"):
            CatDogClassifier(unknown=bad).fit(["never-read.jpg"] * 4, ["cat", "dog"] * 2)


def test_fit_features_checks_widths_and_negatives(shared_features):
    from catdog_sk.exceptions import DatasetError

    F, y = shared_features["train"]
    idx = np.r_[0:20, 1000:1020]
    with pytest.raises(DatasetError, match="expects 1283 feature columns; got an array of shape"):
        CatDogClassifier().fit_features(F[idx, :1280], y[idx])
    with pytest.raises(DatasetError, match="needs features of photos of neither"):
        CatDogClassifier(unknown="auto").fit_features(F[idx], y[idx])
    clf = CatDogClassifier().fit_features(F[idx], y[idx])
    with pytest.raises(DatasetError, match="fitted on 1283 feature columns"):
        clf.predict_features(F[:3, :10])
    # the cat/dog classifier never sees the ImageNet head's columns
    assert clf.pipeline_.named_steps["scale"].n_features_in_ == 1280


def test_vlad_encoder_shapes_norms_and_errors():
    from catdog_sk.models import VLADEncoder

    rng = np.random.RandomState(0)
    X = rng.rand(30, 40 * 8).astype(np.float32)
    enc = VLADEncoder(n_clusters=5, n_components=4, descriptor_dim=8, random_state=0).fit(X)
    out = enc.transform(X)
    assert out.shape == (30, 20) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-5)
    again = VLADEncoder(n_clusters=5, n_components=4, descriptor_dim=8, random_state=0).fit(X).transform(X)
    np.testing.assert_array_equal(out, again)
    # an image's VLAD does not depend on which other images share its batch
    np.testing.assert_allclose(enc.transform(X[3:4]), out[3:4], rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="whole descriptors of 7 values"):
        VLADEncoder(descriptor_dim=7).fit(X)
    with pytest.raises(InvalidParameterError, match="fitted on 320"):
        enc.transform(X[:, :160])


def test_vlad_features_fit_and_predict_without_a_network(small_split, tmp_path):
    (X, y), (X_test, _) = small_split
    clf = CatDogClassifier(features="vlad", scale=None, C=3.0, cache=str(tmp_path / "c"), random_state=0)
    clf.fit(X[:10] + X[-10:], np.concatenate([y[:10], y[-10:]]))
    assert clf.n_features_ == 60112 + 1228
    assert clf.predict_proba(X_test[:4]).shape == (4, 2)
    assert [ex.name for ex in clf.extractors()] == ["dense", "texture"]  # no CNN anywhere


@pytest.mark.cnn
def test_grid_search_on_cached_features_through_the_public_boundary(small_split, feature_cache, tmp_path):
    """featurize once, then fit_features / predict_features per candidate: what `fit` does, from a notebook."""
    from catdog_sk.features import extract_features

    (X, y), (X_test, y_test) = small_split
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    base = CatDogClassifier(cache=str(feature_cache), random_state=0)
    F, ok, errors, _ = base.featurize(list(X) + [broken], on_error="skip")
    assert list(ok) == list(range(len(X))) and [e.path for e in errors] == [str(broken)]
    with pytest.raises(ImageDecodeError):
        base.featurize([broken])
    # the same matrix from the extraction engine with the estimator's own extractor plans
    res = extract_features(list(X), base.extractors(), cache=str(feature_cache))
    np.testing.assert_array_equal(np.hstack(res.features), F)
    F_test = base.featurize(X_test).features
    scores = {}
    for C in (0.001, 0.1):
        clf = clone(base).set_params(C=C).fit_features(F, y)
        decision = clf.predict_features(F_test)
        scores[C] = np.mean(decision.labels == np.asarray(y_test))
        # the boundary decides exactly as the image-level methods do
        np.testing.assert_array_equal(decision.labels, clf.predict(X_test))
        np.testing.assert_allclose(decision.proba, clf.predict_proba(X_test))
    assert max(scores.values()) >= 0.9, scores
