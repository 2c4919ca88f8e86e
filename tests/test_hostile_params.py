"""Bad parameters: one constraints table per estimator, checked at the start of fit, and CLI numbers likewise.

Every refused value gets the one grammar ("The 'x' parameter of CatDogClassifier must be ... Got ... instead.")
before any image is read, and every command refuses a non-finite, negative or out-of-range number as a
usage error (exit 2) before any work.
"""

import numpy as np
import pytest

from catdog_sk import CatDogClassifier
from catdog_sk.exceptions import InvalidParameterError

NAN, INF = float("nan"), float("inf")

BAD = [("C", NAN), ("C", INF), ("C", -1.0), ("C", "1"), ("gamma", INF), ("gamma", NAN), ("random_state", -1),
       ("random_state", 2**32), ("random_state", 1.5), ("learning_rate", NAN), ("learning_rate", 2.0),
       ("epochs", 0), ("augment", -1), ("batch_size", 0), ("pca", 0), ("n_jobs", 0), ("n_jobs", True),
       ("class_weight", {"cat": NAN, "dog": 1}), ("class_weight", {"cat": -1, "dog": 1}), ("class_weight", "auto"),
       ("unknown", 1.0), ("unknown", NAN), ("features", "sift"), ("model", "forest"), ("runtime", "onnx"),
       ("device", "gpu"), ("verbose", "yes"), ("cache", 3), ("backbone", "")]


@pytest.mark.parametrize("name, value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_each_bad_value_is_one_line_in_the_grammar_before_any_image_is_read(name, value, tmp_path):
    clf = CatDogClassifier(**{name: value})
    with pytest.raises(InvalidParameterError) as exc:
        clf.fit([str(tmp_path / "missing-a.jpg"), str(tmp_path / "missing-b.jpg")], ["cat", "dog"])
    message = str(exc.value)
    assert message.startswith(f"The {name!r} parameter of CatDogClassifier must be ") and "\n" not in message
    assert message.endswith(" instead."), message


@pytest.fixture(scope="module")
def colour_features():
    """Colour-histogram features of 60 generated images, labels 'cat' and 'dog' by a noisy rule."""
    rng = np.random.RandomState(0)
    clf = CatDogClassifier(features="color")
    F = rng.rand(60, clf.extractors()[0].n_features_out).astype(np.float32)
    y = np.where(F[:, 0] + 0.8 * rng.rand(60) > 0.9, "dog", "cat").astype(object)
    return F, y


def test_class_weight_takes_the_users_labels(colour_features):
    F, y = colour_features
    plain = CatDogClassifier(features="color", C=1.0, random_state=0).fit_features(F, y)
    heavy = CatDogClassifier(features="color", C=1.0, random_state=0,
                             class_weight={"cat": 1.0, "dog": 20.0}).fit_features(F, y)
    assert list(heavy.classes_) == ["cat", "dog"]

    def intercept(clf):  # the logistic regression fitted on all rows (Platt scaling then recalibrates its scores)
        return float(clf.pipeline_.named_steps["clf"].calibrated_classifiers_[0].estimator.intercept_[0])

    assert intercept(heavy) > intercept(plain) + 0.5  # the weight reached scikit-learn: dogs count 20 times
    with pytest.raises(InvalidParameterError, match="must give a weight to each class \\('cat', 'dog'\\)"):
        CatDogClassifier(features="color", class_weight={"cat": 1, "bird": 2}).fit_features(F, y)


CLI = [
    ("fit", ["--negatives-fraction", "nan"]), ("fit", ["--seed", "-1"]), ("fit", ["--cv", "1"]),
    ("fit", ["--epochs", "inf"]), ("fit", ["--jobs", "0"]), ("extract", ["--batch-size", "0"]),
    ("extract", ["--max-pixels", "-5"]), ("evaluate", ["--jobs", "x"]), ("predict", ["--jobs", "0"]),
    ("serve", ["--max-upload-mb", "nan"]), ("serve", ["--timeout=-inf"]), ("serve", ["--port", "70000"]),
    ("monitor", ["--unknown-alpha", "1"]), ("monitor", ["--max-psi", "nan"]), ("monitor", ["--since", "-2"]),
]


@pytest.mark.parametrize("command, argv", CLI, ids=[f"{c} {' '.join(a)}" for c, a in CLI])
def test_cli_numbers_are_usage_errors_before_any_work(command, argv, capsys, tmp_path):
    import importlib

    main = importlib.import_module(f"catdog_sk.{command}").main
    needed = {"evaluate": ["--model", str(tmp_path), "--data", str(tmp_path)],
              "predict": ["--model", str(tmp_path), str(tmp_path)], "serve": ["--model", str(tmp_path)],
              "monitor": ["--db", str(tmp_path / "log.sqlite")]}.get(command, [])
    with pytest.raises(SystemExit) as exc:
        main([*needed, *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {argv[0].split('=')[0]}: must be " in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # nothing was written
