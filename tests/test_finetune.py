"""model='finetune': a linear probe, then fine-tuning of the backbone, through the estimator, saving and the CLIs."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from catdog_sk import CatDogClassifier
from catdog_sk.data import load_dataset
from catdog_sk.exceptions import BackboneUnavailableError, DatasetError, InvalidParameterError
from catdog_sk.models._finetune import probe_head
from catdog_sk.preprocess import training_crop


def test_training_crop_is_a_seeded_random_square_of_the_base():
    rng = np.random.RandomState(0)
    base = rng.randint(0, 256, size=(256, 256, 3)).astype(np.uint8)
    a = training_crop(base, 224, np.random.RandomState(1))
    b = training_crop(base, 224, np.random.RandomState(1))
    c = training_crop(base, 224, np.random.RandomState(2))
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    import cv2

    whole = cv2.resize(base, (224, 224), interpolation=cv2.INTER_AREA)
    full = training_crop(base, 224, np.random.RandomState(3), min_scale=1.0)  # the whole base, maybe mirrored
    assert np.array_equal(full, whole) or np.array_equal(full, whole[:, ::-1])


def test_probe_head_folds_the_standardisation_into_one_linear_layer():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(0)
    E = rng.normal(size=(60, 16))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    y = (E[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(int)
    coef, intercept = probe_head(E, y, C=0.5, scale="standard")
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000)).fit(E, y)
    np.testing.assert_allclose(E @ coef + intercept, reference.decision_function(E), atol=1e-4)
    coef, intercept = probe_head(E, y, C=0.5, scale=None)
    np.testing.assert_allclose(E @ coef + intercept,
                               LogisticRegression(C=0.5, max_iter=5000).fit(E, y).decision_function(E), atol=1e-4)


@pytest.fixture(scope="module")
def few(shared_data):
    """24 shared training photos (12 + 12) and 20 test photos (10 + 10)."""
    split = load_dataset(shared_data)
    tr = np.r_[0:12, 1000:1012]
    te = np.r_[0:10, 1000:1010]
    return ([split["train"].paths[i] for i in tr], split["train"].labels[tr],
            [split["test"].paths[i] for i in te], split["test"].labels[te])


@pytest.fixture(scope="module")
def tuned(few, feature_cache):
    X, y, _, _ = few
    return CatDogClassifier(model="finetune", epochs=1, scale=None, C=10.0, random_state=0,
                            cache=str(feature_cache)).fit(X, y)


def test_finetune_tunes_the_network_and_records_each_epoch(tuned):
    from catdog_sk.features import make_extractor
    from catdog_sk.features._embed import load_backbone

    ft = tuned.finetune_
    assert [h["epoch"] for h in ft["history"]] == [0, 1]
    assert ft["history"][0]["train_loss"] is None and ft["history"][1]["train_loss"] > 0
    json.dumps(ft, allow_nan=False)  # the model card stays strict JSON
    assert (ft["n_train"], ft["n_val"]) == (22, 2)
    assert ft["best_epoch"] in (0, 1) and 0 <= ft["val_accuracy"] <= 1
    frozen = load_backbone("efficientnet_lite0")[0].state_dict()
    assert list(tuned.tuned_weights_) == list(frozen)
    moved = max(float(np.abs(tuned.tuned_weights_[k] - frozen[k].numpy()).max()) for k in frozen
                if frozen[k].dtype.is_floating_point)
    assert (moved > 0) == (ft["best_epoch"] > 0)
    import torch

    model = load_backbone("efficientnet_lite0")[0]
    norm_keys = [f"{m_name}.{k}" for m_name, m in model.named_modules()
                 if isinstance(m, torch.nn.modules.batchnorm._NormBase) for k in m.state_dict()]
    assert len(norm_keys) > 100  # every BatchNorm's affine parameters and running statistics ...
    for k in norm_keys:  # ... stay exactly as pretrained (the recipe that measured best)
        np.testing.assert_array_equal(tuned.tuned_weights_[k], frozen[k].numpy(), err_msg=k)
    name = tuned.feature_backbone()
    assert name.startswith("efficientnet_lite0@") and name.endswith(ft["sha256"][:12])
    # the cache key says which weights made the features: the tuned ones, not the bundled file
    tuned_key = make_extractor("cnn", backbone=name).config()["backbones"][0]["weights_sha256"]
    bundled_key = make_extractor("cnn").config()["backbones"][0]["weights_sha256"]
    assert tuned_key == ft["sha256"] != bundled_key


def test_finetuned_model_classifies_held_out_photos(tuned, few):
    _, _, X_test, y_test = few
    assert tuned.score(X_test, y_test) >= 0.9
    assert clone(tuned).get_params()["model"] == "finetune" and not hasattr(clone(tuned), "tuned_weights_")


def test_finetuned_model_saves_and_predicts_in_a_fresh_process(tuned, few, tmp_path):
    """A new process has no registered tuned backbone: loading the model must bring its weights."""
    from catdog_sk.models import ModelCard, save_model

    _, _, X_test, _ = few
    folder = save_model(tuned, tmp_path / "model")
    card = ModelCard.load(folder)
    assert card["finetune"]["sha256"] == tuned.finetune_["sha256"]
    assert card["backbone"]["backbones"][0]["weights_sha256"] == tuned.finetune_["sha256"]
    out = subprocess.run([sys.executable, "-m", "catdog_sk.predict", "--model", str(folder), *map(str, X_test[:2]),
                          "--format", "jsonl"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    expected = tuned.predict_proba(X_test[:2])
    got = np.array([[r["probabilities"][str(c)] for c in tuned.classes_] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_early_stopping_keeps_the_linear_probe_when_fine_tuning_hurts(few, feature_cache):
    """A learning rate that wrecks the network: validation loss rises, so the frozen weights are kept."""
    from catdog_sk.features._embed import load_backbone

    X, y, X_test, y_test = few
    clf = CatDogClassifier(model="finetune", epochs=3, learning_rate=0.5, scale=None, C=10.0, random_state=0,
                           cache=str(feature_cache)).fit(X, y)
    assert clf.finetune_["best_epoch"] == 0
    assert [h["epoch"] for h in clf.finetune_["history"]] == [0, 1, 2]  # stopped after two epochs without progress
    frozen = load_backbone("efficientnet_lite0")[0].state_dict()
    assert all(np.array_equal(clf.tuned_weights_[k], frozen[k].numpy()) for k in frozen)
    assert clf.score(X_test, y_test) >= 0.9


@pytest.mark.parametrize("params, message", [
    ({"features": "hog"}, r"The 'features' parameter of CatDogClassifier must be 'cnn' with model='finetune' "
                          r"\(it fine-tunes the CNN\). Got 'hog' instead."),
    ({"backbone": "efficientnet_lite0+efficientnet_lite2"},
     r"The 'backbone' parameter of CatDogClassifier must be one bundled backbone with model='finetune'"),
    ({"epochs": 0}, r"The 'epochs' parameter of CatDogClassifier must be"),
    ({"learning_rate": 0.0}, r"The 'learning_rate' parameter of CatDogClassifier must be"),
])
def test_finetune_parameters_are_checked_before_any_image_is_read(params, message, tmp_path):
    missing = [tmp_path / "never-read-1.jpg", tmp_path / "never-read-2.jpg"]
    with pytest.raises(InvalidParameterError, match=message):
        CatDogClassifier(model="finetune", **params).fit(missing, ["cat", "dog"])


def test_finetune_needs_images_not_features_and_tuned_names_need_their_model():
    from catdog_sk.features import make_extractor

    with pytest.raises(DatasetError, match=r"model='finetune'\) trains the network on the images: call fit\(X, y\)"):
        CatDogClassifier(model="finetune").fit_features(np.zeros((4, 1283)), ["cat", "dog"] * 2)
    with pytest.raises(BackboneUnavailableError, match=r"'efficientnet_lite0@000000000000' is a fine-tuned copy "
                                                       r"of 'efficientnet_lite0'.*load that model"):
        make_extractor("cnn", backbone="efficientnet_lite0@000000000000")


def _small_split(root, shared_data, n_train=20, n_test=10):
    for split, n in (("train", n_train), ("test", n_test)):
        for kind in ("cats", "dogs"):
            (root / split / kind).mkdir(parents=True)
            for photo in sorted((shared_data / split / kind).glob("*.jpg"))[:n]:
                (root / split / kind / photo.name).symlink_to(photo)
    return root


def test_fit_cli_compares_the_finetune_row_with_frozen_features(shared_data, feature_cache, tmp_path):
    from catdog_sk import fit

    data = _small_split(tmp_path / "data", shared_data)
    art = tmp_path / "art"
    status = fit.main(["--data", str(data), "--features", "cnn", "--model", "logreg,finetune", "--epochs", "1",
                       "--cv", "2", "--backbone", "efficientnet_lite0", "--cache", str(feature_cache), "--unknown",
                       "off", "--artifacts", str(art), "--run", "ft", "--save-all", "--quiet"])
    assert status == 0
    results = json.loads((art / "reports" / "ft" / "comparison.json").read_text())
    rows = {r["model"]: r for r in results["rows"]}
    assert set(rows) == {"logreg", "finetune"}
    ft = rows["finetune"]
    assert ft["selection"].startswith("validation accuracy on 4 held-out training photos")
    assert ft["cv_accuracy"] == ft["finetune"]["val_accuracy"] and ft["test_accuracy"] >= 0.9
    assert "The finetune row's CV accuracy is its validation accuracy on 4 held-out" in (
        art / "reports" / "ft" / "report.md").read_text()
    folder = art / "models" / "ft" if results["best"]["model"] == "finetune" else art / "models" / "ft" / "cnn-finetune"
    card = json.loads((folder / "model_card.json").read_text())
    assert card["model"] == "finetune" and card["finetune"]["sha256"] == ft["finetune"]["sha256"]
    assert np.load(folder / "reference_embeddings.npy").shape[1] == 1280


@pytest.mark.parametrize("argv, message", [
    (["--model", "finetune", "--features", "hog"], "--model finetune fine-tunes the CNN: it needs cnn in --features"),
    (["--model", "logreg,xgboost"], "--model must be a comma-separated list of svm, logreg, finetune, all"),
    (["--model", "finetune", "--epochs", "0"], "argument --epochs: must be an int in [1, 1000]; got '0'"),
])
def test_fit_cli_refuses_bad_model_lists_as_usage_errors(argv, message, tmp_path, capsys):
    from catdog_sk import fit

    with pytest.raises(SystemExit) as exc:
        fit.main([*argv, "--data", str(tmp_path), "--artifacts", str(tmp_path / "art")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "art" / "models").exists() or not any((tmp_path / "art" / "models").iterdir())


def test_finetuned_model_exports_to_a_web_folder_with_its_tuned_weights(tuned, few, tmp_path):
    """`write_web` exporting the network itself (no ONNX file to reuse): the graph carries the tuned weights."""
    pytest.importorskip("onnxruntime")
    from conftest import ORT_WEB, need

    from catdog_sk.deploy import OnnxModel
    from catdog_sk.deploy.web import ORT_WEB_FILES, write_web
    from catdog_sk.preprocess import read_image

    if not all((ORT_WEB / f).is_file() for f in ORT_WEB_FILES):
        need(f"ONNX Runtime Web (in {ORT_WEB})", "run `make web-runtime` (npm pack onnxruntime-web)")
    _, _, X_test, _ = few
    folder = write_web(tuned, tmp_path / "web", ort_dir=ORT_WEB, version="tuned")
    assert json.loads((folder / "model.json").read_text())["backbone"] == tuned.feature_backbone()
    labels, proba, _ = OnnxModel(folder / "model.onnx").run([read_image(p) for p in X_test[:4]])
    np.testing.assert_allclose(proba, tuned.predict_proba(X_test[:4]), atol=1e-3)
    assert list(labels) == list(tuned.predict(X_test[:4]))


def test_the_tuned_backbone_is_a_fitted_value_and_predict_writes_nothing(tuned, few):
    """The tuned weights are registered at fit and at load; predict changes neither the estimator nor the process."""
    import pickle

    from catdog_sk.features import _backbones

    _, _, X_test, _ = few
    assert tuned.feature_backbone() == tuned.tuned_backbone_ and tuned.tuned_backbone_.startswith("efficientnet_lite0@")
    before_attrs, before_registry = dict(tuned.__dict__), dict(_backbones._TUNED)
    tuned.predict(X_test[:2])
    assert tuned.__dict__.keys() == before_attrs.keys()
    assert all(tuned.__dict__[k] is v for k, v in before_attrs.items())  # not even rebound
    assert _backbones._TUNED == before_registry
    with _backbones._TUNED_LOCK:
        _backbones._TUNED.clear()  # a fresh process: loading registers the weights again
    try:
        again = pickle.loads(pickle.dumps(tuned))
        assert again.tuned_backbone_ in _backbones._TUNED
        assert list(again.predict(X_test[:2])) == list(tuned.predict(X_test[:2]))
    finally:
        _backbones._TUNED.update(before_registry)
