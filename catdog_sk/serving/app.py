"""HTTP service: the model loaded once, predictions over HTTP, a web page, metrics and feedback.

FastAPI is the ecosystem's standard for typed HTTP APIs in Python and comes with
a test client; it is imported only when a service is created.
"""

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from ..exceptions import ImageDecodeError
from ..preprocess import DEFAULT_MAX_PIXELS, decode_image

__all__ = ["create_app", "app_from_env", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_REQUEST_TIMEOUT"]

logger = logging.getLogger("catdog_sk.serve")

#: Seconds a request may take, from its first byte to its answer, before it is answered 408 or 503.
DEFAULT_REQUEST_TIMEOUT = 30.0

#: Uploads above this many bytes are refused with 413 before decoding.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: Images one /predict request may carry; more get 413.
MAX_IMAGES_PER_REQUEST = 16

#: Decoded pixels one /predict request may cost (sum over its images, read from their headers before
#: any is decoded); more get 413. Images are decoded and classified a few at a time.
MAX_PIXELS_PER_REQUEST = 64_000_000
_BATCH = 4

#: Largest /feedback body (a request id, a label and an item number fit in far less).
MAX_FEEDBACK_BYTES = 4096

#: GET /monitor summarises at most this many of the latest predictions, and caches the page this long.
MONITOR_ROWS = 2000
MONITOR_CACHE_SECONDS = 30.0

#: HTTP status for each decode failure reason.
_STATUS = {"too_large": 413, "not_an_image": 415, "empty": 422, "truncated": 422, "corrupt": 422,
           "bad_array": 422, "unreadable": 422}

class _RequestTimeout:
    """ASGI middleware: a request that takes longer than ``seconds`` gets a JSON error instead of hanging.

    408 when the client had not finished sending its body (a slow or stalled
    upload holds a connection, never a worker), 503 when the server was too
    slow. ``on_timeout(path, status)`` is called for each (metrics).
    """

    def __init__(self, app, seconds, on_timeout=None):
        self.app = app
        self.seconds = seconds
        self.on_timeout = on_timeout

    async def __call__(self, scope, receive, send):
        import asyncio

        if scope["type"] != "http" or not self.seconds:
            return await self.app(scope, receive, send)
        state = {"body_done": False, "started": False}

        async def receive_tracked():
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def send_tracked(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive_tracked, send_tracked), self.seconds)
        except asyncio.TimeoutError:
            if state["started"]:
                return  # the answer is already on its way; nothing better to say
            status = 503 if state["body_done"] else 408
            message = (f"The request took longer than {self.seconds:g} s; try again." if status == 503 else
                       f"The request body did not arrive within {self.seconds:g} s.")
            if self.on_timeout is not None:
                self.on_timeout(scope.get("path", ""), status)
            body = json.dumps({"error": message, "status": status}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})


