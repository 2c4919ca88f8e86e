"""HTTP service: the model loaded once, predictions over HTTP, a web page, metrics and feedback.

FastAPI is the ecosystem's standard for typed HTTP APIs in Python and comes with a test client; it
is imported only when a service is created. The parts: ``_uploads`` reads and bounds requests,
``_slot`` holds the served model (and reloads on promotion), ``_inference`` turns bytes into
decisions, ``_metrics`` holds the Prometheus series and the request timeout; this module wires them
into routes.
"""

import base64
import contextlib
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path

from ..exceptions import ImageDecodeError
from ..preprocess import DEFAULT_MAX_PIXELS
from ._inference import MAX_PIXELS_PER_REQUEST, classify_uploads, embeddings_of, keep_uploads
from ._metrics import Metrics, RequestTimeout
from ._slot import ModelSlot
from ._uploads import MAX_FEEDBACK_BYTES, MAX_IMAGES_PER_REQUEST, Problem, media_type, parse_json, read_body, \
    read_uploads

__all__ = ["create_app", "app_from_env", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_REQUEST_TIMEOUT",
           "MAX_IMAGES_PER_REQUEST", "MAX_PIXELS_PER_REQUEST", "MAX_FEEDBACK_BYTES"]

logger = logging.getLogger("catdog_sk.serve")

#: Seconds a request may take, from its first byte to its answer, before it is answered 408 or 503.
DEFAULT_REQUEST_TIMEOUT = 30.0

#: Uploads above this many bytes are refused with 413 before decoding.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: GET /monitor summarises at most this many of the latest predictions, and caches the page this long.
MONITOR_ROWS = 2000
MONITOR_CACHE_SECONDS = 30.0

#: HTTP status for each decode failure reason.
_STATUS = {"too_large": 413, "not_an_image": 415, "empty": 422, "truncated": 422, "corrupt": 422,
           "bad_array": 422, "unreadable": 422}


def create_app(model_path, *, log_db=None, uploads_dir=None, max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
               max_pixels=DEFAULT_MAX_PIXELS, unsafe=False, request_timeout=DEFAULT_REQUEST_TIMEOUT, device=None):
    """Build the FastAPI application serving one saved model.

    Parameters
    ----------
    model_path : str or os.PathLike
        A model directory written by ``fit``, or a models root (``artifacts/models``):
        then the promoted model is served, and a newly promoted one is picked up
        without a restart.
    log_db : str or os.PathLike, default=None
        The prediction log: a SQLite file path or ``sqlite:///path`` (default:
        ``prediction_log.sqlite`` in ``model_path``), or ``postgresql://user@host:port/db``
        for one log shared by several servers. Uploads are kept in it once per distinct
        photo (by SHA-256), so feedback sent to any server can be used for retraining.
    uploads_dir : str or os.PathLike, default=None
        Also keep each upload as a file here, named by its SHA-256 (default: only in the log).
    max_upload_bytes : int, default=10 MiB
        Larger uploads get 413 without being decoded.
    max_pixels : int, default=DEFAULT_MAX_PIXELS
        Images declaring more pixels get 413 (decompression-bomb guard).
    unsafe : bool, default=False
        Passed to :func:`catdog_sk.models.load_model`.
    request_timeout : float or None, default=30.0
        Seconds from a request's first byte to its answer; slower requests
        are answered 408 (body still arriving) or 503. None: no limit.
    device : {'auto', 'cpu', 'cuda'} or None, default=None
        Where the CNN runs; None keeps the model's own ``device`` parameter.

    Returns
    -------
    app : fastapi.FastAPI
        Routes: ``GET /`` (web page), ``POST /predict``, ``POST /feedback``,
        ``GET /monitor``, ``GET /health``, ``GET /ready``, ``GET /metrics``.
    """
    from fastapi_offline import FastAPIOffline

    from ..monitoring.log import PredictionLog

    slot = ModelSlot(model_path, unsafe=unsafe, device=device)
    log = PredictionLog(log_db or slot.root / "prediction_log.sqlite")
    metrics = Metrics(slot.model["version"], slot.model["sha"])
    slot.on_reload = lambda model: metrics.set_model(model["version"], model["sha"])
    slot.on_reload_error = lambda exc: metrics.reload_errors.inc()
    log.on_drop = lambda kind, n: metrics.log_dropped.labels(kind=kind).inc(n)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        log.close()  # what the buffer still holds is written before the process ends

    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from the package, not a CDN.
    app = FastAPIOffline(title="catdog_sk", version=slot.model["version"],
                         description="Tell photos of cats from photos of dogs.", lifespan=lifespan)
    app.state.current = slot.current
    app.state.prediction_log = log
    app.add_middleware(RequestTimeout, seconds=request_timeout, on_timeout=lambda path, status: (
        metrics.requests.labels(endpoint=path, http_response_code=str(status)).inc()))
    uploads = Path(uploads_dir) if uploads_dir else None
    _add_predict_route(app, slot, log, metrics, uploads=uploads, max_upload_bytes=max_upload_bytes,
                       max_pixels=max_pixels)
    _add_feedback_route(app, slot, log, metrics)
    _add_monitor_route(app, slot, log, metrics)
    _add_info_routes(app, slot, log, metrics)
    _add_error_handlers(app, metrics)
    return app


