"""Shared fixtures: the shared photo set beside the repo, and small generated images."""

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog_sk._testing import PEAK_RSS_CODE  # noqa: F401  (the tests import it from here)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CATDOG_SHARED_DATA", REPO.parent / "shared" / "data" / "catsdogs"))
ANIMALS10 = SHARED.parent / "animals10"
#: ONNX Runtime Web's files for the page export (`make web-runtime` fills this folder).
ORT_WEB = Path(os.environ.get("CATDOG_ORT_WEB") or REPO / "artifacts" / "vendor" / "onnxruntime-web")


@pytest.fixture(scope="session")
def shared_data():
    """Root of the 4,000 shared photos (train/ and test/); a missing copy fails loudly."""
    if not (SHARED / "train" / "cats").is_dir():
        pytest.fail(f"Shared data not found at {SHARED}: clone the repo beside ../shared "
                    f"or set CATDOG_SHARED_DATA.")
    return SHARED


@pytest.fixture(scope="session")
def animals10(shared_data):
    """Root of the 320 animals10 web photos (cat/, dog/ and eight other animals); a missing copy fails loudly."""
    if not (ANIMALS10 / "cow").is_dir():
        pytest.fail(f"animals10 not found at {ANIMALS10}: it sits beside catsdogs in ../shared/data.")
    return ANIMALS10


@pytest.fixture(scope="session")
def few_photos(shared_data):
    """Six real photos: three cats and three dogs from the shared train split."""
    cats = sorted((shared_data / "train" / "cats").glob("*.jpg"))[:3]
    dogs = sorted((shared_data / "train" / "dogs").glob("*.jpg"))[:3]
    return cats + dogs


def textured_image(height=96, width=128, seed=0):
    """A deterministic RGB image with edges and colour, so HOG and histograms are non-trivial."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([
        (x * 255 // max(width - 1, 1)),
        (y * 255 // max(height - 1, 1)),
        ((x // 16 + y // 16) % 2) * 200,
    ], axis=2).astype(np.uint8)
    img[rng.integers(0, height, 20), rng.integers(0, width, 20)] = 255
    return img


def png_header_only(width, height):
    """A PNG whose header declares width x height RGB pixels, with no pixel data: a decompression bomb's shape."""
    import struct
    import zlib

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def save(img, path, **kwargs):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, **kwargs)
    return path


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    """One feature cache for the whole test session, so real photos are embedded once."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def shared_features(shared_data, feature_cache):
    """CatDogClassifier's Lite0 'cnn' features (embedding + ImageNet head columns) and labels, train and test."""
    from catdog_sk.data import load_dataset
    from catdog_sk.features import extract_features, make_extractor

    out = {}
    for split, found in load_dataset(shared_data).items():
        res = extract_features(found.paths, [make_extractor("cnn")], cache=feature_cache)
        assert res.ok.all(), res.errors
        out[split] = (res.features[0], found.labels)
    return out


@pytest.fixture(scope="session")
def shared_embeddings(shared_features):
    """Lite0 embeddings (unit vectors, 1,280-d) and labels of the shared train and test photos."""
    return {split: (F[:, :1280], y) for split, (F, y) in shared_features.items()}


@pytest.fixture(scope="session")
def model_dir(shared_data, feature_cache, shared_embeddings, tmp_path_factory):
    """A saved Lite0 + logistic-regression model fitted on 80 shared train photos, with a score reference."""
    from catdog_sk import CatDogClassifier
    from catdog_sk.data import load_dataset
    from catdog_sk.models import save_model

    train = load_dataset(shared_data)["train"]
    idx = np.r_[0:40, 1000:1040]
    clf = CatDogClassifier(cache=str(feature_cache)).fit([train.paths[i] for i in idx], train.labels[idx])
    test = load_dataset(shared_data)["test"]
    ref_paths = [test.paths[i] for i in np.r_[100:140, 1100:1140]]
    ref = clf.predict_proba(ref_paths)[:, 1]
    out = save_model(clf, tmp_path_factory.mktemp("served") / "model",
                     card={"run": "serve-test", "reference": {"p_positive": ref.tolist()}})
    from catdog_sk.monitoring import REFERENCE_EMBEDDINGS

    np.save(out / REFERENCE_EMBEDDINGS, clf.split_features(clf.transform_features(ref_paths))[1])  # embeddings only
    return out


@pytest.fixture(scope="session")
def photos(shared_data):
    """A shared test photo of a cat and one of a dog."""
    from catdog_sk.data import load_dataset

    test = load_dataset(shared_data)["test"]
    return test.paths[0], test.paths[-1]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model, *extra_args, timeout=90, with_process=False):
    """Run ``python -m catdog_sk.serve`` on a free 127.0.0.1 port; yield its base URL; stop it after.

    With ``with_process``, yield ``(url, subprocess.Popen)``.
    """
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "catdog_sk.serve", "--model", str(model), "--port", str(port),
                             "--quiet", *extra_args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(url + "/ready", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"serve exited: {proc.stderr.read().decode()}")
                if time.time() > deadline:
                    raise AssertionError(f"serve did not answer within {timeout} s")
                time.sleep(0.5)
        yield (url, proc) if with_process else url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def clients_running(send, n=2):
    """Call ``send(i)`` over and over in ``n`` threads while the block runs (``i`` counts up from the thread's
    number), then stop them and wait for them: traffic during promotions."""
    import threading

    stop = threading.Event()

    def loop(i):
        while not stop.is_set():
            send(i)
            i += 1

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(n)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(60)


@pytest.fixture(scope="session")
def full_run(shared_data, animals10, feature_cache, shared_embeddings, tmp_path_factory):
    """``fit --model all`` with the command-line defaults on the shared split, half of animals10 as negatives.

    What ``make demo`` does; its promoted model is the CLI default (Lite0 + Lite2 'cnn' + logreg, 'unknown' on).
    """
    from catdog_sk import fit

    art = tmp_path_factory.mktemp("full") / "art"
    code = fit.main(["--data", str(shared_data / "train"), "--test", str(shared_data / "test"),
                     "--model", "all", "--cache", str(feature_cache), "--artifacts", str(art),
                     "--negatives", str(animals10), "--run", "full", "--quiet"])
    assert code == 0
    return art


# CATDOG_CHROMIUM / CATDOG_CHROMEDRIVER point elsewhere (tests of the skip rule set them to missing paths).
CHROMIUM = os.environ.get("CATDOG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CATDOG_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


def need(what, fix):
    """Skip with the reason and the fix; under CI (CI=true) fail instead, so CI never passes without it."""
    message = f"{what} is missing: {fix}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster of the suite's own (initdb + pg_ctl, a free port, removed after).

    Skipped with the reason when Debian's postgresql is missing (``make postgres`` installs it; CI does),
    failed under CI=true.
    """
    from catdog_sk._pgcluster import ThrowawayPostgres, find_postgres

    if find_postgres() is None:
        need("PostgreSQL (initdb, pg_ctl)", "run `make postgres` (apt-get install postgresql)")
    with ThrowawayPostgres() as pg:
        yield pg


@pytest.fixture
def browser(tmp_path):
    """Headless Debian chromium driven by chromium-driver; skipped (failed under CI=true) when missing."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        need("Debian's chromium and chromium-driver", "run `make browser` (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
