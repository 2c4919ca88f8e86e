"""Why an answer is 'unknown' (issue 29 item 2): photos below ``min_side`` are 'too_small' in every surface.

The bundled model (``load_pretrained()``, saved before ``min_side`` existed, so it also proves old models
load with the default) answers a shared test photo downscaled below :data:`MIN_SIDE` with 'unknown' and
the reason 'too_small', in the estimator, the ``predict`` command, the HTTP API and the ONNX description;
the same photo at full size, and at the threshold itself, is not too small.
"""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from catdog_sk._testing import downscaled
from catdog_sk.exceptions import InvalidParameterError
from catdog_sk.models.classifier import MIN_SIDE, NOT_CAT_OR_DOG, TOO_SMALL, UNKNOWN_REASONS

pytestmark = pytest.mark.cnn

TINY = 20  # px: the shorter side of the downscaled copy, below MIN_SIDE


@pytest.fixture(scope="module")
def bundled():
    from catdog_sk import load_pretrained

    return load_pretrained()


@pytest.fixture(scope="module")
def cat(shared_data):
    """A shared test cat the bundled model calls 'cat' at full size."""
    return sorted((shared_data / "test" / "cats").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def tiny_png(cat, tmp_path_factory):
    """The cat brought down to a shorter side of TINY px, saved losslessly."""
    path = tmp_path_factory.mktemp("tiny") / "tiny_cat.png"
    Image.fromarray(downscaled(cat, TINY)).save(path)
    return path


def test_the_default_threshold_and_the_vocabulary():
    from catdog_sk import CatDogClassifier

    assert CatDogClassifier().get_params()["min_side"] == MIN_SIDE == 32
    assert UNKNOWN_REASONS == (TOO_SMALL, NOT_CAT_OR_DOG) == ("too_small", "not_cat_or_dog")


def test_a_photo_below_min_side_is_unknown_as_too_small_whatever_the_network_says(bundled, cat):
    assert bundled.min_side == MIN_SIDE  # saved before the parameter existed: loads with the default
    images = [downscaled(cat, TINY), downscaled(cat, MIN_SIDE), downscaled(cat, 64)]
    for full in ([str(cat)], [np.asarray(Image.open(cat).convert("RGB"))]):  # a path or a decoded array
        assert list(bundled.predict(full)) == ["cat"] and list(bundled.unknown_reason(full)) == [None]
    res = bundled.featurize(images)
    assert list(res.sides) == [TINY, MIN_SIDE, 64]
    decision = bundled.predict_features(res.features, sides=res.sides)
    assert decision.labels[0] == "unknown" and decision.reasons[0] == TOO_SMALL
    assert decision.reasons[1] != TOO_SMALL and decision.reasons[2] != TOO_SMALL  # at the threshold: the network
    assert all((r is None) == (label != "unknown") for label, r in zip(decision.labels, decision.reasons))
    assert list(bundled.unknown_reason(images)) == list(decision.reasons)
    assert 0 < decision.presence[0] < 1  # what the network saw is still reported, beside the reason
    # Features alone carry no size: without sides only the presence score decides.
    assert TOO_SMALL not in bundled.predict_features(res.features).reasons


def test_min_side_moves_or_removes_the_rule(bundled, cat):
    res = bundled.featurize([downscaled(cat, TINY)])
    for min_side, too_small in ((None, False), (TINY, False), (TINY + 1, True)):
        reasons = clone_fitted(bundled, min_side=min_side).predict_features(res.features, sides=res.sides).reasons
        assert (reasons[0] == TOO_SMALL) is too_small, min_side


@pytest.mark.parametrize("value", [0, -3, 2.5, "32", True])
def test_a_bad_min_side_is_refused_in_one_line_before_any_image_is_read(value, bundled, tmp_path):
    """Check that an informative error is raised at fit (before reading images) and at predict."""
    from catdog_sk import CatDogClassifier

    message = f"The 'min_side' parameter of CatDogClassifier must be .* Got {value!r} instead."
    with pytest.raises(InvalidParameterError, match=message):
        CatDogClassifier(min_side=value, unknown="auto").fit([tmp_path / "never-read.jpg"] * 2, ["cat", "dog"])
    clf = clone_fitted(bundled, min_side=value)
    with pytest.raises(InvalidParameterError, match=message):
        clf.predict_features(np.zeros((1, bundled.n_features_), np.float32), sides=[10])


def clone_fitted(clf, **params):
    from sklearn.base import clone

    new = clone(clf).set_params(**params)
    new.__dict__.update({k: v for k, v in vars(clf).items() if k.endswith("_")})
    return new


def test_an_old_pickled_model_gets_the_default(bundled):
    import pickle

    state = pickle.loads(pickle.dumps(bundled)).__dict__.copy()
    state.pop("min_side")
    old = type(bundled).__new__(type(bundled))
    old.__setstate__(state)
    assert old.min_side == MIN_SIDE and old.get_params()["min_side"] == MIN_SIDE


def test_the_predict_command_gives_the_reason_in_json_and_csv(tiny_png, cat, capsys):
    from catdog_sk import predict

    assert predict.main([str(tiny_png), str(cat), "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["label"], r["reason"]) for r in rows] == [("unknown", TOO_SMALL), ("cat", None)]
    assert 0 < rows[0]["presence"] < 1
    assert predict.main([str(tiny_png), str(cat), "--quiet", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["label"], r["reason"]) for r in table] == [("unknown", TOO_SMALL), ("cat", "")]


def test_the_http_api_gives_the_reason(tiny_png, cat, tmp_path):
    from fastapi.testclient import TestClient

    from catdog_sk.pretrained import PRETRAINED_DIR
    from catdog_sk.serving import create_app

    app = create_app(PRETRAINED_DIR, log_db=tmp_path / "log.sqlite")
    with TestClient(app) as client:
        files = [("file", (p.name, p.read_bytes(), "image/png" if p.suffix == ".png" else "image/jpeg"))
                 for p in (tiny_png, cat)]
        response = client.post("/predict", files=files)
        metrics = client.get("/metrics").text
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [(a["label"], a["reason"]) for a in answers] == [("unknown", TOO_SMALL), ("cat", None)]
    assert "presence" in answers[0] and "confidence" in answers[0]
    # /metrics counts each 'unknown' by its reason, so a wave of thumbnails is not read as drift
    assert 'catdog_unknown_total{reason="too_small"} 1.0' in metrics
    assert 'catdog_unknown_total{reason="not_cat_or_dog"} 0.0' in metrics


def test_the_onnx_description_carries_min_side(bundled):
    from catdog_sk.deploy import preprocessing

    spec = preprocessing(bundled)
    assert spec["min_side"] == MIN_SIDE and set(spec["unknown_reasons"]) == set(UNKNOWN_REASONS)
    assert preprocessing(clone_fitted(bundled, min_side=None))["min_side"] is None


def test_the_shorter_side_is_measured_on_the_decoded_photo_and_cached(tmp_path):
    """The same number from the pixels and from the header (a GPU decoder's path), EXIF rotation or not."""
    from catdog_sk.features import ShorterSideExtractor, extract_features
    from catdog_sk.preprocess import read_image

    plan = ShorterSideExtractor()
    paths = []
    for orientation, size in ((1, (50, 20)), (6, (64, 40))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        paths.append(tmp_path / f"o{orientation}.jpg")
        Image.new("RGB", size, (120, 80, 40)).save(paths[-1], exif=exif.tobytes())
    assert [plan.prepare(read_image(p)) for p in paths] == [20, 40]
    assert [plan.prepare_encoded(p.read_bytes(), str(p), None) for p in paths] == [20, 40]
    first = extract_features(paths + [np.zeros((7, 9, 3), np.uint8)], [plan], cache=tmp_path / "cache")
    again = extract_features(paths, [plan], cache=tmp_path / "cache")
    assert first.features[0].ravel().tolist() == [20, 40, 7] and again.features[0].ravel().tolist() == [20, 40]
    assert again.hits == 2 and again.misses == 0
