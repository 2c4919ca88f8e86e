"""The HTTP service, through FastAPI's test client and through a real server on 127.0.0.1."""

import base64
import io
import json
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import png_header_only, running_server, textured_image

pytestmark = pytest.mark.cnn


@pytest.fixture
def client(model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    app = create_app(model_dir, log_db=tmp_path / "log.sqlite", max_upload_bytes=2_000_000)
    with TestClient(app) as c:
        c.app_ = app
        yield c


def _jpeg(img, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_health_ready_and_page(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["classes"] == ["cat", "dog"]
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text and ready["model_version"] in page.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_every_asset_from_the_server_itself(client, page):
    """Issue 27: /docs was blank offline, its Swagger UI loaded from a CDN."""
    import re

    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    assets += re.findall(r"""url: ["']([^"']+)["']""", html.text) + re.findall(r"""spec-url=["']([^"']+)""", html.text)
    assert any(a.endswith(".js") for a in assets), assets
    for url in assets:
        assert not re.match(r"(https?:)?//", url), f"{page} loads {url} from another host"
        got = client.get(url)
        assert got.status_code == 200 and len(got.content) > 100, (url, got.status_code)
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_multipart_matches_the_estimator(client, photos):
    cat, dog = photos
    with open(cat, "rb") as fh:
        response = client.post("/predict", files={"file": ("cat.jpg", fh, "image/jpeg")})
    assert response.status_code == 200
    body = response.json()
    (pred,) = body["predictions"]
    expected = client.app_.state.current()["clf"].predict_proba([cat])[0]
    assert pred["label"] == "cat"
    assert pred["probabilities"]["cat"] == pytest.approx(expected[0], abs=1e-5)
    assert len(body["request_id"]) == 32 and body["model_version"] == client.get("/ready").json()["model_version"]


def test_predict_base64_json_batch(client, photos):
    images = [base64.b64encode(open(p, "rb").read()).decode() for p in photos]
    body = client.post("/predict", json={"images": images}).json()
    assert [p["label"] for p in body["predictions"]] == ["cat", "dog"]


@pytest.mark.parametrize("payload, status, message", [
    (b"hello, I am text", 415, "not_an_image"),
    (b"", 422, "empty"),
    (_jpeg(textured_image(256, 256))[:600], 422, "truncated"),
    (png_header_only(30000, 30000), 413, "too_large"),
    (b"\xff" * 2_000_001, 413, "larger than"),
])
def test_bad_uploads_get_4xx_and_the_server_keeps_serving(client, photos, payload, status, message):
    response = client.post("/predict", files={"file": ("x.jpg", payload, "image/jpeg")})
    assert response.status_code == status and message in response.json()["error"]
    with open(photos[1], "rb") as fh:
        assert client.post("/predict", files={"file": ("dog.jpg", fh, "image/jpeg")}).status_code == 200


@pytest.mark.parametrize("kwargs, status", [
    ({"content": b"raw bytes", "headers": {"content-type": "image/jpeg"}}, 415),
    ({"json": {"images": ["%%%not base64"]}}, 422),
    ({"json": {"pictures": []}}, 422),
])
def test_malformed_requests_are_explained(client, kwargs, status):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status and response.json()["error"]


def test_feedback_is_joined_to_the_logged_prediction(client, photos):
    with open(photos[0], "rb") as fh:
        body = client.post("/predict", files={"file": ("cat.jpg", fh, "image/jpeg")}).json()
    ok = client.post("/feedback", json={"request_id": body["request_id"], "label": "dog"})
    assert ok.status_code == 200 and ok.json()["predicted"] == "cat"
    assert client.post("/feedback", json={"request_id": "nope", "label": "dog"}).status_code == 404
    horse = client.post("/feedback", json={"request_id": body["request_id"], "label": "horse"})
    assert horse.status_code == 422 and "'neither'" in horse.json()["error"], horse.text
    (row,) = [r for r in client.app_.state.prediction_log.rows() if r["request_id"] == body["request_id"]]
    assert row["label"] == "cat" and row["true_label"] == "dog" and len(row["sha256"]) == 64
    metrics = client.get("/metrics").text
    assert 'catdog_predictions_total{label="cat"}' in metrics
    assert 'catdog_feedback_total{correct="false"} 1.0' in metrics
    assert 'catdog_requests_total{endpoint="/feedback",http_response_code="404"} 1.0' in metrics
    assert "catdog_request_duration_seconds_bucket" in metrics and "catdog_model_info{" in metrics


@pytest.mark.parametrize("said", ["neither", "unknown"])
def test_feedback_can_say_the_photo_shows_neither(client, photos, said):
    """Issue 27: 'unknown' got a 422; a photo of neither is stored as the model's own 'unknown' answer."""
    with open(photos[0], "rb") as fh:
        body = client.post("/predict", files={"file": ("cat.jpg", fh, "image/jpeg")}).json()
    ok = client.post("/feedback", json={"request_id": body["request_id"], "label": said})
    assert ok.status_code == 200 and ok.json()["label"] == "unknown" and ok.json()["predicted"] == "cat"
    (row,) = [r for r in client.app_.state.prediction_log.rows() if r["request_id"] == body["request_id"]]
    assert row["true_label"] == "unknown"
    assert 'catdog_feedback_total{correct="false"} 1.0' in client.get("/metrics").text


def test_a_broken_prediction_log_never_breaks_serving(model_dir, tmp_path, photos):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    app = create_app(model_dir, log_db=tmp_path / "log.sqlite")
    (tmp_path / "log.sqlite").unlink()
    (tmp_path / "log.sqlite").mkdir()  # every write now fails
    with TestClient(app) as c, open(photos[0], "rb") as fh:
        assert c.post("/predict", files={"file": ("cat.jpg", fh, "image/jpeg")}).status_code == 200
        assert "catdog_prediction_log_errors_total 1.0" in c.get("/metrics").text


def test_serve_cli_on_loopback(model_dir, photos, tmp_path):
    with running_server(model_dir, "--log-db", str(tmp_path / "log.sqlite")) as url:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        data = base64.b64encode(open(photos[1], "rb").read()).decode()
        req = urllib.request.Request(url + "/predict", data=json.dumps({"images": [data]}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read())["predictions"][0]["label"] == "dog"


def test_monitor_reports_volume_drift_and_live_accuracy(client, photos, model_dir, tmp_path, capsys, shared_data):
    from catdog_sk import monitor

    ids = []
    for path in photos * 3:
        with open(path, "rb") as fh:
            ids.append(client.post("/predict", files={"file": ("x.jpg", fh, "image/jpeg")}).json()["request_id"])
    client.post("/feedback", json={"request_id": ids[0], "label": "cat"})  # right
    client.post("/feedback", json={"request_id": ids[1], "label": "cat"})  # wrong: it was a dog
    db = client.app_.state.prediction_log.path
    code = monitor.main(["--db", db, "--model", str(model_dir), "--out", str(tmp_path / "mon"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == (4 if summary["alerts"] else 0)
    # only 6 predictions so far: no drift number from so little, but a note saying so
    assert "needs at least 20" in summary["embedding_drift"]["note"]
    assert summary["drift"] == {"note": "not computed: needs at least 20 predictions with readable probabilities; "
                                        "have 6"}
    assert "- Score drift: not computed: needs at least 20" in (tmp_path / "mon" / "monitor.md").read_text()
    assert summary["n_predictions"] == 6 and summary["class_share"] == {"cat": 0.5, "dog": 0.5, "unknown": 0.0}
    assert summary["live_accuracy"]["n_feedback"] == 2 and summary["live_accuracy"]["accuracy"] == 0.5
    lo, hi = summary["live_accuracy"]["ci95"]
    assert 0 < lo < 0.5 < hi < 1
    assert (tmp_path / "mon" / "monitor.png").stat().st_size > 1000
    # with 20 more predictions of other test photos, embedding drift is measured
    more = sorted((shared_data / "test" / "cats").glob("*.jpg"))[200:210] + \
        sorted((shared_data / "test" / "dogs").glob("*.jpg"))[200:210]
    for path in more:
        with open(path, "rb") as fh:
            assert client.post("/predict", files={"file": ("x.jpg", fh, "image/jpeg")}).status_code == 200
    monitor.main(["--db", db, "--model", str(model_dir), "--out", str(tmp_path / "mon"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["drift"]["reference_n"] == 80 and summary["drift"]["psi"] >= 0  # 26 predictions: measured
    drift = summary["embedding_drift"]
    assert drift["live_n"] == 26 and drift["reference_n"] == 80
    assert 0.0 <= drift["domain_classifier_auc"] <= 1.0 and drift["mmd2"] > -1e-6
    # a configured threshold that is crossed makes the exit status non-zero, with the reason
    assert monitor.main(["--db", db, "--out", str(tmp_path / "mon2"), "--max-p99-ms", "0.001"]) == 4  # an alert, not 1
    assert "p99 latency" in capsys.readouterr().out


def test_embedding_drift_measures_tell_shift_from_no_shift():
    from catdog_sk.monitoring import domain_classifier_auc, mmd_rbf

    rng = np.random.default_rng(0)
    ref, same, shifted = rng.normal(size=(200, 16)), rng.normal(size=(200, 16)), rng.normal(0.7, 1, size=(200, 16))
    assert domain_classifier_auc(ref, same) < 0.65
    assert domain_classifier_auc(ref, shifted) > 0.9
    assert mmd_rbf(ref, shifted) > 5 * max(mmd_rbf(ref, same), 1e-4)


def test_psi_and_wilson_interval():
    from catdog_sk.monitoring import psi, wilson_interval

    rng = np.random.default_rng(0)
    same = rng.beta(0.3, 0.3, 5000)
    assert psi(same[:2500], same[2500:]) < 0.05
    assert psi(same, rng.beta(5, 1, 5000)) > 0.25
    lo, hi = wilson_interval(95, 100)
    assert lo < 0.95 < hi and hi <= 1.0
    assert wilson_interval(0, 10)[0] == 0.0


def test_feedback_retrain_promote_and_hot_reload(shared_data, animals10, feature_cache, tmp_path, capsys,
                                                monkeypatch):
    """The deployment loop: fit -> serve -> predict -> feedback -> monitor -> retrain -> promotion -> reload.

    Feedback of both kinds reaches retraining (issue 27): a corrected pet becomes a training photo, and a
    photo the user says shows neither becomes a negative of the presence model."""
    from fastapi.testclient import TestClient

    from catdog_sk import fit, monitor
    from catdog_sk.serving import create_app
    from test_fit_cli import _subset

    monkeypatch.delenv("CATDOG_NEGATIVES", raising=False)  # `make test` exports it: the feedback's negative alone
    data = _subset(shared_data, tmp_path, n_train=40, n_test=40)
    art = tmp_path / "art"
    common = ["--data", str(data), "--features", "cnn", "--model", "logreg", "--cv", "3",
              "--cache", str(feature_cache), "--artifacts", str(art), "--quiet"]
    assert fit.main(common + ["--run", "r1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["promotion"]["promoted"] and (art / "models" / "PROMOTED").read_text().strip() == "r1"

    app = create_app(art / "models")
    with TestClient(app) as c:
        v1 = c.get("/ready").json()["model_version"]
        photo = sorted((shared_data / "test" / "dogs").glob("*.jpg"))[-1]
        with open(photo, "rb") as fh:
            body = c.post("/predict", files={"file": ("dog.jpg", fh, "image/jpeg")}).json()
        assert body["model_version"] == v1
        assert c.post("/feedback", json={"request_id": body["request_id"], "label": "dog"}).status_code == 200
        with open(sorted((animals10 / "cow").glob("*"))[0], "rb") as fh:
            cow = c.post("/predict", files={"file": ("cow.jpg", fh, "image/jpeg")}).json()
        said = c.post("/feedback", json={"request_id": cow["request_id"], "label": "neither"})
        assert said.status_code == 200 and said.json()["label"] == "unknown", said.text
        db = art / "models" / "prediction_log.sqlite"
        assert monitor.main(["--db", str(db), "--model", str(art / "models" / "r1"), "--out", str(tmp_path / "m"),
                             "--quiet"]) in (0, 4)
        assert (tmp_path / "m" / "monitor.md").exists()
        capsys.readouterr()

        # retrain with the feedback image added; champion/challenger decides on the same test set
        assert fit.main(common + ["--run", "r2", "--extra-data", "feedback", "--json"]) == 0
        second = json.loads(capsys.readouterr().out)
        card = json.loads((art / "models" / "r2" / "model_card.json").read_text())
        assert card["data"]["train_counts"] == {"cat": 20, "dog": 21}  # 20 photos each + the corrected dog
        used = card["unknown"]["negatives_used"]
        assert used["n"] == 1 and used["source"].endswith("(feedback)"), used  # the cow, a negative now
        decision = card["promotion"]
        assert decision == second["promotion"] and "champion_test_accuracy" in decision
        assert decision["promoted"] == (decision["challenger_test_accuracy"] >= decision["champion_test_accuracy"])
        v2 = c.get("/ready").json()["model_version"]
        assert (v2 != v1) == decision["promoted"]  # picked up without a restart
        assert "Promotion" in (art / "models" / "r2" / "model_card.md").read_text()

        assert fit.main(common + ["--run", "r3", "--no-promote", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["promotion"] == {"promoted": False, "reason": "--no-promote"}
        assert c.get("/ready").json()["model_version"] == v2


def test_metrics_add_up_across_two_worker_processes(model_dir, photos, tmp_path):
    with running_server(model_dir, "--workers", "2", "--log-db", str(tmp_path / "log.sqlite")) as url:
        body = json.dumps({"images": [base64.b64encode(open(photos[0], "rb").read()).decode()]}).encode()
        for _ in range(12):
            req = urllib.request.Request(url + "/predict", data=body, headers={"content-type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()
        time.sleep(0.5)
        for _ in range(6):  # whichever worker answers, it reports the total of both
            text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
            total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith("catdog_predictions_total{"))
            assert total == 12.0, text
