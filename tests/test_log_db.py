"""One prediction log for several servers (issue 26): SQLite by default, PostgreSQL by URL.

The PostgreSQL tests start a throwaway cluster of their own (the ``postgres`` fixture); without Debian's
postgresql they are skipped with the reason, and under CI=true they fail.
"""

import base64
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import clients_running, running_server

N_UPLOADS = 500


def _post(url, payload, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _dropped(metrics_text):
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith("catdog_prediction_log_dropped_total{"))


def test_two_servers_one_postgres_log_lose_nothing_through_a_database_outage(model_dir, shared_data, postgres,
                                                                            tmp_path):
    """Four clients, 500 uploads over two servers, feedback always to the server that did not answer, and
    PostgreSQL stopped and started again in the middle: no 5xx, one row per answered prediction, every
    feedback joined, each distinct photo stored once; monitor and fit's feedback read the whole traffic."""
    from catdog_sk import monitor
    from catdog_sk.data import load_dataset
    from catdog_sk.monitoring.log import PredictionLog
    from catdog_sk.training import feedback_dataset

    url = postgres.create_database("outage")
    test = load_dataset(shared_data)["test"]
    picks = np.r_[0:125, 1000:1125]  # 250 distinct photos, each sent twice
    photos = [(base64.b64encode(open(test.paths[i], "rb").read()).decode(), test.labels[i]) for i in picks]
    answered, feedback, failures, lock = {}, {}, [], threading.Lock()
    done = threading.Semaphore(0)
    with running_server(model_dir, "--log-db", url) as a, running_server(model_dir, "--log-db", url) as b:
        servers = (a, b)

        def client(c):
            for k in range(c, N_UPLOADS, 4):
                image, truth = photos[k % len(photos)]
                status, body = _post(servers[k % 2] + "/predict", {"images": [image]})
                if status != 200:
                    failures.append(("predict", status, body))
                    continue
                key = (body["request_id"], 0)
                fb_status, fb = _post(servers[(k + 1) % 2] + "/feedback", {"request_id": key[0], "label": truth})
                with lock:
                    answered[key] = body["predictions"][0]["label"]
                    if fb_status in (200, 202):
                        feedback[key] = truth
                    else:
                        failures.append(("feedback", fb_status, fb))
                done.release()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for _ in range(150):
            done.acquire(timeout=120)
        postgres.stop()  # the database goes away mid-run ...
        for _ in range(60):
            done.acquire(timeout=120)
        postgres.start()  # ... and comes back
        for t in threads:
            t.join(300)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = [json.loads(_get(s + "/ready"))["log"] for s in servers]
            if all(log["buffered"] == 0 and log["reachable"] for log in logs):
                break
            time.sleep(0.5)
        metrics = [_get(s + "/metrics") for s in servers]
    dropped = sum(_dropped(text) for text in metrics)
    failed_writes = sum(float(line.rsplit(" ", 1)[1]) for text in metrics for line in text.splitlines()
                        if line.startswith("catdog_prediction_log_errors_total "))

    assert failures == []  # no 5xx (nor any other refusal) for any prediction or feedback
    assert len(answered) == N_UPLOADS
    assert failed_writes > 0  # the outage was real: writes failed and waited in the buffers
    assert all(log["buffered"] == 0 and log["reachable"] for log in logs), logs
    rows = PredictionLog(url, create=False).rows()
    assert len(rows) + dropped == len(answered)  # a shortfall is always accounted for ...
    assert dropped == 0  # ... and the buffer held the whole outage
    assert {(r["request_id"], r["item"]) for r in rows} == set(answered)  # exactly one row per answer
    assert {(r["request_id"], r["item"]): r["label"] for r in rows} == answered
    assert {(r["request_id"], r["item"]): r["true_label"] for r in rows} == feedback  # every feedback joined
    assert len({r["server"] for r in rows}) == 2
    import sqlalchemy as sa

    with sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://")).connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*), count(DISTINCT sha256) FROM images")).one()
    assert tuple(stored) == (len(picks), len(picks))  # each distinct photo once

    assert monitor.main(["--db", url, "--out", str(tmp_path / "mon"), "--json", "--quiet"]) in (0, 4)
    assert json.loads((tmp_path / "mon" / "monitor.json").read_text())["n_predictions"] == N_UPLOADS
    pets = feedback_dataset(url)
    assert len(pets.paths) == len(picks)  # every corrected photo, whichever server kept it
    assert sorted(pets.labels) == sorted(test.labels[picks])