def _add_predict_route(app, slot, log, metrics, *, uploads, max_upload_bytes, max_pixels):
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    @app.post("/predict")
    async def predict(request: Request):
        start = time.perf_counter()
        items = await read_uploads(request, max_upload_bytes)
        if not items:
            raise Problem(422, "No image in the request.")
        for name, data in items:
            if len(data) > max_upload_bytes:
                raise Problem(413, f"{name} is larger than {max_upload_bytes:,} bytes.")
        # Decoding and the network run in a worker thread: the event loop keeps answering
        # /health, /metrics and other uploads meanwhile.
        outcome = await run_in_threadpool(classify_uploads, slot, items, max_pixels=max_pixels)
        if isinstance(outcome, ImageDecodeError):
            raise Problem(_STATUS.get(outcome.reason, 422), str(outcome))
        model, features, decision = outcome
        hashes = [hashlib.sha256(data).hexdigest() for _, data in items]
        if uploads is not None and not keep_uploads(uploads, hashes, [data for _, data in items]):
            metrics.log_errors.inc()
        request_id = new_request_id()
        predictions = [_prediction(k, label, p, presence, reason, sure, model["classes"], metrics)
                       for k, (label, p, presence, reason, sure) in enumerate(zip(*decision, decision.confidence))]
        abstains = getattr(model["clf"], "presence_", None) is not None
        ms = 1000 * (time.perf_counter() - start)
        ok = log.record([(request_id, k, h, pr["label"], json.dumps(pr["probabilities"]), model["version"], ms, e,
                          pr["presence"] if abstains else None)
                         for k, (pr, h, e) in enumerate(zip(predictions, hashes,
                                                            embeddings_of(model, features, len(items))))],
                        images={h: data for h, (_, data) in zip(hashes, items)})
        if not ok:  # the rows wait in the log's buffer; counted, never a failed prediction
            metrics.log_errors.inc()
        metrics.requests.labels(endpoint="/predict", http_response_code="200").inc()
        metrics.latency.labels(endpoint="/predict").observe(time.perf_counter() - start)
        return {"request_id": request_id, "model_version": model["version"], "predictions": predictions}


def new_request_id():
    """A request id: 11 hex digits of the time in milliseconds, then 21 random ones (32 in all).

    The time lets any server tell a prediction answered moments ago, still in another server's log buffer,
    from one that does not exist.
    """
    return f"{int(time.time() * 1000):011x}{uuid.uuid4().hex[:21]}"