class _Metrics:
    """Prometheus series for one app, in their own registry (BentoML-style names, base units).

    With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it), values
    live in files shared by all worker processes and ``/metrics`` adds them up,
    so every worker answers with the totals of all of them.
    """

    def __init__(self, version, sha):
        import os

        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.requests = Counter("catdog_requests_total", "HTTP requests", ["endpoint", "http_response_code"],
                                registry=self.registry)
        self.latency = Histogram("catdog_request_duration_seconds", "Request latency", ["endpoint"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.predictions = Counter("catdog_predictions_total", "Predictions by label", ["label"],
                                   registry=self.registry)
        self.confidence = Histogram("catdog_prediction_confidence", "Probability of the predicted label",
                                    buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0), registry=self.registry)
        self.feedback = Counter("catdog_feedback_total", "Feedback received", ["correct"], registry=self.registry)
        self.log_errors = Counter("catdog_prediction_log_errors_total", "Failed prediction-log writes",
                                  registry=self.registry)
        self.reload_errors = Counter("catdog_model_reload_errors_total",
                                     "Promoted models that could not be loaded (the previous one kept serving)",
                                     registry=self.registry)
        self.info = Gauge("catdog_model_info", "The served model", ["version", "sha256"], registry=self.registry,
                          multiprocess_mode="livemax")
        self._model = None
        self.set_model(version, sha)

    def set_model(self, version, sha):
        if self._model is not None:
            self.info.labels(*self._model).set(0)
        self._model = (version, sha)
        self.info.labels(version=version, sha256=sha).set(1)

    def exposition(self):
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def create_app(model_path, *, log_db=None, uploads_dir=None, max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
               max_pixels=DEFAULT_MAX_PIXELS, unsafe=False, request_timeout=DEFAULT_REQUEST_TIMEOUT):
    """Build the FastAPI application serving one saved model.

    Parameters
    ----------
    model_path : str or os.PathLike
        A model directory written by ``fit``, or a models root (``artifacts/models``):
        then the promoted model is served, and a newly promoted one is picked up
        without a restart.
    log_db : str or os.PathLike, default=None
        SQLite prediction log (default: ``prediction_log.sqlite`` in ``model_path``).
    uploads_dir : str or os.PathLike, default=None
        Where uploaded images are kept by content hash, so feedback can be used
        for retraining (default: ``uploads/`` beside the log).
    max_upload_bytes : int, default=10 MiB
        Larger uploads get 413 without being decoded.
    max_pixels : int, default=DEFAULT_MAX_PIXELS
        Images declaring more pixels get 413 (decompression-bomb guard).
    unsafe : bool, default=False
        Passed to :func:`catdog_sk.models.load_model`.
    request_timeout : float or None, default=30.0
        Seconds from a request's first byte to its answer; slower requests
        are answered 408 (body still arriving) or 503. None: no limit.

    Returns
    -------
    app : fastapi.FastAPI
        Routes: ``GET /`` (web page), ``POST /predict``, ``POST /feedback``,
        ``GET /health``, ``GET /ready``, ``GET /metrics``.
    """
    from fastapi import FastAPI, HTTPException, Request
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from ..models import load_model
    from ..models.persistence import PROMOTED_FILE
    from ._log import PredictionLog

    root = Path(model_path) if Path(model_path).is_dir() else Path(model_path).parent
    pointer = root / PROMOTED_FILE
    log = PredictionLog(log_db or root / "prediction_log.sqlite")
    uploads = Path(uploads_dir) if uploads_dir else Path(log.path).parent / "uploads"
    predict_lock = threading.Lock()  # compiled CNN runtimes are not re-entrant
    reload_lock = threading.Lock()
    state = {}

    def load():
        """Load the model into a new snapshot and swap it in whole: a request never mixes two models."""
        mtime = pointer.stat().st_mtime_ns if pointer.exists() else None
        clf = load_model(model_path, unsafe=unsafe)
        from ..features import extract_features

        # Warm up: load and compile the network now, not on the first request (no cache here:
        # a cached warm-up image would skip the network).
        extractors = clf.extractors()
        extract_features([np.zeros((8, 8, 3), np.uint8)], extractors, n_jobs=1)
        from ..models.card import model_version
        from ..models.persistence import promoted_model_dir

        card = getattr(clf, "card_", None)
        state["model"] = {"clf": clf, "extractors": extractors, "sha": card.sha256 if card else "",
                          "dir": promoted_model_dir(model_path),
                          "version": model_version(clf), "classes": [str(c) for c in clf.classes_],
                          "pointer_mtime": mtime}

    def pointer_mtime():
        try:
            return pointer.stat().st_mtime_ns
        except OSError:
            return None

    def current():
        """Snapshot of the served model, reloaded first if the models root promoted another one.

        A promotion that cannot be loaded (missing run, tampered file, bad pointer) never takes the
        service down: the model it has keeps serving, the failure is counted in /metrics and logged
        once, and the load is tried again only when ``PROMOTED`` changes again.
        """
        seen = pointer_mtime()
        if seen is not None and seen != state["model"]["pointer_mtime"]:
            with reload_lock:
                if seen != state["model"]["pointer_mtime"] and seen != state.get("failed_mtime"):
                    try:
                        load()
                    except Exception as exc:  # noqa: BLE001 - any failure keeps the old model
                        state["failed_mtime"] = seen
                        metrics.reload_errors.inc()
                        logger.error("reload of the promoted model failed, still serving %s: %s",
                                     state["model"]["version"], exc)
                    else:
                        metrics.set_model(state["model"]["version"], state["model"]["sha"])
        return state["model"]

    load()
    metrics = _Metrics(state["model"]["version"], state["model"]["sha"])

    app = FastAPI(title="catdog_sk", version=state["model"]["version"],
                  description="Tell photos of cats from photos of dogs.")
    app.state.current = current
    app.state.prediction_log = log
    app.add_middleware(_RequestTimeout, seconds=request_timeout, on_timeout=lambda path, status: (
        metrics.requests.labels(endpoint=path, http_response_code=str(status)).inc()))

    def problem(status, message, endpoint):
        metrics.requests.labels(endpoint=endpoint, http_response_code=str(status)).inc()
        raise HTTPException(status_code=status, detail=message)

    async def read_body(request, limit, endpoint):
        """The request body, read chunk by chunk; 413 as soon as it passes ``limit`` bytes."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            problem(413, f"Request body of {int(declared):,} bytes is larger than the limit of {limit:,} bytes.",
                    endpoint)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                problem(413, f"Request body is larger than the limit of {limit:,} bytes.", endpoint)
            chunks.append(chunk)
        return b"".join(chunks)

    def media_type(request):
        return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def parse_json(body, endpoint):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser allows
            problem(422, "Body is not valid JSON.", endpoint)

    async def read_uploads(request):
        """Return [(name, bytes)] from a multipart form or a JSON body of base64 strings."""
        kind = media_type(request)
        if kind not in ("multipart/form-data", "application/json"):
            problem(415, "Send images as multipart/form-data (field 'file') or as JSON "
                         '{"images": ["<base64>", ...]}.', "/predict")
        body_limit = MAX_IMAGES_PER_REQUEST * (4 * (max_upload_bytes // 3 + 2) + 1024) + 65536
        body = await read_body(request, body_limit, "/predict")
        if kind == "multipart/form-data":
            request._body = body  # starlette parses the form from the body already read (and bounded)
            try:
                form = await request.form(max_files=MAX_IMAGES_PER_REQUEST, max_fields=MAX_IMAGES_PER_REQUEST)
            except HTTPException:
                raise
            except Exception as exc:  # noqa: BLE001 - a malformed form is the client's error
                problem(422 if "Too many" not in str(exc) else 413, f"Malformed multipart body: {exc}", "/predict")
            items = []
            for name, value in form.multi_items():
                if hasattr(value, "read"):
                    data = await value.read(max_upload_bytes + 1)
                    items.append((value.filename or name, data))
            return items
        parsed = parse_json(body, "/predict")
        images = parsed.get("images") if isinstance(parsed, dict) else None
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            problem(422, 'JSON body must be {"images": ["<base64>", ...]}.', "/predict")
        if len(images) > MAX_IMAGES_PER_REQUEST:
            problem(413, f"{len(images)} images in one request; at most {MAX_IMAGES_PER_REQUEST}.", "/predict")
        items = []
        for k, text in enumerate(images):
            if len(text) > 4 * (max_upload_bytes // 3 + 2):
                problem(413, f"Image {k} is larger than {max_upload_bytes:,} bytes.", "/predict")
            try:
                items.append((f"image{k}", base64.b64decode(text, validate=True)))
            except (binascii.Error, ValueError):
                problem(422, f"Image {k} is not valid base64.", "/predict")
        return items

    def keep_uploads(hashes, blobs):
        """Keep each decoded upload by content hash (for retraining on feedback); never fails a request."""
        import os

        try:
            uploads.mkdir(parents=True, exist_ok=True)
            for h, data in zip(hashes, blobs):
                target = uploads / f"{h}.img"
                if not target.exists():
                    tmp = uploads / f".{h}.{uuid.uuid4().hex}.tmp"
                    tmp.write_bytes(data)
                    os.replace(tmp, target)
        except OSError:
            metrics.log_errors.inc()

    def infer(uploads_in):
        """Decode and predict a few images at a time (in a worker thread); a decode error is returned.

        Every image's header is checked first (size, pixel cap, the request's pixel budget), so a bad
        request costs no decoding; then at most ``_BATCH`` decoded images are held at once.
        """
        from ..features import extract_features
        from ..preprocess import image_size

        total = 0
        for name, data in uploads_in:
            try:
                width, height = image_size(data, path=name, max_pixels=max_pixels)
            except ImageDecodeError as exc:
                return exc
            total += width * height
        if total > MAX_PIXELS_PER_REQUEST:
            return ImageDecodeError(None, "too_large", f"the request's images hold {total:,} pixels in all; at "
                                                       f"most {MAX_PIXELS_PER_REQUEST:,} per request")
        model = current()
        features, decisions = [], []
        for start in range(0, len(uploads_in), _BATCH):
            try:
                images = [decode_image(data, path=name, max_pixels=max_pixels)
                          for name, data in uploads_in[start:start + _BATCH]]
            except ImageDecodeError as exc:
                return exc
            with predict_lock:  # compiled CNN runtimes are not re-entrant
                res = extract_features(images, model["extractors"], n_jobs=1)
            del images
            F = np.hstack(res.features)
            features.append(res.features)
            decisions.append(model["clf"].predict_features(F))
        merged = [np.concatenate(parts) for parts in zip(*features)]
        return (model, merged, np.concatenate([d.labels for d in decisions]),
                np.concatenate([d.proba for d in decisions]), np.concatenate([d.presence for d in decisions]))

    @app.post("/predict")
    async def predict(request: Request):
        start = time.perf_counter()
        uploads_in = await read_uploads(request)
        if not uploads_in:
            problem(422, "No image in the request.", "/predict")
        for name, data in uploads_in:
            if len(data) > max_upload_bytes:
                problem(413, f"{name} is larger than {max_upload_bytes:,} bytes.", "/predict")
        # Decoding and the network run in a worker thread: the event loop keeps answering
        # /health, /metrics and other uploads meanwhile.
        outcome = await run_in_threadpool(infer, uploads_in)
        if isinstance(outcome, ImageDecodeError):
            problem(_STATUS.get(outcome.reason, 422), str(outcome), "/predict")
        model, features, labels, proba, presence = outcome
        hashes = [hashlib.sha256(data).hexdigest() for _, data in uploads_in]
        blobs = [data for _, data in uploads_in]
        names = [ex.name for ex in model["extractors"]]
        if "cnn" in names:  # the unit embeddings, without the ImageNet head columns
            cnn = model["extractors"][names.index("cnn")]
            embeddings = features[names.index("cnn")][:, :cnn.embedding_dim]
        else:
            embeddings = [None] * len(uploads_in)
        version = model["version"]
        keep_uploads(hashes, blobs)
        request_id = uuid.uuid4().hex
        ms = 1000 * (time.perf_counter() - start)
        predictions = []
        for item, (label, p, pres) in enumerate(zip(labels, proba, presence)):
            label = str(label)
            probs = {c: round(float(v), 6) for c, v in zip(model["classes"], p)}
            predictions.append({"item": item, "label": label, "confidence": round(float(p.max()), 6),
                                "probabilities": probs, "presence": round(float(pres), 6)})
            metrics.predictions.labels(label=label).inc()
            metrics.confidence.observe(float(p.max()))
        abstains = getattr(model["clf"], "presence_", None) is not None
        ok = log.record([(request_id, k, h, pr["label"], json.dumps(pr["probabilities"]), version, ms, e,
                          pr["presence"] if abstains else None)
                         for k, (pr, h, e) in enumerate(zip(predictions, hashes, embeddings))])
        if not ok:
            metrics.log_errors.inc()
        metrics.requests.labels(endpoint="/predict", http_response_code="200").inc()
        metrics.latency.labels(endpoint="/predict").observe(time.perf_counter() - start)
        return {"request_id": request_id, "model_version": version, "predictions": predictions}

    @app.post("/feedback")
    async def feedback(request: Request):
        shape = 'Body must be JSON {"request_id": "...", "label": "cat"|"dog", "item": 0}'
        if media_type(request) != "application/json":
            problem(415, shape + ".", "/feedback")
        body = parse_json(await read_body(request, MAX_FEEDBACK_BYTES, "/feedback"), "/feedback")
        if not isinstance(body, dict):
            problem(422, shape + ".", "/feedback")
        request_id, label, item = body.get("request_id"), body.get("label"), body.get("item", 0)
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 64:
            problem(422, shape + "; request_id must be the string /predict returned.", "/feedback")
        if not isinstance(label, str):
            problem(422, shape + "; label must be a string.", "/feedback")
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < MAX_IMAGES_PER_REQUEST:
            problem(422, shape + f"; item must be a whole number from 0 to {MAX_IMAGES_PER_REQUEST - 1}.",
                    "/feedback")
        classes = current()["classes"]
        if label not in classes:
            problem(422, f"label must be one of {', '.join(classes)}; got {label[:40]!r}.", "/feedback")
        recorded = log.feedback(request_id, item, label)
        if recorded is None:
            problem(503, "The prediction log is unavailable; feedback was not stored.", "/feedback")
        if recorded is False:
            problem(404, f"No logged prediction {request_id[:64]!r} item {item}.", "/feedback")
        predicted, new = recorded
        if new:  # a replayed report is stored once and counted once
            metrics.feedback.labels(correct=str(predicted == label).lower()).inc()
        metrics.requests.labels(endpoint="/feedback", http_response_code="200").inc()
        return {"status": "recorded" if new else "already recorded", "request_id": request_id, "item": item,
                "label": label, "predicted": predicted}

    monitor_cache = {"at": 0.0, "html": None, "version": None}

    def render_monitor(model):
        """The monitoring report over the latest MONITOR_ROWS predictions, as one HTML page (plots inlined)."""
        import tempfile

        from ..monitoring import (REFERENCE_EMBEDDINGS, find_alerts, monitor_html, summarize,
                                  write_monitor_report)

        card = getattr(model["clf"], "card_", None)
        ref = card.reference if card is not None else {}
        emb_path = Path(model["dir"]) / REFERENCE_EMBEDDINGS
        ref_emb = np.load(emb_path, allow_pickle=False) if emb_path.is_file() else None
        rows = log.rows(limit=MONITOR_ROWS)
        live_emb = log.embeddings(limit=500) if ref_emb is not None else None
        summary = summarize(rows, classes=model["classes"], reference_scores=ref.get("p_positive"),
                            reference_embeddings=ref_emb, live_embeddings=live_emb,
                            reference_presence=ref.get("presence"), reference_unknown_rate=ref.get("unknown_rate"))
        summary["alerts"] = find_alerts(summary)
        with tempfile.TemporaryDirectory() as tmp:
            write_monitor_report(tmp, rows, summary, classes=model["classes"],
                                 reference_scores=ref.get("p_positive"), reference_presence=ref.get("presence"))
            md = (Path(tmp) / "monitor.md").read_text().splitlines()
            png = Path(tmp) / "monitor.png"
            image = ("data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()) if png.is_file() else None
        return monitor_html(md, image)

    @app.get("/monitor", response_class=HTMLResponse)
    async def monitor_page():
        model = current()
        now = time.time()
        if (monitor_cache["html"] is None or now - monitor_cache["at"] > MONITOR_CACHE_SECONDS
                or monitor_cache["version"] != model["version"]):
            monitor_cache["html"] = await run_in_threadpool(render_monitor, model)
            monitor_cache["at"], monitor_cache["version"] = now, model["version"]
        metrics.requests.labels(endpoint="/monitor", http_response_code="200").inc()
        return monitor_cache["html"]

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        model = current()
        return {"status": "ready", "model_version": model["version"], "classes": model["classes"]}

    @app.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (Path(__file__).with_name("page.html")).read_text().replace("{{version}}", current()["version"])

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail, "status": exc.status_code}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request, exc):  # unknown paths, wrong methods: the same body shape
        return JSONResponse({"error": str(exc.detail)[:200], "status": exc.status_code}, status_code=exc.status_code)

    return app


#: Environment variable carrying create_app's keyword arguments to worker processes.
CONFIG_ENV = "CATDOG_SERVE_CONFIG"


def app_from_env():
    """App factory for multi-worker servers: ``create_app(**json.loads($CATDOG_SERVE_CONFIG))``."""
    import os

    return create_app(**json.loads(os.environ[CONFIG_ENV]))
