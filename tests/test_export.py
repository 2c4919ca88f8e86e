"""`export`: the ONNX file agrees with CatDogClassifier, and the static page classifies in headless Chromium."""

import contextlib
import functools
import http.server
import json
import threading

import numpy as np
import pytest

from catdog_sk import export
from catdog_sk.models import load_model

from conftest import ORT_WEB, need, save, textured_image

pytestmark = pytest.mark.cnn


@pytest.fixture(scope="module")
def default_model(full_run):
    return full_run / "models" / "full"


@pytest.fixture(scope="module")
def onnx_file(default_model, tmp_path_factory):
    """`export --format onnx` of the model `make demo` saves (Lite0 + Lite2, 'unknown' on)."""
    out = tmp_path_factory.mktemp("onnx") / "catdog.onnx"
    assert export.main(["--model", str(default_model), "--out", str(out), "--quiet", "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def small_export(model_dir, tmp_path_factory):
    """`export --model DIR` of the small Lite0 model, run once in a folder of its own: (folder, its JSON reply).

    The tests below share it (each export of a network costs ~12 s) and never change what it wrote.
    """
    import io
    import os

    folder = tmp_path_factory.mktemp("small-export")
    out, here = io.StringIO(), os.getcwd()
    os.chdir(folder)  # the default output is relative: artifacts/export/<version>.onnx
    try:
        with contextlib.redirect_stdout(out):
            assert export.main(["--model", str(model_dir), "--quiet", "--json"]) == 0
    finally:
        os.chdir(here)
    return folder, json.loads(out.getvalue())


def test_onnx_runtime_agrees_with_the_estimator_on_the_shared_test_photos(onnx_file, default_model, shared_data,
                                                                           feature_cache):
    """The issue's parity target: >= 99.9% identical labels ('unknown' included), probabilities within 1e-3."""
    from catdog_sk.data import load_dataset
    from catdog_sk.deploy import OnnxModel
    from catdog_sk.preprocess import read_image

    clf = load_model(default_model)
    meta = json.loads(onnx_file.with_suffix(".json").read_text())
    assert meta["classes"] == ["cat", "dog"] and meta["threshold"] == clf.presence_threshold_
    assert meta["model_version"] == clf.card_["model_sha256"][:12]
    assert [i["size"] for i in meta["inputs"]] == [224, 260]
    test = load_dataset(shared_data)["test"]
    F = clf.featurize(test.paths, cache=str(feature_cache)).features
    expected = clf.predict_features(F)
    model = OnnxModel(onnx_file)
    labels, proba, presence = [], [], []
    for start in range(0, len(test.paths), 100):
        out = model.run([read_image(p) for p in test.paths[start:start + 100]])
        labels += list(out[0])
        proba.append(out[1])
        presence.append(out[2])
    proba, presence = np.vstack(proba), np.concatenate(presence)
    same = np.mean(np.asarray(labels, dtype=object) == expected.labels.astype(object))
    print(f"ONNX vs estimator on {len(labels)} test photos: {same:.4%} labels identical, max |dp| "
          f"{np.abs(proba - expected.proba).max():.2e}, "
          f"max |d presence| {np.abs(presence - expected.presence).max():.2e}, "
          f"file {onnx_file.stat().st_size / 1e6:.1f} MB")
    assert same >= 0.999
    assert np.abs(proba - expected.proba).max() <= 1e-3
    assert np.abs(presence - expected.presence).max() <= 1e-3
    assert sum(lab == "unknown" for lab in labels) == int(np.sum(expected.labels == "unknown"))


def test_a_model_that_never_abstains_exports_with_presence_one(model_dir, small_export, few_photos):
    from catdog_sk.deploy import OnnxModel
    from catdog_sk.preprocess import read_image

    folder, reply = small_export
    out = folder / reply["onnx"]
    model = OnnxModel(out)
    assert model.meta["threshold"] is None and model.meta["min_side"] is None and len(model.meta["inputs"]) == 1
    labels, proba, presence = model.run([read_image(p) for p in few_photos])
    clf = load_model(model_dir)
    assert list(labels) == list(clf.predict(few_photos))
    np.testing.assert_allclose(proba, clf.predict_proba(few_photos), atol=1e-3)
    assert np.all(presence == 1.0)
    # the output is never overwritten: a second export to the same place fails and keeps the file
    before = out.read_bytes()
    assert export.main(["--model", str(model_dir), str(out), "--quiet"]) == 1
    assert out.read_bytes() == before


def test_the_default_output_is_named_by_the_model_version_and_a_rerun_does_nothing(model_dir, small_export,
                                                                                     monkeypatch, capsys):
    """`make demo` run twice: the second export finds this very model exported and exits 0."""
    folder, first = small_export  # the first run
    monkeypatch.chdir(folder)
    version = load_model(model_dir).card_.version
    assert first["onnx"] == f"artifacts/export/{version}.onnx" and (folder / first["json"]).is_file()
    stamp = (folder / first["onnx"]).stat().st_mtime_ns
    assert export.main(["--model", str(model_dir), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"existing": first["onnx"], "model_version": version}
    assert (folder / first["onnx"]).stat().st_mtime_ns == stamp


def test_web_reuses_the_onnx_export_of_the_same_model_and_only_that(model_dir, small_export, tmp_path,
                                                                    monkeypatch, capsys):
    """`make demo` exports ONNX, then the page: the page reuses that file; a file of another model is refused."""
    from catdog_sk.deploy.web import ORT_WEB_FILES

    if not all((ORT_WEB / f).is_file() for f in ORT_WEB_FILES):
        need(f"ONNX Runtime Web (in {ORT_WEB})", "run `make web-runtime` (npm pack onnxruntime-web)")
    folder, _ = small_export  # `export --model DIR` already ran there
    monkeypatch.chdir(folder)
    version = load_model(model_dir).card_.version
    onnx = folder / "artifacts" / "export" / f"{version}.onnx"
    assert export.main(["--model", str(model_dir), "--format", "web", "--ort-web", str(ORT_WEB), "--quiet"]) == 0
    web = folder / "artifacts" / "export" / f"web-{version}"
    assert (web / "model.onnx").read_bytes() == onnx.read_bytes()
    assert json.loads((web / "model.json").read_text()) == json.loads(onnx.with_suffix(".json").read_text())

    other = tmp_path / "other.onnx"
    other.write_bytes(onnx.read_bytes())
    other.with_suffix(".json").write_text(json.dumps({**json.loads(onnx.with_suffix(".json").read_text()),
                                                      "model_version": "000000000000"}))
    capsys.readouterr()
    assert export.main(["--model", str(model_dir), "--format", "web", "--ort-web", str(ORT_WEB), "--onnx",
                        str(other), str(tmp_path / "web2")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exported from model '000000000000'" in err, err
    assert not (tmp_path / "web2").exists()
    with pytest.raises(SystemExit) as exc:
        export.main(["--model", str(model_dir), "--onnx", str(onnx), str(tmp_path / "x.onnx")])
    assert exc.value.code == 2


def test_models_with_features_outside_the_network_fail_in_one_line(tmp_path, capsys):
    from catdog_sk import CatDogClassifier
    from catdog_sk.models import save_model

    images = [save(textured_image(seed=i), tmp_path / "img" / f"{i}.png") for i in range(12)]
    clf = CatDogClassifier(features="color").fit(images, ["cat", "dog"] * 6)
    model = save_model(clf, tmp_path / "color-model", card={"run": "t"})
    out = tmp_path / "out"
    for fmt in ("onnx", "web"):
        capsys.readouterr()
        target = out / ("model.onnx" if fmt == "onnx" else "web")
        assert export.main(["--model", str(model), "--format", fmt, "--out", str(target)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "features='color'" in err and "no ONNX form" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_help_of_export(capsys):
    with pytest.raises(SystemExit) as exc:
        export.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--format {onnx,web}" in text and "Exit status" in text


@contextlib.contextmanager
def static_server(folder):
    """Python's own static file server on 127.0.0.1 (any static server would do)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_offline_page_classifies_in_the_browser_like_python(default_model, onnx_file, browser, shared_data,
                                                                animals10, feature_cache, tmp_path):
    """`export --format web`: the page, served statically, shows the labels Python gives, 'unknown' included."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from catdog_sk.deploy.web import ORT_WEB_FILES

    if not all((ORT_WEB / f).is_file() for f in ORT_WEB_FILES):
        need(f"ONNX Runtime Web (in {ORT_WEB})", "run `make web-runtime` (npm pack onnxruntime-web)")
    folder = tmp_path / "web"
    assert export.main(["--model", str(default_model), "--format", "web", str(folder), "--ort-web", str(ORT_WEB),
                        "--onnx", str(onnx_file), "--quiet"]) == 0  # the network is exported once per session
    assert {"index.html", "model.onnx", "model.json", *ORT_WEB_FILES} <= {p.name for p in folder.iterdir()}
    page = (folder / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert "ONNX Runtime Web" in (folder / "NOTICE.txt").read_text()  # the bundled runtime's origin and licence

    clf = load_model(default_model)
    test_dir = shared_data / "test"
    photos = sorted((test_dir / "cats").glob("*.jpg"))[:2] + sorted((test_dir / "dogs").glob("*.jpg"))[:2]
    others = sorted((animals10 / "elephant").glob("*"))[:6]
    other_labels = clf.predict(others)
    photos.append(others[list(other_labels).index("unknown")])  # one photo Python calls 'unknown'
    expected = list(clf.predict(photos))
    assert expected[:4] == ["cat", "cat", "dog", "dog"] and expected[4] == "unknown"

    with static_server(folder) as url:
        browser.get(url + "/index.html")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
                   or d.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == ""
        shown = []
        for photo in photos:
            browser.execute_script("document.getElementById('result').removeAttribute('data-label')")
            browser.find_element(By.ID, "file").send_keys(str(photo))
            wait.until(lambda d: d.find_element(By.ID, "result").get_attribute("data-label")
                       or d.find_element(By.ID, "error").text)
            result = browser.find_element(By.ID, "result")
            shown.append(result.get_attribute("data-label"))
            if shown[-1] in ("cat", "dog"):
                assert result.text.startswith(f"{shown[-1]} (") and "% sure" in result.text
        browser.save_screenshot(str(tmp_path / "page.png"))
    assert shown == expected


def test_the_offline_page_answers_a_photo_below_min_side_too_small(model_dir, small_export, browser, few_photos,
                                                                   tmp_path):
    """The page applies model.json's ``min_side`` before cropping, as CatDogClassifier does (issue 29).

    The small model never abstains (its description has ``min_side`` null), so its copy of the
    description is given the default threshold: the rule under test is the page's own.
    """
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from catdog_sk._testing import downscaled
    from catdog_sk.deploy.web import ORT_WEB_FILES
    from catdog_sk.models.classifier import MIN_SIDE

    if not all((ORT_WEB / f).is_file() for f in ORT_WEB_FILES):
        need(f"ONNX Runtime Web (in {ORT_WEB})", "run `make web-runtime` (npm pack onnxruntime-web)")
    folder, _ = small_export
    version = load_model(model_dir).card_.version
    web = tmp_path / "web"
    assert export.main(["--model", str(model_dir), "--format", "web", str(web), "--ort-web", str(ORT_WEB),
                        "--onnx", str(folder / "artifacts" / "export" / f"{version}.onnx"), "--quiet"]) == 0
    meta = json.loads((web / "model.json").read_text())
    assert meta["min_side"] is None
    (web / "model.json").write_text(json.dumps({**meta, "min_side": MIN_SIDE}))
    photo = few_photos[0]
    small, at_threshold = tmp_path / "small.png", tmp_path / "at_threshold.png"
    Image.fromarray(downscaled(photo, MIN_SIDE - 1)).save(small)
    Image.fromarray(downscaled(photo, MIN_SIDE)).save(at_threshold)
    with static_server(web) as url:
        browser.get(url + "/index.html")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
                   or d.find_element(By.ID, "error").text)
        shown = []
        for path in (small, at_threshold):
            browser.execute_script("document.getElementById('result').removeAttribute('data-label')")
            browser.find_element(By.ID, "file").send_keys(str(path))
            wait.until(lambda d: d.find_element(By.ID, "result").get_attribute("data-label")
                       or d.find_element(By.ID, "error").text)
            result = browser.find_element(By.ID, "result")
            shown.append((result.get_attribute("data-label"), result.get_attribute("data-reason"), result.text))
    assert shown[0][:2] == ("unknown", "too_small") and "too small" in shown[0][2], shown
    assert shown[1][0] in ("cat", "dog") and shown[1][1] == "", shown  # the small model never abstains


@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx", "x.json"], "OUT must be a file name ending in .onnx"),
    (["--format", "onnx", "--out", "model"], "OUT must be a file name ending in .onnx"),
    (["--format", "web", "--onnx", "a.json", "web-out"], "--onnx must name an .onnx file"),
])
def test_export_paths_that_would_collide_are_usage_errors_before_any_work(argv, message, model_dir, tmp_path,
                                                                          monkeypatch, capsys):
    """The ONNX file and its description never share a path; a JSON is never shipped as model.onnx."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        export.main(["--model", str(model_dir), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_reused_onnx_files_are_checked_as_graphs_of_this_model(model_dir, small_export, tmp_path):
    """onnx.checker and the version in metadata_props: empty, truncated or another model's files are refused."""
    import shutil

    from catdog_sk.deploy.onnx import VERSION_KEY, check_onnx_file
    from catdog_sk.exceptions import ExportError

    folder, first = small_export
    version = load_model(model_dir).card_.version
    good = folder / first["onnx"]
    check_onnx_file(good, version)  # the export itself passes
    import onnx

    assert {p.key: p.value for p in onnx.load(good).metadata_props}[VERSION_KEY] == version
    for name, data in (("empty.onnx", b""), ("truncated.onnx", good.read_bytes()[:5000])):
        (tmp_path / name).write_bytes(data)
        shutil.copyfile(good.with_suffix(".json"), (tmp_path / name).with_suffix(".json"))
        with pytest.raises(ExportError, match="not a valid ONNX file"):
            check_onnx_file(tmp_path / name, version)
    with pytest.raises(ExportError, match="was not exported from model '000000000000'"):
        check_onnx_file(good, "000000000000")


def test_a_damaged_cached_export_is_rebuilt(model_dir, tmp_path, monkeypatch, capsys):
    """A 0-byte artifacts/export/<version>.onnx (a crash, a full disk) is exported again, not trusted."""
    from catdog_sk.deploy.onnx import check_onnx_file

    monkeypatch.chdir(tmp_path)
    version = load_model(model_dir).card_.version
    cached = tmp_path / "artifacts" / "export" / f"{version}.onnx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    cached.with_suffix(".json").write_text(json.dumps({"model_version": version}))
    assert export.main(["--model", str(model_dir), "--json"]) == 0
    captured = capsys.readouterr()
    assert "damaged cached export: exporting again" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["onnx"] == f"artifacts/export/{version}.onnx"
    check_onnx_file(cached, version)
