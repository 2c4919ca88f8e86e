"""The server under load and abuse, on 127.0.0.1 only, bounded in clients, time and requests."""

import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np

from conftest import running_server

CLIENTS = 4
SECONDS = 8.0


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _post(url, data, filename="upload.jpg", timeout=60):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/predict", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_concurrent_clients_mixing_good_and_bad_uploads(model_dir, photos, tmp_path):
    """N clients for T seconds: no 5xx, every 200 is in the prediction log, memory stays flat."""
    good = [open(p, "rb").read() for p in photos]
    bad = [b"", b"not an image at all" * 50, np.random.default_rng(1).bytes(20_000), good[0][: len(good[0]) // 3]]
    log_db = tmp_path / "log.sqlite"
    with running_server(model_dir, "--log-db", str(log_db), with_process=True) as (url, proc):
        for data in good:  # warm up, then measure memory from here
            assert _post(url, data) == 200
        rss_start = _rss_mb(proc.pid)
        results, lock = [], threading.Lock()

        def client(k):
            rng = np.random.default_rng(k)
            end = time.perf_counter() + SECONDS
            while time.perf_counter() < end:
                valid = rng.random() < 0.6
                data = good[rng.integers(len(good))] if valid else bad[rng.integers(len(bad))]
                t0 = time.perf_counter()
                status = _post(url, data)
                with lock:
                    results.append((valid, status, time.perf_counter() - t0))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)
        rss_end = _rss_mb(proc.pid)
    statuses = [s for _, s, _ in results]
    assert not [s for s in statuses if s >= 500], statuses
    assert all(s == 200 for v, s, _ in results if v)
    assert all(400 <= s < 500 for v, s, _ in results if not v)
    ok = sum(s == 200 for s in statuses)
    with sqlite3.connect(log_db) as db:
        logged = db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    assert logged == ok + len(good)  # every answered prediction was logged (plus the warm-up ones)
    latencies = np.array([t for v, _, t in results if v]) * 1000
    print(f"\n{len(results)} requests from {CLIENTS} clients in {SECONDS:.0f} s: {ok} predictions, "
          f"p50 {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms; "
          f"server RSS {rss_start:.0f} -> {rss_end:.0f} MB")
    assert ok >= CLIENTS  # the load was real
    assert rss_end - rss_start < 150, (rss_start, rss_end)


def test_a_stalled_upload_gets_408_and_does_not_block_others(model_dir, photos, tmp_path):
    photo = open(photos[0], "rb").read()
    with running_server(model_dir, "--log-db", str(tmp_path / "log.sqlite"), "--timeout", "5") as url:
        assert _post(url, photo) == 200  # warm
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
            slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n{\"images\": [\"")
            # While that upload stalls, other clients are served.
            assert _post(url, photo) == 200
            t0 = time.perf_counter()
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = slow.recv(4096)
                if not chunk:
                    break
                answer += chunk
            waited = time.perf_counter() - t0
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert waited < 20


def test_a_request_slower_than_the_limit_gets_503(model_dir, photos, tmp_path):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    app = create_app(model_dir, log_db=tmp_path / "log.sqlite", uploads_dir=tmp_path / "up", request_timeout=0.001)
    with TestClient(app) as client:
        r = client.post("/predict", files={"file": ("a.jpg", open(photos[0], "rb").read(), "image/jpeg")})
    assert r.status_code == 503 and "longer than" in r.json()["error"]
