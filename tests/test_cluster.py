"""Scale-out: the same features and the same chosen model on a 2-worker Dask LocalCluster as in one process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def small_split(tmp_path_factory, shared_data):
    """20 + 20 training and 10 + 10 test photos of the shared set, as a split root of symlinks."""
    root = tmp_path_factory.mktemp("split")
    for split, n in (("train", 20), ("test", 10)):
        for cls in ("cats", "dogs"):
            target = root / split / cls
            target.mkdir(parents=True)
            for p in sorted((shared_data / split / cls).glob("*.jpg"))[:n]:
                os.symlink(p, target / p.name)
    return root


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout)


def test_extract_on_a_local_cluster_matches_one_process(small_split, tmp_path):
    from distributed import Client, LocalCluster

    from catdog_sk.cluster import extract_features_on_cluster
    from catdog_sk.data import find_images
    from catdog_sk.features import extract_features, make_extractor

    paths = find_images(small_split / "train").paths + [str(tmp_path / "missing.jpg")]
    extractors = [make_extractor(n) for n in ("hog", "color", "texture", "cnn")]
    local = extract_features(paths, extractors, on_error="skip")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = extract_features_on_cluster(client, paths, extractors, cache=tmp_path / "cache",
                                             on_error="skip", partition_size=7)
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(remote.ok, local.ok)
    assert [(e.path, e.reason) for e in remote.errors] == [(e.path, e.reason) for e in local.errors]
    for name, a, b in zip(("hog", "color", "texture"), remote.features[:3], local.features[:3]):
        np.testing.assert_array_equal(a[local.ok], b[local.ok], err_msg=name)
    np.testing.assert_allclose(remote.features[3][local.ok], local.features[3][local.ok], atol=1e-5)
    assert remote.misses == local.ok.sum() * len(extractors)  # every worker wrote into the shared cache


def test_fit_with_backend_dask_chooses_the_same_model(small_split, tmp_path):
    common = ["--data", str(small_split), "--features", "hog,color", "--model", "all", "--cv", "3", "--json",
              "--quiet", "--no-promote", "--unknown", "off"]
    local = _run("catdog_sk.fit", *common, "--artifacts", str(tmp_path / "a"), "--cache", str(tmp_path / "c1"))
    dask = _run("catdog_sk.fit", *common, "--artifacts", str(tmp_path / "b"), "--cache", str(tmp_path / "c2"),
                "--backend", "dask", "--jobs", "2")
    assert dask["best"] == local["best"]
    for a, b in zip(dask["rows"], local["rows"]):
        assert (a["features"], a["model"], a["best_params"]) == (b["features"], b["model"], b["best_params"])
        assert a["cv_accuracy"] == pytest.approx(b["cv_accuracy"], abs=1e-12)
        assert a["test_accuracy"] == b["test_accuracy"]


def test_unreachable_scheduler_is_one_clear_line(tmp_path, small_split):
    proc = subprocess.run([sys.executable, "-m", "catdog_sk.extract", "--data", str(small_split), "--features",
                           "hog", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--cache",
                           str(tmp_path / "c")], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().splitlines()[-1].startswith("error: Cannot reach the Dask scheduler")


def _same_lines(remote, local, paths, broken_at):
    assert [r["path"] for r in remote] == paths
    assert [r.get("label") for r in remote] == [r.get("label") for r in local]
    assert remote[broken_at]["error"] == local[broken_at]["error"] and "label" not in remote[broken_at]
    for a, b in zip(remote, local):
        if "label" in a:
            assert a["presence"] == pytest.approx(b["presence"], abs=1e-4)
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)


@pytest.mark.cnn
@pytest.mark.parametrize("n_photos, cached", [(2000, True), (100, False)])
def test_predict_with_backend_dask_gives_the_local_lines_in_order(full_run, shared_data, feature_cache, tmp_path,
                                                                 n_photos, cached):
    """The make-demo model on the shared test photos and a broken file, on a 2-worker LocalCluster: the same
    lines as one process. All 2,000 with the feature cache the workers share (as on a cluster with a network
    file system), and 100 computed on the workers from the photos."""
    from catdog_sk.models import load_model, predict_paths

    model_dir = full_run / "models" / "full"
    photos = [str(p) for d in ("cats", "dogs") for p in sorted((shared_data / "test" / d).glob("*.jpg"))
              [:n_photos // 2]]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths = photos[:50] + [str(broken)] + photos[50:]
    cache = ["--cache", str(feature_cache)] if cached else ["--no-cache"]
    local = list(predict_paths(load_model(model_dir), paths, cache=feature_cache if cached else None))
    proc = subprocess.run([sys.executable, "-m", "catdog_sk.predict", "--model", str(model_dir), *paths, *cache,
                           "--backend", "dask", "--jobs", "2", "--quiet"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 3, proc.stderr[-3000:]  # done, one file skipped
    _same_lines([json.loads(line) for line in proc.stdout.splitlines()], local, paths, 50)


@pytest.mark.cnn
def test_evaluate_with_backend_dask_gives_the_local_report(full_run, small_split, tmp_path):
    model_dir = full_run / "models" / "full"
    reports = {}
    for backend in ("local", "dask"):
        reports[backend] = _run("catdog_sk.evaluate", "--model", str(model_dir), "--data", str(small_split / "test"),
                                "--out", str(tmp_path / backend), "--json", "--quiet", "--no-cache",
                                "--backend", backend, "--jobs", "2")
    for key in ("test_n", "test_errors", "unknown", "test_accuracy"):
        assert reports["dask"][key] == reports["local"][key], key
    assert reports["dask"]["test_log_loss"] == pytest.approx(reports["local"]["test_log_loss"], abs=1e-6)
    assert (tmp_path / "dask" / "index.html").is_file()
