"""fit and evaluate, end to end, on the shared photos."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from catdog_sk import evaluate, fit, predict
from catdog_sk.models import load_model

from conftest import save, textured_image


def _subset(shared_data, tmp_path, n_train=40, n_test=20):
    """A small split root (train/, test/) of real photos, copied so tests may add bad files."""
    root = tmp_path / "data"
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in ("cats", "dogs"):
            files = sorted((shared_data / split / cls).glob("*.jpg"))[: n // 2]
            (root / split / cls).mkdir(parents=True)
            for f in files:
                shutil.copy(f, root / split / cls / f.name)
    return root


def test_fit_refuses_a_single_class_with_one_line(tmp_path, capsys):
    for k in range(6):
        save(textured_image(seed=k), tmp_path / "data" / "cats" / f"{k}.png")
    code = fit.main(["--data", str(tmp_path / "data"), "--features", "color", "--no-cache",
                     "--artifacts", str(tmp_path / "art"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "single class" in err[0]
    assert not (tmp_path / "art").exists()  # nothing half-written


def test_fit_refuses_too_few_images_for_cv(tmp_path, capsys):
    for k in range(3):
        save(textured_image(seed=k), tmp_path / "data" / "cats" / f"{k}.png")
        save(textured_image(seed=9 + k), tmp_path / "data" / "dogs" / f"{k}.png")
    assert fit.main(["--data", str(tmp_path / "data"), "--features", "color", "--no-cache", "--cv", "5",
                     "--quiet"]) == 1
    assert "too few images for 5-fold CV" in capsys.readouterr().err


def test_fit_usage_errors_exit_2(tmp_path):
    for argv in (["--features", "sift"], ["--model", "forest"], ["--cv", "1", "--data", str(tmp_path)]):
        with pytest.raises(SystemExit) as info:
            fit.main(argv)
        assert info.value.code == 2


def test_fit_then_evaluate_writes_model_card_report_and_plots(shared_data, tmp_path, feature_cache, capsys):
    data = _subset(shared_data, tmp_path)
    (data / "train" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    art = tmp_path / "art"
    code = fit.main(["--data", str(data), "--features", "color,hog+color", "--model", "all", "--cv", "3",
                     "--cache", str(feature_cache), "--artifacts", str(art), "--run", "r1", "--json", "--quiet"])
    assert code == 3  # done; the broken file is listed
    out = json.loads(capsys.readouterr().out)
    assert [(r["features"], r["model"]) for r in out["rows"]] == [
        ("color", "svm"), ("color", "logreg"), ("hog+color", "svm"), ("hog+color", "logreg")]
    for r in out["rows"]:
        assert 0 <= r["test_accuracy"] <= 1 and r["cv_std"] >= 0 and r["predict_ms_per_image"] > 0
    best = max(out["rows"], key=lambda r: r["cv_accuracy"])
    assert (out["best"]["features"], out["best"]["model"]) == (best["features"], best["model"])
    model_dir = art / "models" / "r1"
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["data"]["train_counts"] == {"cat": 20, "dog": 20}  # the broken file was skipped
    assert card["metrics"]["test_accuracy"] == best["test_accuracy"]
    assert {"versions", "seed", "cv_results", "grid", "model_sha256", "created"} <= set(card)
    assert "## Metrics" in (model_dir / "model_card.md").read_text()
    report = art / "reports" / "r1"
    for png in ("confusion", "roc", "pr", "calibration", "top_losses", "comparison"):
        with Image.open(report / f"{png}.png") as im:
            assert im.width > 200 and im.height > 200
    assert "| hog+color | svm |" in (report / "report.md").read_text()
    page = (report / "index.html").read_text()  # the same report as one page, plots inline
    assert "<table>" in page and "<td>hog+color</td>" in page
    assert all(f'src="{png}.png"' in page for png in ("confusion", "roc", "comparison", "top_losses"))

    code = evaluate.main(["--model", str(model_dir), "--data", str(data / "test"), "--cache", str(feature_cache),
                          "--out", str(tmp_path / "eval"), "--json", "--quiet"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test_accuracy"] == pytest.approx(best["test_accuracy"])
    assert (tmp_path / "eval" / "calibration.png").exists()
    clf = load_model(model_dir)
    paths = sorted((data / "test").rglob("*.jpg"))
    assert clf.predict(paths).shape == (20,)

    # predict: one JSON line per image in input order; unreadable files get an error line
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    code = predict.main(["--model", str(model_dir), str(data / "test" / "cats"), str(tmp_path / "junk.jpg"),
                         str(tmp_path / "missing.jpg"), "--quiet"])
    assert code == 3
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 12
    assert [r["path"] for r in lines[:10]] == [str(p) for p in sorted((data / "test" / "cats").glob("*.jpg"))]
    for r in lines[:10]:
        assert r["label"] in ("cat", "dog") and abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert r["model_version"] == card["model_sha256"][:12]
    expected = clf.predict(sorted((data / "test" / "cats").glob("*.jpg")))
    assert [r["label"] for r in lines[:10]] == list(expected)
    assert (lines[10]["error"], lines[11]["error"]) == ("not_an_image", "unreadable")
    assert predict.main(["--model", str(model_dir), str(tmp_path / "junk.jpg"), "--strict", "--quiet"]) == 1
    capsys.readouterr()
    assert predict.main(["--model", str(model_dir), str(data / "test" / "dogs"), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "path,label,p_cat,p_dog,presence,reason,model_version,error" and len(rows) == 11


def test_fit_save_all_keeps_every_model_with_its_card_and_promotes_the_best(shared_data, tmp_path, feature_cache,
                                                                            capsys):
    from catdog_sk.models import ModelCard
    from catdog_sk.models.persistence import promoted_model_dir

    data = _subset(shared_data, tmp_path)
    art = tmp_path / "art"
    assert fit.main(["--data", str(data), "--features", "color,hog", "--model", "logreg", "--cv", "3", "--save-all",
                     "--cache", str(feature_cache), "--artifacts", str(art), "--run", "all", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["models"]) == {"color/logreg", "hog/logreg"}
    best = f"{out['best']['features']}/{out['best']['model']}"
    other = ({"color/logreg", "hog/logreg"} - {best}).pop()
    assert out["models"][best] == str(art / "models" / "all")  # the run's folder: what PROMOTED names
    assert out["models"][other] == str(art / "models" / "all" / other.replace("/", "-"))
    for name, folder in out["models"].items():
        card = ModelCard.load(folder)
        assert card["feature_set"] == name.split("/")[0] and card["is_best"] == (name == best)
        assert ("promotion" in card) == card["is_best"] and len(card.reference["p_positive"]) == 20
    assert promoted_model_dir(art / "models") == art / "models" / "all"
    assert load_model(art / "models" / "all" / other.replace("/", "-")).features == other.split("/")[0]
    assert (art / "reports" / "all" / "index.html").is_file()


def test_evaluate_refuses_missing_model(tmp_path, capsys):
    assert evaluate.main(["--model", str(tmp_path / "none"), "--data", str(tmp_path)]) == 1
    assert "No model file" in capsys.readouterr().err


@pytest.mark.cnn
def test_fit_all_on_shared_split_meets_accuracy_targets(full_run):
    """The models and accuracy issues' acceptance: every feature set x model, fit on train, scored on test.

    The default model (chosen by CV on train) must make at most 10 errors in the 2,000 test photos with
    an expected calibration error <= 0.02; the best model without any neural network must reach 80%.
    """
    results = json.loads((full_run / "reports" / "full" / "comparison.json").read_text())
    rows = results["rows"]
    assert [(r["features"], r["model"]) for r in rows] == [
        (f, m) for f in ("hog", "color", "hog+color", "vlad", "cnn", "all") for m in ("svm", "logreg")]
    best = next(r for r in rows if (r["features"], r["model"]) == (results["best"]["features"],
                                                                    results["best"]["model"]))
    best_classic = max(r["test_accuracy"] for r in rows if r["features"] in ("hog", "color", "hog+color", "vlad"))
    print(f"default model {best['features']} + {best['model']}: test accuracy {best['test_accuracy']:.4f}, "
          f"ECE {best['test_ece']:.4f}; best without a neural network {best_classic:.4f}")
    assert best["test_accuracy"] >= 0.995
    assert best["test_ece"] <= 0.02
    assert best_classic >= 0.80
    # Whether the top two differ at all (issue 27: they were one photo apart): the exact McNemar test
    top, by_name = results["top_two"], {f"{r['features']} + {r['model']}": r for r in rows}
    assert top["best"] == f"{best['features']} + {best['model']}" and top["n"] == best["test_n"] == 2000
    for who, errors in (("best", "errors_a"), ("runner_up", "errors_b")):
        assert top[errors] == round((1 - by_name[top[who]]["test_accuracy"]) * top["n"]), (who, top)
    assert top["errors_b"] - top["errors_a"] == top["only_a_right"] - top["only_b_right"]
    assert f"exact McNemar test p = {top['p_value']:.2g}" in (full_run / "reports" / "full" / "report.md").read_text()


@pytest.mark.cnn
def test_default_model_says_unknown_for_other_animals_and_keeps_real_pets(full_run, animals10, shared_data,
                                                                          capsys):
    """The "unknown" issue's targets, on photos not used for fitting or tuning.

    Held-out half of the animals10 non-pets: >= 95% answered 'unknown', each animal >= 85%; shared test
    photos: <= 1% 'unknown' and >= 99.6% accuracy on the answered ones; animals10 cats and dogs (never
    used for fitting): <= 3% 'unknown'.
    """
    card = json.loads((full_run / "models" / "full" / "model_card.json").read_text())
    u = card["unknown"]
    neg = u["negatives"]
    print(f"test coverage {u['test_coverage']:.4f}, answered accuracy {u['test_answered_accuracy']:.4f}; "
          f"held-out negatives {neg['rejected']:.3f} of {neg['n']}: "
          + ", ".join(f"{g} {v['rejected']:.2f}" for g, v in neg["by_group"].items()))
    assert neg["n"] == 128 and len(neg["by_group"]) == 8
    assert neg["rejected"] >= 0.95
    assert neg["min_group_rejected"] >= 0.85
    assert u["test_coverage"] >= 0.99
    assert u["test_answered_accuracy"] >= 0.996
    report = (full_run / "reports" / "full")
    assert (report / "unknown_tradeoff.png").is_file() and (report / "unknown.png").is_file()
    assert "accuracy on the answered photos" in (report / "report.md").read_text()
    accepted = json.loads((report / "results.json").read_text())["accepted_negatives"]  # shown, not only counted
    assert len(accepted) == neg["n"] - round(neg["rejected"] * neg["n"])
    assert all(a["label"] in ("cat", "dog") for a in accepted)
    assert (report / "accepted_negatives.png").is_file() == bool(accepted)
    # animals10's own cats and dogs, and the negatives again through evaluate (fitted ones left out)
    out = full_run / "eval-a10"
    capsys.readouterr()
    assert evaluate.main(["--model", str(full_run / "models" / "full"), "--data", str(animals10),
                          "--negatives", str(animals10), "--out", str(out), "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test_n"] == 64
    assert metrics["unknown"] <= 0.03 * 64
    assert metrics["negatives"]["n"] == 128 and "128 photo(s) the model was fitted on left out" in \
        metrics["negatives"]["note"]
    assert metrics["negatives"]["rejected"] == pytest.approx(neg["rejected"])


@pytest.mark.cnn
def test_estimator_predict_evaluate_and_server_give_the_same_answer(full_run, animals10, shared_data, capsys):
    """One decision path: the same photo gets the same label, 'unknown' included, from every entry point."""
    import base64
    import urllib.request

    from catdog_sk.data import find_negatives

    from conftest import running_server

    model_dir = full_run / "models" / "full"
    clf = load_model(model_dir)
    report = json.loads((full_run / "reports" / "full" / "results.json").read_text())
    negatives = find_negatives(animals10)
    held = [p for p, h in zip(negatives.paths, negatives.sha256) if h not in set(clf.negatives_sha256_)]
    unknown_test = [p["path"] for p in report["unknown_photos"]]
    photos = [str(p) for p in sorted((shared_data / "test" / "cats").glob("*.jpg"))[:2]] + \
        [str(p) for p in sorted((shared_data / "test" / "dogs").glob("*.jpg"))[:2]] + held[::16] + unknown_test[:2]
    expected = [str(v) for v in clf.predict(photos)]
    assert "unknown" in expected and {"cat", "dog"} <= set(expected)
    assert predict.main(["--model", str(model_dir), *photos, "--quiet"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in lines] == expected
    presence = clf.presence_score(photos)
    assert [r["presence"] for r in lines] == pytest.approx(presence, abs=1e-6)
    with running_server(model_dir) as url:
        body = json.dumps({"images": [base64.b64encode(open(p, "rb").read()).decode() for p in photos]}).encode()
        req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
        served = json.loads(urllib.request.urlopen(req, timeout=120).read())["predictions"]
    assert [p["label"] for p in served] == expected
    assert [p["presence"] for p in served] == pytest.approx(presence, abs=1e-6)
    # an 'unknown' answer is as sure as the photo is free of pets, not as sure as P(cat) is high
    assert [p["confidence"] for p in served] == pytest.approx(
        [1 - s if lab == "unknown" else max(p["probabilities"].values())
         for p, s, lab in zip(served, presence, expected)], abs=1e-6)


@pytest.mark.cnn
def test_monitor_alerts_on_the_unknown_share_when_30_percent_of_uploads_are_other_animals(
        full_run, animals10, shared_data, tmp_path, capsys):
    """Replay 100 uploads through the real server: test photos only -> no alert; 30% other animals -> an alert
    naming the 'unknown' share (one-sided binomial test against the test set's rate)."""
    import base64
    import urllib.request

    from catdog_sk import monitor
    from catdog_sk.data import find_images, find_negatives

    from conftest import running_server

    model_dir = full_run / "models" / "full"
    clf = load_model(model_dir)
    negatives = find_negatives(animals10)
    held = [p for p, h in zip(negatives.paths, negatives.sha256) if h not in set(clf.negatives_sha256_)]
    test = find_images(shared_data / "test").paths
    rng = np.random.RandomState(0)
    replays = {"none": [test[i] for i in rng.choice(len(test), 100, replace=False)],
               "shift": [test[i] for i in rng.choice(len(test), 70, replace=False)]
               + [held[i] for i in rng.choice(len(held), 30, replace=False)]}
    for name, photos in replays.items():
        log = tmp_path / f"{name}.sqlite"
        with running_server(model_dir, "--log-db", str(log)) as url:
            for start in range(0, len(photos), 10):
                body = json.dumps({"images": [base64.b64encode(open(p, "rb").read()).decode()
                                              for p in photos[start:start + 10]]}).encode()
                req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=120).read()
        code = monitor.main(["--db", str(log), "--model", str(model_dir), "--out", str(tmp_path / name), "--json"])
        summary = json.loads(capsys.readouterr().out)
        assert summary["n_predictions"] == 100 and "unknown" in summary["class_share"]
        if name == "none":
            assert code == 0 and summary["alerts"] == [], summary["alerts"]
        else:
            assert code == 4 and any(a.startswith("'unknown' share") for a in summary["alerts"]), summary["alerts"]
            assert summary["unknown"]["share"] >= 0.2
        assert (tmp_path / name / "index.html").is_file()