def test_a_full_buffer_drops_the_oldest_rows_and_counts_them(tmp_path):
    """While the log cannot be written, at most ``max_buffered`` rows wait; the rest are counted as dropped,
    and what waited is written, in order, once the log is back."""
    from catdog_sk.monitoring.log import PredictionLog

    path = tmp_path / "log.sqlite"
    log = PredictionLog(path, max_buffered=5, retry_interval=0.05)
    path.unlink()
    path.mkdir()  # every write fails now
    drops = []
    log.on_drop = lambda kind, n: drops.append((kind, n))
    for k in range(8):
        assert log.record([(f"r{k}", 0, f"h{k}", "cat", "{}", "v", 1.0, None, 0.5)]) is False
    status = log.status()
    assert status["reachable"] is False and status["buffered"] == 5
    assert status["dropped"]["prediction"] == 3 and drops == [("prediction", 1)] * 3
    assert log.feedback("r7", 0, "dog") == "queued"  # a row of the buffer too: the oldest prediction goes
    assert log.dropped["prediction"] == 4
    path.rmdir()  # the log is back
    assert log.flush(10)
    rows = PredictionLog(path, create=False).rows()
    assert [r["request_id"] for r in rows] == ["r4", "r5", "r6", "r7"]
    assert rows[-1]["true_label"] == "dog" and log.status()["reachable"] is True
    assert len(rows) + log.dropped["prediction"] == 8