def is_recent_request(request_id):
    """True when ``request_id`` is one of :func:`new_request_id`'s from the last FEEDBACK_WAIT_S seconds."""
    from ..monitoring.log import FEEDBACK_WAIT_S

    if len(request_id) != 32 or any(c not in "0123456789abcdef" for c in request_id):
        return False
    age = time.time() - int(request_id[:11], 16) / 1000
    return -5.0 < age < FEEDBACK_WAIT_S


def _prediction(item, label, proba, presence, reason, confidence, classes, metrics):
    """One image's answer (and its count in /metrics); ``confidence`` is 1 - presence for 'unknown'.

    ``reason`` says why a label is 'unknown' (``'too_small'``, ``'not_cat_or_dog'``:
    ``catdog_sk.models.classifier.UNKNOWN_REASONS``) and is None for an answered photo.
    """
    label = str(label)
    metrics.predictions.labels(label=label).inc()
    if reason is not None:
        metrics.unknown.labels(reason=str(reason)).inc()
    metrics.confidence.observe(float(confidence))
    return {"item": item, "label": label, "confidence": round(float(confidence), 6),
            "probabilities": {c: round(float(v), 6) for c, v in zip(classes, proba)},
            "presence": round(float(presence), 6), "reason": None if reason is None else str(reason)}


#: Feedback labels saying the photo shows neither a cat nor a dog. ``fit --extra-data feedback`` makes such
#: photos negatives of the presence model, and corrected pets positives.
NEITHER_LABELS = ("neither", "unknown")


def _add_feedback_route(app, slot, log, metrics):
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from ..models.classifier import UNKNOWN

    shape = 'Body must be JSON {"request_id": "...", "label": "cat"|"dog"|"neither", "item": 0}'

    @app.post("/feedback")
    async def feedback(request: Request):
        if media_type(request) != "application/json":
            raise Problem(415, shape + ".")
        body = parse_json(await read_body(request, MAX_FEEDBACK_BYTES))
        if not isinstance(body, dict):
            raise Problem(422, shape + ".")
        request_id, label, item = body.get("request_id"), body.get("label"), body.get("item", 0)
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 64:
            raise Problem(422, shape + "; request_id must be the string /predict returned.")
        if not isinstance(label, str):
            raise Problem(422, shape + "; label must be a string.")
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < MAX_IMAGES_PER_REQUEST:
            raise Problem(422, shape + f"; item must be a whole number from 0 to {MAX_IMAGES_PER_REQUEST - 1}.")
        classes = slot.current()["classes"]
        if label in NEITHER_LABELS:  # the photo shows neither: stored as the model's own 'unknown' answer
            label = UNKNOWN
        elif label not in classes:
            raise Problem(422, f"label must be one of {', '.join(classes)}, or 'neither' (also 'unknown') for a "
                               f"photo of neither, such as another animal; got {label[:40]!r}.")
        recorded = log.feedback(request_id, item, label, wait_if_missing=is_recent_request(request_id))
        if recorded == "queued":  # the log's database is away: joined to its prediction when it is back
            metrics.requests.labels(endpoint="/feedback", http_response_code="202").inc()
            return JSONResponse({"status": "queued", "request_id": request_id, "item": item, "label": label,
                                 "predicted": None}, status_code=202)
        if recorded is False:
            raise Problem(404, f"No logged prediction {request_id[:64]!r} item {item}.")
        predicted, new = recorded
        if new:  # a replayed report is stored once and counted once
            metrics.feedback.labels(correct=str(predicted == label).lower()).inc()
        metrics.requests.labels(endpoint="/feedback", http_response_code="200").inc()
        return {"status": "recorded" if new else "already recorded", "request_id": request_id, "item": item,
                "label": label, "predicted": predicted}


