"""The model bundled with the package: predicts without training, states its terms, and rebuilds the same."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def sample(shared_data, animals10):
    """100 shared test photos of each class and 24 of animals10's other animals."""
    pets = [str(p) for d in ("cats", "dogs") for p in sorted((shared_data / "test" / d).glob("*.jpg"))[:100]]
    others = [str(p) for d in sorted(animals10.iterdir()) if d.name not in ("cat", "dog")
              for p in sorted(d.iterdir())[:3]]
    return pets, others


@pytest.mark.cnn
def test_the_bundled_model_predicts_at_once_and_states_its_terms(sample):
    from catdog_sk import load_pretrained

    clf = load_pretrained()
    card = clf.card_
    assert "non-commercial" in card["terms"] and card["params"]["backbone"] == "efficientnet_lite0+efficientnet_lite2"
    assert card["metrics"]["test_accuracy"] >= 0.99  # measured on the shared test set when it was built
    pets, others = sample
    labels = clf.predict(pets + others).astype(str)
    truth = np.array(["cat"] * 100 + ["dog"] * 100)
    answered = labels[:200] != "unknown"
    assert answered.mean() >= 0.97 and (labels[:200][answered] == truth[answered]).mean() >= 0.99
    assert (labels[200:] == "unknown").mean() >= 0.85


@pytest.mark.cnn
def test_predict_without_model_uses_it_and_says_so(sample):
    pets, _ = sample
    proc = subprocess.run([sys.executable, "-m", "catdog_sk.predict", pets[0], pets[-1]], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "no --model: using the model bundled with catdog_sk" in proc.stderr
    assert [json.loads(line)["label"] for line in proc.stdout.splitlines()] == ["cat", "dog"]


@pytest.mark.cnn
def test_a_predict_after_the_first_builds_no_pytorch_network(sample):
    """Issue 27 (a first predict took 58.8 s): once a process has compiled the networks and kept their heads,
    the next predict neither imports timm and torchvision nor builds a network, and answers the same."""
    from catdog_sk.features._loading import _HEADS, _cached_head, load_backbone

    pets, _ = sample
    code = ("import sys; from catdog_sk import predict; status = predict.main(sys.argv[1:] + ['--quiet']); "
            "print('imported:', sorted(m for m in ('timm', 'torchvision') if m in sys.modules), file=sys.stderr); "
            "sys.exit(status)")
    runs = [subprocess.run([sys.executable, "-c", code, *pets[:3]], cwd=REPO, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[1].stdout == runs[0].stdout and len(runs[1].stdout.splitlines()) == 3
    assert runs[1].stderr.strip().splitlines()[-1] == "imported: []", runs[1].stderr
    load_backbone("efficientnet_lite0")  # the head kept on disk is the network's own, bit for bit
    (weight, bias), built = _cached_head("efficientnet_lite0"), _HEADS["efficientnet_lite0"]
    assert np.array_equal(weight, built[0]) and np.array_equal(bias, built[1])


@pytest.mark.cnn
def test_a_rebuild_from_the_photos_predicts_the_same_labels(full_run, shared_data, animals10, feature_cache,
                                                            tmp_path, sample):
    """full_run filled the session cache with the same features; the rebuild is the documented command."""
    from catdog_sk import load_pretrained
    from catdog_sk.models import load_model
    from catdog_sk.pretrained import main

    assert main(["--data", str(shared_data), "--negatives", str(animals10), "--out", str(tmp_path / "m"),
                 "--cache", str(feature_cache), "--quiet"]) == 0
    rebuilt, bundled = load_model(tmp_path / "m"), load_pretrained()
    pets, others = sample
    assert list(rebuilt.predict(pets + others)) == list(bundled.predict(pets + others))
    assert rebuilt.card_["metrics"]["test_accuracy"] == bundled.card_["metrics"]["test_accuracy"]