def test_an_older_log_is_migrated_on_open_and_readers_never_write(tmp_path):
    """A log of the first schema (no presence, no server, no images) opens unchanged for a reader and is
    migrated by a writer, its rows and feedback intact."""
    from catdog_sk.monitoring import _store
    from catdog_sk.monitoring.log import PredictionLog

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE predictions (request_id TEXT, item INTEGER, time REAL, sha256 TEXT, label TEXT,
            probabilities TEXT, model_version TEXT, latency_ms REAL, embedding BLOB, PRIMARY KEY (request_id, item));
        CREATE TABLE feedback (request_id TEXT, item INTEGER, time REAL, true_label TEXT,
            PRIMARY KEY (request_id, item));
        INSERT INTO predictions VALUES ('old', 0, 1.0, 'abc', 'dog', '{}', 'v0', 5.0, NULL);
        INSERT INTO feedback VALUES ('old', 0, 2.0, 'cat');""")
    db.commit()
    db.close()
    before = path.read_bytes()
    (row,) = PredictionLog(path, create=False).rows()
    assert row["true_label"] == "cat" and row["presence"] is None and row["server"] is None
    assert path.read_bytes() == before  # a reader never writes

    log = PredictionLog(path)
    with log._engine.connect() as conn:
        assert _store.schema_version(conn) == _store.SCHEMA_VERSION
    assert log.record([("new", 0, "def", "cat", "{}", "v1", 3.0, [0.5, 0.25], 0.9)], images={"def": b"jpeg"})
    old, new = log.rows()
    assert (old["request_id"], old["true_label"], new["presence"]) == ("old", "cat", 0.9)
    assert log.feedback("old", 0, "dog") == ("dog", True)
    (up,) = [tmp_path / "uploads" / "def.img"] if log.feedback("new", 0, "cat") else []
    paths, labels, missing = log.feedback_images()
    assert paths == [str(up)] and labels == ["cat"] and missing == ["abc"]  # 'abc' predates kept uploads
    assert up.read_bytes() == b"jpeg"


def test_an_upload_already_written_is_not_sent_to_the_database_again(tmp_path):
    """The same photo in many requests: one images row, and its bytes cross to the database once."""
    import sqlalchemy as sa

    from catdog_sk.monitoring.log import PredictionLog

    log = PredictionLog(tmp_path / "log.sqlite")
    sent = []
    sa.event.listen(log._engine, "before_cursor_execute",
                    lambda conn, cursor, statement, params, context, many: sent.append(statement)
                    if "INTO images" in statement else None)
    for k in range(5):
        assert log.record([(f"r{k}", 0, "same", "cat", "{}", "v", 1.0, None, 0.5)], images={"same": b"jpeg"})
    assert log.record([("r5", 0, "other", "dog", "{}", "v", 1.0, None, 0.5)], images={"other": b"png"})
    assert len(sent) == 2  # 'same' once, 'other' once
    with log._engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sha256, data FROM images ORDER BY sha256")).all() == [
            ("other", b"png"), ("same", b"jpeg")]
    assert [r["sha256"] for r in log.rows()] == ["same"] * 5 + ["other"]


@pytest.mark.parametrize("argv, status, message", [
    (["catdog_sk.serve", "--log-db", "mysql://u@h/db"], 2, "The 'log_db' parameter must be a file path"),
    (["catdog_sk.monitor", "--db", "postgresql://nobody@127.0.0.1:1/none"], 1, "cannot be read"),
    (["catdog_sk.monitor", "--db", "no/such/log.sqlite"], 1, "No prediction log at no/such/log.sqlite"),
])
def test_a_log_that_cannot_be_used_is_one_line(argv, status, message, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", *argv, "--out", str(tmp_path)] if "monitor" in argv[0] else
                         [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == status, out.stderr
    assert message in out.stderr.strip().splitlines()[-1] and "Traceback" not in out.stderr, out.stderr


def test_ten_promotions_under_traffic_on_two_servers_fail_nothing_and_both_end_on_the_promoted_model(
        model_dir, photos, postgres, tmp_path):
    """Two serve processes watch one models folder and share one PostgreSQL log; two clients predict on both
    while PROMOTED changes ten times, one second apart: every request answered 200, no reload error, and both
    servers end on the model PROMOTED names."""
    import os
    import shutil

    root = tmp_path / "models"
    for name in ("a", "b"):
        shutil.copytree(model_dir, root / name)
    (root / "PROMOTED").write_text("a\n")
    url = postgres.create_database("promotions")
    body = {"images": [base64.b64encode(open(p, "rb").read()).decode() for p in photos]}
    statuses = []
    with running_server(root, "--log-db", url) as a, running_server(root, "--log-db", url) as b:
        with clients_running(lambda i: statuses.append(_post((a, b)[i % 2] + "/predict", body)[0])):
            for k in range(10):
                time.sleep(1.0)
                (root / "PROMOTED").write_text("ab"[(k + 1) % 2] + "\n")
                os.utime(root / "PROMOTED", ns=(time.time_ns(), time.time_ns()))
            time.sleep(1.0)
        deadline, ready = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            for server in (a, b):  # a request is what makes a server look at PROMOTED
                _post(server + "/predict", body)
            ready = [json.loads(_get(server + "/ready")) for server in (a, b)]
            if all(r["promoted"] for r in ready):
                break
            time.sleep(0.5)
        metrics = [_get(server + "/metrics") for server in (a, b)]
    assert len(statuses) >= 20 and set(statuses) == {200}, statuses
    assert [(r["promoted"], r["model_dir"].rsplit("/", 1)[-1]) for r in ready] == [(True, "a")] * 2  # k=9: 'a'
    assert all("catdog_model_reload_errors_total 0.0" in text for text in metrics)