def render_monitor(model, log):
    """The monitoring report over the latest MONITOR_ROWS predictions, as one HTML page (plots inlined)."""
    import tempfile

    from ..monitoring import find_alerts, load_reference, monitor_html, summarize, write_monitor_report

    ref = load_reference(model["dir"], getattr(model["clf"], "card_", None))
    ref["classes"] = model["classes"]
    rows = log.rows(limit=MONITOR_ROWS)
    live_emb = widths = None
    if ref["reference_embeddings"] is not None:
        live_emb, widths = log.embedding_sample(limit=500, width=ref["reference_embeddings"].shape[1])
    summary = summarize(rows, live_embeddings=live_emb, embedding_widths=widths, **ref)
    summary["alerts"] = find_alerts(summary)
    with tempfile.TemporaryDirectory() as tmp:
        write_monitor_report(tmp, rows, summary, classes=ref["classes"], reference_scores=ref["reference_scores"],
                             reference_presence=ref["reference_presence"])
        md = (Path(tmp) / "monitor.md").read_text().splitlines()
        png = Path(tmp) / "monitor.png"
        image = ("data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()) if png.is_file() else None
    return monitor_html(md, image)


def _add_monitor_route(app, slot, log, metrics):
    from fastapi.responses import HTMLResponse
    from starlette.concurrency import run_in_threadpool

    cache = {"at": 0.0, "html": None, "version": None}

    @app.get("/monitor", response_class=HTMLResponse)
    async def monitor_page():
        model = slot.current()
        now = time.time()
        if cache["html"] is None or now - cache["at"] > MONITOR_CACHE_SECONDS or cache["version"] != model["version"]:
            try:
                cache["html"] = await run_in_threadpool(render_monitor, model, log)
            except Exception as exc:  # noqa: BLE001 - a report that cannot be built is a 500 in the documented body
                logger.exception("the monitoring report could not be built")
                raise Problem(500, f"The monitoring report could not be built ({type(exc).__name__}: "
                                   f"{str(exc)[:200]}).") from None
            cache["at"], cache["version"] = now, model["version"]
        metrics.requests.labels(endpoint="/monitor", http_response_code="200").inc()
        return cache["html"]


def _add_info_routes(app, slot, log, metrics):
    from fastapi.responses import HTMLResponse, Response

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        """Ready to predict; ``log`` says whether the prediction log is reachable (predictions never wait
        for it: rows are buffered while it is away)."""
        model = slot.current()
        status = log.status()
        return {"status": "ready", "model_version": model["version"], "classes": model["classes"],
                "model_dir": str(model["dir"]), "promoted": slot.is_promoted(model),
                "log": {k: status[k] for k in ("url", "dialect", "reachable", "buffered", "dropped")}}

    @app.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        metrics.log_buffered.set(log.status()["buffered"])
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (Path(__file__).with_name("page.html")).read_text().replace("{{version}}", slot.current()["version"])


def _add_error_handlers(app, metrics):
    """One error body everywhere, ``{"error", "status"}``; refusals are counted per endpoint."""
    from fastapi import HTTPException
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(Problem)
    async def refused(request, exc):
        metrics.requests.labels(endpoint=request.url.path, http_response_code=str(exc.status)).inc()
        return JSONResponse({"error": exc.message, "status": exc.status}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail, "status": exc.status_code}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request, exc):  # unknown paths, wrong methods: the same body shape
        return JSONResponse({"error": str(exc.detail)[:200], "status": exc.status_code}, status_code=exc.status_code)


#: Environment variable carrying create_app's keyword arguments to worker processes.
CONFIG_ENV = "CATDOG_SERVE_CONFIG"


def app_from_env():
    """App factory for multi-worker servers: ``create_app(**json.loads($CATDOG_SERVE_CONFIG))``.

    ``serve --workers N`` sets the variable and starts uvicorn with this factory, so each worker
    process builds its own app from the same configuration.

    Returns
    -------
    app : fastapi.FastAPI
    """
    import os

    return create_app(**json.loads(os.environ[CONFIG_ENV]))
