"""Serving throughput and latency with the prediction log on SQLite and on PostgreSQL, one and two servers.

Usage::

    python benchmarks/bench_serving.py [--requests 400] [--clients 4] [--repeat 2]
                                       [--json-out artifacts/bench/serving.json]

A CatDogClassifier (Lite0 + logistic regression, the library's defaults) fitted on 200 shared train
photos is served by one or two ``serve`` processes on 127.0.0.1; ``--clients`` threads send
``--requests`` single-photo base64 JSON requests of shared test photos in all, spread round-robin over the
servers. Four set-ups, measured side by side in one run, in turn, ``--repeat`` times each:

- one server, SQLite log (the default: a file beside the model);
- two servers sharing one SQLite file;
- one server, PostgreSQL log (a throwaway cluster started here, with PostgreSQL's durable defaults:
  ``fsync`` on, as SQLite syncs each commit);
- two servers sharing one PostgreSQL log.

Printed: requests/s and p50/p99 latency for each (the median over repeats), and the ratio of PostgreSQL's
throughput to SQLite's at the same load (issue 26's target: at least 0.90). Needs Debian's postgresql
(``make postgres``).
"""

import argparse
import base64
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from _report import BENCH_DIR, SHARED, write_report


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model, log_db):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "catdog_sk.serve", "--model", str(model), "--port", str(port),
                             "--log-db", str(log_db), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/ready", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    raise SystemExit("serve did not answer within 120 s")


def _post(url, body):
    req = urllib.request.Request(url + "/predict", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
        return r.status


def _load(urls, bodies, n_requests, n_clients):
    """Send ``n_requests`` over ``n_clients`` threads, round-robin over ``urls``; (requests/s, p50, p99, errors)."""
    latencies, errors, lock = [], [0], threading.Lock()

    def client(c):
        for k in range(c, n_requests, n_clients):
            start = time.perf_counter()
            try:
                ok = _post(urls[k % len(urls)], bodies[k % len(bodies)]) == 200
            except OSError:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - start)
                errors[0] += not ok

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = 1000 * np.asarray(latencies)
    return n_requests / wall, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), errors[0]


def _promotion_pickup(root, log_db, bodies, n=5):
    """Seconds from a new PROMOTED until both of two servers under load say they serve it (``/ready``)."""
    import os

    servers = [_start(root, log_db) for _ in range(2)]
    urls, stop, times = [u for _, u in servers], threading.Event(), []

    def client(c):
        k = c
        while not stop.is_set():
            try:
                _post(urls[k % 2], bodies[k % len(bodies)])
            except OSError:
                pass
            k += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(n):
            name = "ba"[k % 2]
            time.sleep(1.0)
            start = time.perf_counter()
            (root / "PROMOTED").write_text(name + "\n")
            os.utime(root / "PROMOTED", ns=(time.time_ns(), time.time_ns()))
            while True:
                ready = [json.loads(urllib.request.urlopen(u + "/ready", timeout=10).read()) for u in urls]
                if all(r["promoted"] and Path(r["model_dir"]).name == name for r in ready):
                    times.append(time.perf_counter() - start)
                    break
                if time.perf_counter() - start > 120:
                    raise SystemExit("a promotion was not picked up within 120 s")
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (default 400)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements of each set-up (default 2)")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "serving.json"))
    args = parser.parse_args(argv)

    from catdog_sk import CatDogClassifier
    from catdog_sk._pgcluster import ThrowawayPostgres, find_postgres
    from catdog_sk.data import load_dataset
    from catdog_sk.models import save_model

    if find_postgres() is None:
        raise SystemExit("PostgreSQL is missing: run `make postgres` (apt-get install postgresql)")
    data = load_dataset(SHARED)
    train, test = data["train"], data["test"]
    idx = np.r_[0:100, 1000:1100]
    bodies = [json.dumps({"images": [base64.b64encode(Path(test.paths[i]).read_bytes()).decode()]}).encode()
              for i in np.r_[0:50, 1000:1050]]
    with tempfile.TemporaryDirectory() as tmp, ThrowawayPostgres(durable=True) as pg:
        tmp = Path(tmp)
        clf = CatDogClassifier().fit([train.paths[i] for i in idx], train.labels[idx])
        model = tmp / "models"  # a models root: PROMOTED names the served run
        for name in ("a", "b"):
            save_model(clf, model / name)
        (model / "PROMOTED").write_text("a\n")
        setups = {}
        for n_servers in (1, 2):
            setups[("sqlite", n_servers)] = tmp / f"log{n_servers}.sqlite"
            setups[("postgresql", n_servers)] = pg.create_database(f"bench{n_servers}")
        results = {key: [] for key in setups}
        for _ in range(args.repeat):
            for key, log_db in setups.items():
                servers = [_start(model, log_db) for _ in range(key[1])]
                try:
                    urls = [u for _, u in servers]
                    _load(urls, bodies, 8 * len(urls), len(urls))  # warm-up
                    results[key].append(_load(urls, bodies, args.requests, args.clients))
                finally:
                    for proc, _ in servers:
                        proc.terminate()
                        proc.wait(timeout=30)
                print(f"  {key[0]:>10} x{key[1]}: {results[key][-1][0]:.1f} req/s", file=sys.stderr)
        pickup = _promotion_pickup(model, setups[("postgresql", 2)], bodies)

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    report = {"requests": args.requests, "clients": args.clients, "repeat": args.repeat, "cpu": cpu,
              "setups": {}}
    print(f"\nServing, Lite0 + logistic regression, {args.requests} single-photo requests from {args.clients} "
          f"clients, median of {args.repeat} ({cpu})")
    print("| log | servers | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for (dialect, n), runs in results.items():
        rps, p50, p99 = (float(np.median([r[k] for r in runs])) for k in range(3))
        errors = sum(r[3] for r in runs)
        report["setups"][f"{dialect}-{n}"] = {"requests_per_s": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}
        print(f"| {dialect} | {n} | {rps:.1f} | {p50:.0f} | {p99:.0f} | {errors} |")
    for n in (1, 2):
        setups = report["setups"]
        ratio = setups[f"postgresql-{n}"]["requests_per_s"] / setups[f"sqlite-{n}"]["requests_per_s"]
        report[f"postgresql_over_sqlite_{n}"] = ratio
        print(f"{n} server{'s' * (n > 1)}: PostgreSQL log / SQLite log throughput = {ratio:.3f}x "
              f"(target >= 0.90: {'met' if ratio >= 0.90 else 'NOT met'})")
    report["promotion_pickup_s"] = pickup
    print(f"Promotion picked up by both of two servers under load (4 clients): median "
          f"{np.median(pickup):.2f} s, max {max(pickup):.2f} s over {len(pickup)} promotions")
    write_report(report, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
