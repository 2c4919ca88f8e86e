"""The training workflow as library calls (catdog_sk.training): README's notebook journey, and fit's parity."""

import csv
import json

import numpy as np
import pytest

from catdog_sk import fit
from catdog_sk.data import TrainingData, load_training_data
from catdog_sk.models import load_model
from catdog_sk.training import extract_features_for_run, save_run, search_models


def _manifest(path, found, idx):
    """A path,label CSV naming some of the shared photos where they are (nothing copied)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows([found.paths[i], found.labels[i]] for i in idx)
    return path


@pytest.fixture(scope="module")
def small_split(shared_data, tmp_path_factory):
    """40 + 40 training and 30 + 30 test photos of the shared split, as CSV manifests."""
    from catdog_sk.data import load_dataset

    splits, folder = load_dataset(shared_data), tmp_path_factory.mktemp("small-split")
    return (_manifest(folder / "train.csv", splits["train"], np.r_[0:40, 1000:1040]),
            _manifest(folder / "test.csv", splits["test"], np.r_[0:30, 1000:1030]))


def test_readme_journey_matches_fit(small_split, animals10, feature_cache, tmp_path):
    """README's five calls train, save, report and promote what ``fit`` does with the same options."""
    train_csv, test_csv = small_split
    lines = []
    data = load_training_data(train_csv, test=test_csv, negatives=animals10, log=lines.append)
    assert data.train.counts() == {"cat": 40, "dog": 40} and len(data.held_out) > 0
    features = extract_features_for_run(data, ["hog", "cnn"], cache=feature_cache)
    comparison = search_models(features, ["logreg"], cv=3)
    run = save_run(comparison, artifacts=tmp_path / "lib", run="nb")
    assert [(r["features"], r["model"]) for r in comparison.rows] == [("hog", "logreg"), ("cnn", "logreg")]
    assert any(line.startswith("negatives: ") for line in lines)
    assert (run.report_dir / "index.html").is_file() and (run.report_dir / "comparison.png").is_file()
    assert (tmp_path / "lib" / "models" / "PROMOTED").is_file()
    assert "promotion: promoted" in run.summary() and "best (by CV accuracy)" in run.summary()
    reloaded = load_model(run.model_dir)
    assert list(reloaded.predict(data.test.paths[:4])) == list(run.classifier.predict(data.test.paths[:4]))
    report = (run.report_dir / "report.md").read_text()  # the page says which run and model produced it
    assert f"| model version | {reloaded.card_.version} |" in report and "| run | nb |" in report
    assert "| training photos | 80 from " in report and "| cross-validation | 3-fold stratified, seed 0 |" in report

    code = fit.main(["--data", str(train_csv), "--test", str(test_csv), "--features", "hog,cnn", "--model", "logreg",
                     "--cv", "3", "--backbone", "efficientnet_lite0", "--negatives", str(animals10),
                     "--cache", str(feature_cache), "--artifacts", str(tmp_path / "cli"), "--run", "cli", "--quiet"])
    assert code == 0
    cli = json.loads((tmp_path / "cli" / "reports" / "cli" / "comparison.json").read_text())
    assert cli["best"] == run.results["best"]
    for ours, theirs in zip(run.results["rows"], cli["rows"]):
        assert ours["best_params"] == theirs["best_params"]
        assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"])


def test_save_run_refuses_an_existing_run(small_split, feature_cache, tmp_path):
    """A run name whose report folder exists stops before anything is written; nothing is lost."""
    from catdog_sk.exceptions import CatDogError

    train_csv, test_csv = small_split
    data = load_training_data(train_csv, test=test_csv)
    features = extract_features_for_run(data, ["hog"], cache=feature_cache, unknown=None)
    comparison = search_models(features, ["logreg"], cv=3)
    report = tmp_path / "reports" / "taken"
    report.mkdir(parents=True)
    (report / "mine.txt").write_text("keep")
    with pytest.raises(CatDogError, match="taken"):
        save_run(comparison, artifacts=tmp_path, run="taken")
    assert (report / "mine.txt").read_text() == "keep"
    assert not (tmp_path / "models" / "taken").exists()


def test_load_training_data_seeded_split_and_errors(small_split, tmp_path):
    """Without a test set, a seeded 20% is split off by content; a missing source is one clear error."""
    from catdog_sk.exceptions import DatasetError

    train_csv, _ = small_split
    a, b = load_training_data(train_csv, random_state=3), load_training_data(train_csv, random_state=3)
    assert a.test.paths == b.test.paths and len(a.test) == 16 and not set(a.test.paths) & set(a.train.paths)
    assert a.test_source.endswith("(seeded 20%)")
    with pytest.raises(DatasetError, match="does not exist"):
        load_training_data(tmp_path / "nowhere")
    cats_only = TrainingData(a.train.subset(np.flatnonzero(a.train.labels == "cat")), a.test, "", "")
    with pytest.raises(DatasetError, match="single class"):
        cats_only.check_trainable(3)


def test_save_run_never_writes_into_a_finished_runs_model_folder(small_split, feature_cache, tmp_path):
    """A model folder that holds files (another run's) is refused even when its report folder is gone."""
    from catdog_sk.exceptions import CatDogError

    train_csv, test_csv = small_split
    data = load_training_data(train_csv, test=test_csv)
    comparison = search_models(extract_features_for_run(data, ["hog"], cache=feature_cache, unknown=None),
                               ["logreg"], cv=3)
    folder = tmp_path / "models" / "done"
    folder.mkdir(parents=True)
    (folder / "model.skops").write_bytes(b"an earlier model")
    with pytest.raises(CatDogError, match="done"):
        save_run(comparison, artifacts=tmp_path, run="done")
    assert (folder / "model.skops").read_bytes() == b"an earlier model" and not (tmp_path / "reports").exists()
