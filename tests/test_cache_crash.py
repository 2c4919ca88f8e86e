"""The feature cache survives SIGKILL and concurrent writers."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from catdog_sk.features import ColorHistogramExtractor, FeatureCache, HOGExtractor, extract_features

from conftest import REPO, save, textured_image

_SLOW_EXTRACT = """
import sys, time
from catdog_sk.features import _hog
original = _hog.hog_batch
def slow(*a, **k):
    time.sleep(0.05 * len(a[0]))  # ~50 ms per image: plenty of time to be killed mid-run
    return original(*a, **k)
_hog.hog_batch = slow
from catdog_sk.extract import main
raise SystemExit(main(sys.argv[1:]))
"""


def _dataset(tmp_path, n):
    for k in range(n):
        save(textured_image(40, 48, seed=k), tmp_path / "data" / ("cats" if k % 2 else "dogs") / f"{k}.png")
    return tmp_path / "data"


def _entries(cache_dir):
    return list(cache_dir.glob("hog-*/??/*.npy")), list(cache_dir.glob("hog-*/pack-*.keys"))


def test_sigkill_mid_run_then_rerun_resumes_without_corruption(tmp_path):
    data = _dataset(tmp_path, 200)
    cache_dir = tmp_path / "cache"
    args = ["--data", str(data), "--features", "hog", "--cache", str(cache_dir), "--quiet", "--json", "--jobs", "2"]
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXTRACT, *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(_entries(cache_dir)[0]) < 64 and time.time() < deadline:  # at least one chunk stored
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    loose, packs = _entries(cache_dir)
    assert 64 <= len(loose) < 200 and not packs, "killed before finishing, as intended"
    for entry in loose:  # every finished entry is whole
        assert np.load(entry).shape == (HOGExtractor().n_features_out,)
    # rerun in-process, counting real work: only the missing images are computed
    paths = sorted(str(p) for p in data.rglob("*.png"))
    res = extract_features(paths, [HOGExtractor()], cache=FeatureCache(cache_dir))
    assert res.ok.all() and res.hits == len(loose) and res.misses == 200 - len(loose)
    clean = extract_features(paths, [HOGExtractor()])
    np.testing.assert_array_equal(res.features[0], clean.features[0])


def test_two_extract_processes_on_one_cache_end_consistent(tmp_path):
    data = _dataset(tmp_path, 150)
    cache_dir = tmp_path / "cache"
    cmd = [sys.executable, "-m", "catdog_sk.extract", "--data", str(data), "--features", "hog,color",
           "--cache", str(cache_dir), "--quiet", "--json"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    paths = sorted(str(p) for p in data.rglob("*.png"))
    extractors = [HOGExtractor(), ColorHistogramExtractor()]
    warm = extract_features(paths, extractors, cache=FeatureCache(cache_dir))
    assert warm.misses == 0 and warm.hits == 300
    clean = extract_features(paths, extractors)
    for a, b in zip(warm.features, clean.features):
        np.testing.assert_array_equal(a, b)
