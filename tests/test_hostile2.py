"""Reliability, round two: no input, request or fault may delete data, exhaust memory, crash the server
or print a traceback. Every input here is generated; memory is measured in child processes, races by
starting two processes at once, signals by sending them."""

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PEAK_RSS_CODE, REPO, clients_running, png_header_only, save, textured_image


def _run(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _one_clean_line(stderr):
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture(scope="module")
def tiny_split(shared_data, tmp_path_factory):
    """16 train + 8 test real photos, copied (tests may add files), for fits that take seconds."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    for split, n in (("train", 8), ("test", 4)):
        for cls in ("cats", "dogs"):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((shared_data / split / cls).glob("*.jpg"))[:n]:
                shutil.copy(f, root / split / cls / f.name)
    return root


def _fit_args(data, art, cache, *extra):
    return ["catdog_sk.fit", "--data", str(data / "train"), "--test", str(data / "test"), "--features", "color",
            "--model", "logreg", "--cv", "2", "--unknown", "off", "--artifacts", str(art), "--cache", str(cache),
            "--quiet", *extra]


def _tree(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# -- 1. run names are one folder name; nothing another run made is ever deleted -----------------------
@pytest.mark.parametrize("run", ["..", ".", "../../x", "a/b", "", ".hidden", "x" * 101, "nul\0byte"])
def test_fit_refuses_run_names_that_are_paths(tiny_split, tmp_path, run):
    art = tmp_path / "art"
    (art / "models" / "old-run").mkdir(parents=True)
    (art / "models" / "old-run" / "model.skops").write_bytes(b"earlier model")
    (art / "models" / "PROMOTED").write_text("old-run\n")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("not the artifacts")
    before, outside = _tree(art), _tree(tmp_path / "x")
    if "\0" in run:  # a NUL cannot even reach a command line; the library entry point refuses it
        from catdog_sk import fit

        with pytest.raises(SystemExit) as exc:
            fit.main(_fit_args(tiny_split, art, tmp_path / "c", "--run", run)[1:])
        assert exc.value.code == 2
    else:
        proc = _run(*_fit_args(tiny_split, art, tmp_path / "c", "--run", run))
        assert proc.returncode == 2 and "--run must be one folder name" in proc.stderr, proc.stderr
    assert _tree(art) == before and _tree(tmp_path / "x") == outside


def test_fit_never_overwrites_or_deletes_an_existing_run(tiny_split, tmp_path):
    art, cache = tmp_path / "art", tmp_path / "c"
    (art / "models" / "r1").mkdir(parents=True)
    (art / "models" / "r1" / "mine.txt").write_text("someone's files")
    proc = _run(*_fit_args(tiny_split, art, cache, "--run", "r1"))
    assert proc.returncode == 1 and "exists already; nothing was changed" in _one_clean_line(proc.stderr)
    assert (art / "models" / "r1" / "mine.txt").read_text() == "someone's files"
    (art / "reports" / "r2").mkdir(parents=True)
    (art / "reports" / "r2" / "notes.md").write_text("a report kept by hand")
    proc = _run(*_fit_args(tiny_split, art, cache, "--run", "r2"))
    assert proc.returncode == 1 and "exists already" in _one_clean_line(proc.stderr)
    assert (art / "reports" / "r2" / "notes.md").read_text() == "a report kept by hand"
    assert not (art / "models" / "r2").exists() and not list(cache.glob("color-*"))  # refused before any work
    # evaluate refuses an existing --out the same way, before loading anything
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.txt").write_text("keep")
    proc = _run("catdog_sk.evaluate", "--model", str(art / "models" / "r1"), "--data", str(tiny_split / "test"),
                "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == 1 and "exists already" in _one_clean_line(proc.stderr)
    assert (tmp_path / "out" / "x.txt").read_text() == "keep"


def _flipped_manifest(data, tmp_path):
    """The same train photos with every label flipped: a model trained on it is wrong on test."""
    import csv

    manifest = tmp_path / "flipped.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for cls, wrong in (("cats", "dog"), ("dogs", "cat")):
            for p in sorted((data / "train" / cls).glob("*.jpg")):
                w.writerow([str(p), wrong])
    return manifest


def test_two_fits_at_once_get_their_own_runs_and_the_better_model_stays_promoted(tiny_split, tmp_path):
    """Default run names are unique, and promotion compares and swaps under a lock against the current champion."""
    art = tmp_path / "art"
    flipped = _flipped_manifest(tiny_split, tmp_path)
    good = _fit_args(tiny_split, art, tmp_path / "c1", "--json")
    bad = ["catdog_sk.fit", "--data", str(flipped), "--test", str(tiny_split / "test"), *good[5:]]
    bad[bad.index(str(tmp_path / "c1"))] = str(tmp_path / "c2")
    procs = [subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in (good, bad)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    results = [json.loads(o[0]) for o in outs]
    runs = [r["run"] for r in results]
    assert runs[0] != runs[1] and all((art / "models" / r / "model.skops").is_file() for r in runs)
    accuracy = [r["rows"][0]["test_accuracy"] for r in results]
    assert accuracy[0] > accuracy[1]  # the flipped labels make the worse model
    assert (art / "models" / "PROMOTED").read_text().strip() == runs[0]
    from catdog_sk.models import load_model

    labels = load_model(art / "models").predict(sorted((tiny_split / "test" / "cats").glob("*.jpg")))
    assert np.mean(labels == "cat") >= 0.5


# -- 3. a bad promotion never takes the server down ------------------------------------------------------
@pytest.mark.cnn
def test_a_broken_promotion_keeps_the_served_model(model_dir, tmp_path, photos):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "good")
    (root / "PROMOTED").write_text("good\n")
    app = create_app(root, log_db=tmp_path / "log.sqlite")
    body = {"images": [base64.b64encode(open(photos[0], "rb").read()).decode()]}
    with TestClient(app) as c:
        version = c.get("/ready").json()["model_version"]
        shutil.copytree(model_dir, root / "tampered")
        with open(root / "tampered" / "model.skops", "ab") as fh:
            fh.write(b"\0")
        for bad_pointer in (b"missing-run\n", b"tampered\n", b"\xff\xfe not utf-8", b"../../etc\n"):
            (root / "PROMOTED").write_bytes(bad_pointer)
            os.utime(root / "PROMOTED", ns=(time.time_ns(), time.time_ns()))
            for _ in range(3):
                assert c.get("/ready").json()["model_version"] == version
                r = c.post("/predict", json=body)
                assert r.status_code == 200 and r.json()["model_version"] == version
        metrics = c.get("/metrics").text
        # one failed load per bad pointer, not one per request (the retry waits 5 s first)
        assert "catdog_model_reload_errors_total 4.0" in metrics
        assert c.get("/ready").json()["promoted"] is False  # it says it is not serving what PROMOTED names


@pytest.mark.cnn
def test_a_failed_promotion_is_retried_while_promoted_still_names_it(model_dir, tmp_path, photos, monkeypatch):
    """The run PROMOTED names appears only after the first try failed: a later try serves it, unprompted."""
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app
    from catdog_sk.serving._slot import ModelSlot

    monkeypatch.setattr(ModelSlot, "RETRY_FIRST_S", 0.2)
    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "good")
    (root / "PROMOTED").write_text("good\n")
    with TestClient(create_app(root, log_db=tmp_path / "log.sqlite")) as c:
        (root / "PROMOTED").write_text("later\n")  # not there yet: the load fails
        assert c.get("/ready").json()["promoted"] is False
        shutil.copytree(model_dir, root / "later")  # PROMOTED unchanged from here on
        time.sleep(0.3)
        ready = c.get("/ready").json()
        assert ready["promoted"] is True and Path(ready["model_dir"]).name == "later"
        assert "catdog_model_reload_errors_total 1.0" in c.get("/metrics").text


def test_an_empty_promoted_is_a_pointer_being_written_until_it_stays_empty(model_dir, tmp_path, monkeypatch):
    """``echo b > PROMOTED`` truncates before it writes: a server that reads in between waits for the name
    (CI once counted that read as a reload error); a pointer left empty is a reload error after a second."""
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "a")
    (root / "PROMOTED").write_text("a\n")
    with TestClient(create_app(root, log_db=tmp_path / "log.sqlite")) as c:
        (root / "PROMOTED").write_text("")  # truncated, the name not written yet
        assert c.get("/ready").json()["promoted"] is False
        assert "catdog_model_reload_errors_total 0.0" in c.get("/metrics").text
        old = time.time_ns() - 2_000_000_000  # still empty two seconds later: a bad pointer
        os.utime(root / "PROMOTED", ns=(old, old))
        c.get("/ready")
        assert "catdog_model_reload_errors_total 1.0" in c.get("/metrics").text
        (root / "PROMOTED").write_text("a\n")
        assert c.get("/ready").json()["promoted"] is True


@pytest.mark.cnn
def test_ten_promotions_under_traffic_fail_no_request_and_end_on_the_promoted_model(model_dir, tmp_path, photos):
    """Two clients predict while PROMOTED flips between two runs ten times (issue 26: one 500, seven reload
    errors and a server stuck on the old model before the warm-up shared the compiled network's lock)."""
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    root = tmp_path / "models"
    for name in ("a", "b"):
        shutil.copytree(model_dir, root / name)
    (root / "PROMOTED").write_text("a\n")
    body = {"images": [base64.b64encode(open(p, "rb").read()).decode() for p in photos[:2]]}
    statuses = []
    with TestClient(create_app(root, log_db=tmp_path / "log.sqlite")) as c:
        with clients_running(lambda i: statuses.append(c.post("/predict", json=body).status_code)):
            for k in range(10):
                (root / "PROMOTED").write_text("ab"[(k + 1) % 2] + "\n")
                os.utime(root / "PROMOTED", ns=(time.time_ns(), time.time_ns()))
                time.sleep(0.5)
        deadline = time.monotonic() + 30
        while not c.get("/ready").json()["promoted"] and time.monotonic() < deadline:
            time.sleep(0.2)  # the last promotion's load may still be under way
        ready = c.get("/ready").json()
        metrics = c.get("/metrics").text
    assert len(statuses) >= 10 and set(statuses) == {200}, statuses
    assert ready["promoted"] is True and Path(ready["model_dir"]).name == "a"  # k = 9 promoted 'a'
    assert "catdog_model_reload_errors_total 0.0" in metrics


# -- 4. thin strips and 5. per-request work are bounded --------------------------------------------------
def _peak_rss_mb(code):
    """Run Python ``code`` in a child process; its peak RSS in MB (read by the child itself at exit)."""
    script = PEAK_RSS_CODE + code + "\nprint('PEAK', peak_rss_kb())\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip().splitlines()[-1].split()[1]) / 1024


def _strip(path, width, height):
    from PIL import Image

    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.cnn
def test_thin_strips_cost_no_more_memory_than_a_photo(model_dir, photos, tmp_path):
    wide, tall = _strip(tmp_path / "wide.png", 8000, 1), _strip(tmp_path / "tall.png", 2, 30000)
    assert wide.stat().st_size < 2000
    run = ("from catdog_sk import predict\nimport contextlib, io\n"
           "with contextlib.redirect_stdout(io.StringIO()):\n"
           f"    assert predict.main(['--model', {str(model_dir)!r}, {{}}, '--quiet']) == 0\n")
    photo = _peak_rss_mb(run.format(repr(photos[0])))
    strips = _peak_rss_mb(run.format(f"{str(wide)!r}, {str(tall)!r}"))
    print(f"peak RSS: one photo {photo:.0f} MB, two thin strips {strips:.0f} MB")
    assert strips <= photo + 150


@pytest.mark.cnn
def test_requests_are_capped_in_images_and_pixels(model_dir, tmp_path, photos):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app
    from catdog_sk.serving.app import MAX_IMAGES_PER_REQUEST

    app = create_app(model_dir, log_db=tmp_path / "log.sqlite")
    one = base64.b64encode(open(photos[0], "rb").read()).decode()
    big = base64.b64encode(png_header_only(6000, 6000)).decode()  # 36 MP each: under the per-image cap
    with TestClient(app) as c:
        r = c.post("/predict", json={"images": [one] * (MAX_IMAGES_PER_REQUEST + 1)})
        assert r.status_code == 413 and "at most 16" in r.json()["error"]
        r = c.post("/predict", json={"images": [big, big]})
        assert r.status_code == 413 and "pixels in all" in r.json()["error"]
        files = [("file", (f"{k}.jpg", open(photos[0], "rb").read(), "image/jpeg"))
                 for k in range(MAX_IMAGES_PER_REQUEST + 1)]
        r = c.post("/predict", files=files)
        assert r.status_code == 413, r.text
        r = c.post("/predict", json={"images": [one] * 6})  # several batches, one answer
        assert r.status_code == 200 and len(r.json()["predictions"]) == 6
        assert c.get("/health").status_code == 200


# -- 6. bodies are bounded while they stream, on every route; 7. bad JSON is a 4xx -------------------
@pytest.mark.cnn
def test_bodies_are_limited_while_streaming_and_bad_json_is_422(model_dir, tmp_path, photos):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    app = create_app(model_dir, log_db=tmp_path / "log.sqlite", max_upload_bytes=100_000)
    sent = []

    def chunks(total, size=65536):
        for _ in range(total // size):
            sent.append(size)
            yield b"[" * size

    with TestClient(app) as c:
        # chunked (no Content-Length): refused once past the limit
        r = c.post("/predict", content=chunks(8_000_000), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["status"] == 413
        r = c.post("/feedback", content=chunks(1_000_000), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # deeply nested JSON, huge or fractional item numbers, wrong types: 422, never 500
        nested = b"[" * 200_000 + b"]" * 200_000
        for path, body in (("/predict", b'{"images": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
                           ("/feedback", nested[:3000]),
                           ("/feedback", b'{"request_id": "x", "label": "cat", "item": 1e30}'),
                           ("/feedback", b'{"request_id": "x", "label": "cat", "item": 1.5}'),
                           ("/feedback", b'{"request_id": "x", "label": "cat", "item": true}'),
                           ("/feedback", b'{"request_id": ["x"], "label": "cat"}'),
                           ("/feedback", b'"just a string"')):
            r = c.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (path, body[:40], r.status_code, r.text[:200])
            assert set(r.json()) == {"error", "status"}
        # a Content-Type that only starts like JSON is not JSON
        r = c.post("/predict", content=b'{"images": []}', headers={"Content-Type": "application/jsonp"})
        assert r.status_code == 415
        # nothing unbounded is echoed back
        r = c.post("/feedback", json={"request_id": "z" * 64, "label": "cat"})
        assert r.status_code == 404 and len(r.text) < 300
        r = c.get("/no-such-page-" + "q" * 5000)
        assert r.status_code == 404 and set(r.json()) == {"error", "status"} and len(r.text) < 300
        # a replayed report is stored once and counted once
        pred = c.post("/predict", json={"images": [base64.b64encode(open(photos[0], "rb").read()).decode()]})
        rid = pred.json()["request_id"]
        for _ in range(3):
            assert c.post("/feedback", json={"request_id": rid, "label": "dog"}).status_code == 200
        assert 'catdog_feedback_total{correct="false"} 1.0' in c.get("/metrics").text
        assert c.get("/health").status_code == 200


# -- 8. faults of the environment: one line, the documented status, nothing half-done -------------------
def test_cache_that_is_a_file_or_a_full_disk_gives_one_line(tiny_split, tmp_path, monkeypatch, capsys):
    from catdog_sk import extract

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    proc = _run("catdog_sk.extract", "--data", str(tiny_split), "--features", "color", "--cache", str(blocker),
                "--quiet")
    assert proc.returncode == 1 and str(blocker) in _one_clean_line(proc.stderr)
    assert "--no-cache" in proc.stderr
    # a full disk while writing entries (ENOSPC from the file system)
    import errno

    import catdog_sk.features._cache as cache_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod.np, "save", full)
    code = extract.main(["--data", str(tiny_split), "--features", "color", "--cache", str(tmp_path / "c"),
                         "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in _one_clean_line(err) and "free space" in err


def test_corrupt_or_locked_hash_memo_never_stops_a_run(tiny_split, tmp_path):
    cache = tmp_path / "c"
    args = ("catdog_sk.extract", "--data", str(tiny_split), "--features", "color", "--cache", str(cache), "--quiet")
    assert _run(*args).returncode == 0
    memo = cache / "hashes.sqlite"
    memo.write_bytes(b"this is not a database" * 100)
    proc = _run(*args, "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert list(cache.glob("hashes.sqlite.corrupt-*")), "the corrupt memo is set aside"
    with sqlite3.connect(memo) as db:  # and rebuilt
        assert db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0] == 24
    assert json.loads(proc.stdout)["total"]["misses"] == 0  # features themselves still came from the cache
    holder = sqlite3.connect(memo, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = _run(*args, timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 0 and "locked by another process" in proc.stderr and "Traceback" not in proc.stderr


def test_outputs_are_checked_before_the_work(tiny_split, tmp_path):
    proc = _run("catdog_sk.extract", "--data", str(tiny_split), "--features", "color", "--cache",
                str(tmp_path / "c"), "--skipped-csv", str(tmp_path / "no" / "such" / "dir" / "s.csv"), "--quiet")
    assert proc.returncode == 1 and "does not exist" in _one_clean_line(proc.stderr)
    assert not list((tmp_path / "c").glob("color-*"))  # no work was done


@pytest.mark.cnn
def test_a_closed_output_pipe_is_not_a_traceback(model_dir, shared_data):
    proc = subprocess.Popen([sys.executable, "-m", "catdog_sk.predict", "--model", str(model_dir),
                             str(shared_data / "test" / "cats"), "--quiet"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 1
    assert "Traceback" not in err and "standard output was closed" in err


# -- 9. model files that are valid skops but not a catdog_sk model ---------------------------------------
def test_model_files_that_are_not_catdog_models_are_refused(tmp_path, tiny_split):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from catdog_sk import CatDogClassifier
    from catdog_sk._hashing import file_sha256
    from catdog_sk.models import ModelLoadError, load_model, save_model

    def with_card(folder, obj):
        folder.mkdir()
        sio.dump(obj, folder / "model.skops")
        (folder / "model_card.json").write_text(json.dumps({"model_sha256": file_sha256(folder / "model.skops")}))
        return folder

    lr = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    for name, obj in (("lr", lr), ("dict", {"a": 1})):
        with pytest.raises(ModelLoadError, match="not a fitted CatDogClassifier"):
            load_model(with_card(tmp_path / name, obj))
    train = sorted((tiny_split / "train" / "cats").glob("*.jpg")) + sorted((tiny_split / "train" / "dogs").glob("*"))
    clf = CatDogClassifier(features="color").fit(train, ["cat"] * 8 + ["dog"] * 8)
    good = save_model(clf, tmp_path / "good")
    for card, why in ((b"{not json", "not UTF-8 JSON"), (b"[1, 2]", "holds a JSON list"),
                      (b"\xff\xfe{}", "not UTF-8 JSON")):
        (good / "model_card.json").write_bytes(card)
        with pytest.raises(ModelLoadError, match=why):
            load_model(good)
        proc = _run("catdog_sk.predict", "--model", str(good), str(train[0]))
        assert proc.returncode == 1 and "Refusing" in _one_clean_line(proc.stderr)
    (good / "model_card.json").unlink()
    with pytest.raises(ModelLoadError, match="no model_card.json beside it"):
        load_model(good)
    assert load_model(good, unsafe=True).predict(train[:2]).shape == (2,)
    (tmp_path / "PROMOTED").write_bytes(b"\xff\xfe")
    with pytest.raises(ModelLoadError, match="not a readable UTF-8 run name"):
        load_model(tmp_path)


# -- 10. SIGTERM during fit stops the workers and removes the temporary folders ---------------------------
def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_during_fit_stops_workers_and_leaves_nothing_behind(shared_data, tmp_path):
    art = tmp_path / "art"
    args = ["catdog_sk.fit", "--data", str(shared_data / "train"), "--test", str(shared_data / "test"),
            "--features", "hog,color", "--model", "all", "--cv", "5", "--jobs", "2", "--unknown", "off",
            "--artifacts", str(art), "--cache", str(tmp_path / "c"), "--run", "sig", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    workers, deadline = [], time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        workers = [c for c in _children(proc.pid) if _alive(c)]
        if len(workers) >= 2:  # joblib's process pool is up: the grid search is running
            break
        time.sleep(0.2)
    assert proc.poll() is None and workers, "fit finished before the grid search could be interrupted"
    descendants = set(workers) | {g for w in workers for g in _children(w)}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated" in err
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(p) for p in descendants):
        time.sleep(0.2)
    assert not [p for p in descendants if _alive(p)], "worker processes outlived fit"
    assert not (art / "models" / "sig").exists()
    assert not list((art / "reports").glob(".*")) if (art / "reports").exists() else True


def test_a_jpeg_too_small_for_its_declared_size_is_truncated_not_padding(tmp_path):
    """A 716-byte JPEG whose header says 6000 x 6000 would decode as 36 MP of grey padding."""
    import io
    import struct

    from PIL import Image

    from catdog_sk.exceptions import ImageDecodeError
    from catdog_sk.preprocess import decode_image

    buf = io.BytesIO()
    Image.fromarray(textured_image(16, 16)).convert("L").save(buf, format="JPEG", quality=10)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 6000, 6000)  # height, width of the frame header
    assert len(data) < 1000
    with pytest.raises(ImageDecodeError) as exc:
        decode_image(bytes(data), path="padded.jpg")
    assert exc.value.reason == "truncated" and "6000x6000" in exc.value.detail
    # an honest small JPEG still decodes
    assert decode_image(buf.getvalue()).shape == (16, 16, 3)


def test_unknown_names_and_a_stray_scheduler_are_refused_clearly(tiny_split, tmp_path):
    from catdog_sk.exceptions import InvalidParameterError
    from catdog_sk.features import make_extractor
    from catdog_sk.models import make_pipeline

    with pytest.raises(InvalidParameterError, match="The 'name' parameter of make_extractor must be one of"):
        make_extractor("hgo")  # a typo never becomes a CNN
    with pytest.raises(InvalidParameterError, match="The 'model' parameter of make_pipeline must be one of"):
        make_pipeline("forest")
    proc = _run("catdog_sk.extract", "--data", str(tiny_split), "--features", "color", "--scheduler",
                "tcp://127.0.0.1:1", "--cache", str(tmp_path / "c"))
    assert proc.returncode == 2 and "--scheduler needs --backend dask" in proc.stderr
