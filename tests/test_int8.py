"""runtime='openvino-int8' (issue 28): NNCF post-training quantisation, calibrated on training photos only, with
the accuracy guard on the make-demo model (the suite's shared ``fit --model all`` run)."""

import numpy as np
import pytest


@pytest.mark.cnn
def test_int8_keeps_the_default_models_answers_within_the_guard(full_run, shared_data, animals10, feature_cache,
                                                                capsys):
    """Test accuracy within 0.2 point of fp32, 'unknown' decisions on the shared test and on animals10's
    held-out other animals within 0.5 point, and the embeddings' cosine to fp32 reported."""
    from catdog_sk.data import content_hashes, load_dataset
    from catdog_sk.features import calibrate_int8, int8_calibration
    from catdog_sk.models import load_model

    clf = load_model(full_run / "models" / "full")
    split = load_dataset(shared_data)
    train, test = split["train"], split["test"]
    calibration = calibrate_int8(train.paths, backbone=clf.backbone)  # training photos only
    test_hashes = set(content_hashes(test.paths))
    assert all(c["n"] == 300 for c in calibration.values())
    assert calibration == {name: int8_calibration(name) for name in clf.backbone.split("+")}
    fitted = set(clf.negatives_sha256_)
    others = [str(p) for p in sorted(animals10.rglob("*")) if p.is_file() and p.parent.name not in ("cat", "dog")]
    held = [p for p, h in zip(others, content_hashes(others)) if h not in fitted]
    assert len(held) == 128 and not test_hashes & fitted

    answers = {}
    for runtime in ("openvino", "openvino-int8"):
        clf.set_params(runtime=runtime, cache=str(feature_cache))  # fp32: the run's cached features
        features = clf.transform_features(test.paths)
        answers[runtime] = (clf.predict_features(features)[0], clf.predict(held), clf.split_features(features)[1])
    (fp_test, fp_held, fp_emb), (q_test, q_held, q_emb) = answers["openvino"], answers["openvino-int8"]
    cosine = (fp_emb * q_emb).sum(1) / np.linalg.norm(fp_emb, axis=1) / np.linalg.norm(q_emb, axis=1)
    right = {k: float(np.mean(a[0] == test.labels)) for k, a in answers.items()}
    unknown = {k: float(np.mean(a[0] == "unknown")) for k, a in answers.items()}
    held_unknown = {k: float(np.mean(a[1] == "unknown")) for k, a in answers.items()}
    with capsys.disabled():
        print(f"\nint8 guard: test right {right}, test unknown {unknown}, animals10 held-out unknown {held_unknown}, "
              f"embedding cosine to fp32 min {cosine.min():.4f} mean {cosine.mean():.4f}, labels identical on "
              f"{int((fp_test == q_test).sum())} of {len(q_test)}")
    assert not np.array_equal(fp_emb, q_emb)  # int8 really ran
    assert cosine.mean() >= 0.98
    assert abs(right["openvino-int8"] - right["openvino"]) <= 0.002
    assert abs(unknown["openvino-int8"] - unknown["openvino"]) <= 0.005
    assert abs(held_unknown["openvino-int8"] - held_unknown["openvino"]) <= 0.005


def test_int8_without_a_calibrated_network_says_how_in_one_line(tmp_path, monkeypatch):
    from catdog_sk.exceptions import BackboneUnavailableError
    from catdog_sk.features import make_extractor

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty OpenVINO cache: nothing calibrated here
    from catdog_sk.features import _runtimes

    _runtimes.load_openvino.cache_clear()
    ex = make_extractor("cnn", backbone="efficientnet_lite0", runtime="openvino-int8")
    assert ex.config()["int8_calibration"] == [None]
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(BackboneUnavailableError, match="calibrate_int8.*--calibrate TRAIN_DIR"):
        ex.finalize([ex.prepare(image)])
    _runtimes.load_openvino.cache_clear()
