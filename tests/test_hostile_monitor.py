"""Monitoring on real, messy logs: every signal that cannot be computed says why, the rest is still written.

The logs are built with PredictionLog and raw SQL (what a promotion, an old version or a crash leaves behind);
the model folder is a card and reference embeddings written by hand.
"""

import json
import sqlite3

import numpy as np
import pytest

from catdog_sk import monitor
from catdog_sk.monitoring.log import PredictionLog

RNG = np.random.default_rng(0)


def _unit(n, width):
    e = RNG.normal(size=(n, width)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _model(folder, **card_fields):
    """A model folder as monitor reads it: model_card.json and reference_embeddings.npy (1280-wide)."""
    folder.mkdir()
    card = {"classes": ["cat", "dog"], "reference": {"p_positive": RNG.uniform(size=200).round(4).tolist(),
                                                     "presence": [0.9] * 200, "unknown_rate": 0.05}}
    card.update(card_fields)
    (folder / "model_card.json").write_text(json.dumps(card))
    np.save(folder / "reference_embeddings.npy", _unit(100, 1280))
    return folder


def _log(path, n=60, width=1280, start=1_000_000.0):
    log = PredictionLog(path)
    rows = [(f"r{k}", 0, f"{k:064x}", "dog" if k % 2 else "cat", json.dumps({"cat": 0.3, "dog": 0.7}), "v1", 12.0,
             e, 0.9) for k, e in enumerate(_unit(n, width))]
    assert log.record(rows)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE predictions SET time = ? + rowid", (start,))
    return log


def _monitor(db, model, out, capsys):
    """monitor's exit status (checked against its alerts: 4 when one fired), its output and monitor.md."""
    code = monitor.main(["--db", str(db), "--model", str(model), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if not (out / "monitor.json").is_file():
        return code, captured, None
    assert code == (4 if json.loads((out / "monitor.json").read_text())["alerts"] else 0)
    return "written", captured, (out / "monitor.md").read_text()


def test_a_log_of_two_embedding_widths_compares_the_current_models(tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    _log(db, n=40, width=1280)
    _log_rows = PredictionLog(db)
    assert _log_rows.record([(f"w{k}", 0, "ab", "cat", json.dumps({"cat": 0.6, "dog": 0.4}), "v2", 9.0, e, 0.8)
                             for k, e in enumerate(_unit(30, 2560))])
    code, _, md = _monitor(db, _model(tmp_path / "m"), tmp_path / "out", capsys)
    assert code == "written"
    summary = json.loads((tmp_path / "out" / "monitor.json").read_text())
    drift = summary["embedding_drift"]
    assert drift["live_n"] == 40 and "mixes 2560-wide and 1280-wide embeddings; compared 40 rows" in drift["note"]
    assert "Embedding drift vs the test set" in md and "mixes" in md


def test_a_garbage_database_is_one_line_and_exit_1(tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    db.write_bytes(b"this is not an SQLite file" * 100)
    before = db.read_bytes()
    code, captured, _ = _monitor(db, _model(tmp_path / "m"), tmp_path / "out", capsys)
    assert code == 1 and len(captured.err.strip().splitlines()) == 1
    assert "is not a prediction log" in captured.err and not (tmp_path / "out").exists()
    assert db.read_bytes() == before  # the reader never writes into the file


def test_bad_probabilities_null_times_and_latencies_are_left_out_with_a_note(tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    _log(db, n=60)
    with sqlite3.connect(db) as db_:
        db_.execute("UPDATE predictions SET probabilities = '{}' WHERE rowid = 1")
        db_.execute("UPDATE predictions SET probabilities = NULL WHERE rowid = 2")
        db_.execute("UPDATE predictions SET probabilities = 'not json' WHERE rowid = 3")
        db_.execute("UPDATE predictions SET time = NULL WHERE rowid = 4")
        db_.execute("UPDATE predictions SET latency_ms = NULL WHERE rowid = 5")
        db_.execute("UPDATE predictions SET embedding = X'00ff00' WHERE rowid = 6")  # odd length: no float16 vector
    code, _, md = _monitor(db, _model(tmp_path / "m"), tmp_path / "out", capsys)
    assert code == "written"
    summary = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert summary["n_predictions"] == 59
    assert "1 of 60 logged rows have no time: left out" in summary["notes"]
    assert any(n.startswith("3 of 60 logged rows have probabilities that are not") for n in summary["notes"])
    assert "drift" in summary and "latency_ms" in summary  # the rest is still computed
    assert "damaged" in summary["embedding_drift"]["note"]
    assert "- Note: 1 of 60 logged rows have no time" in md and (tmp_path / "out" / "index.html").is_file()


@pytest.mark.parametrize("fields, note", [
    ({"classes": 5}, "the card's classes are 5, not two names"),
    ({"reference": {"p_positive": [0.5] * 10, "unknown_rate": "high"}}, "reference.unknown_rate is 'high'"),
    ({"reference": {"p_positive": "lots", "unknown_rate": 0.1}}, "reference.p_positive is 'lots'"),
])
def test_card_fields_of_the_wrong_type_are_reported_not_fatal(fields, note, tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    _log(db)
    code, _, md = _monitor(db, _model(tmp_path / "m", **fields), tmp_path / "out", capsys)
    assert code == "written" and note in md


def test_monitor_page_errors_use_the_documented_body(model_dir, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import app as app_module
    from catdog_sk.serving import create_app

    db = tmp_path / "log.sqlite"
    _log(db, n=30)
    with sqlite3.connect(db) as db_:
        db_.execute("UPDATE predictions SET probabilities = 'not json' WHERE rowid = 1")
    with TestClient(create_app(model_dir, log_db=db, uploads_dir=tmp_path / "uploads")) as client:
        page = client.get("/monitor")
        assert page.status_code == 200 and "1 of 30 logged rows have probabilities" in page.text

        def broken(model, log):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(app_module, "render_monitor", broken)
        monkeypatch.setattr(app_module, "MONITOR_CACHE_SECONDS", -1)
        r = client.get("/monitor")
        assert r.status_code == 500 and r.json()["status"] == 500 and "disk on fire" in r.json()["error"]
        assert client.get("/health").status_code == 200
