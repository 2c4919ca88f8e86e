"""The service's Prometheus series, and the middleware that answers slow requests instead of hanging."""

import json

__all__ = ["Metrics", "RequestTimeout"]


class RequestTimeout:
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


class Metrics:
    """Prometheus series for one app, in their own registry (BentoML-style names, base units).

    With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it), values
    live in files shared by all worker processes and ``/metrics`` adds them up,
    so every worker answers with the totals of all of them.
    """

    def __init__(self, version, sha):
        import os

        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from ..models.classifier import UNKNOWN_REASONS

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.requests = Counter("catdog_requests_total", "HTTP requests", ["endpoint", "http_response_code"],
                                registry=self.registry)
        self.latency = Histogram("catdog_request_duration_seconds", "Request latency", ["endpoint"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.predictions = Counter("catdog_predictions_total", "Predictions by label", ["label"],
                                   registry=self.registry)
        self.unknown = Counter("catdog_unknown_total", "Answers 'unknown', by reason (too_small, not_cat_or_dog)",
                               ["reason"], registry=self.registry)
        for reason in UNKNOWN_REASONS:  # shown at 0: a dashboard can tell 'none yet' from 'not exported'
            self.unknown.labels(reason=reason)
        self.confidence = Histogram("catdog_prediction_confidence",
                                    "Confidence of the answer: P(label) for a cat or a dog, 1 - presence for unknown",
                                    buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0), registry=self.registry)
        self.feedback = Counter("catdog_feedback_total", "Feedback received", ["correct"], registry=self.registry)
        self.log_errors = Counter("catdog_prediction_log_errors_total",
                                  "Prediction-log writes that failed (the rows wait in the buffer)",
                                  registry=self.registry)
        self.log_dropped = Counter("catdog_prediction_log_dropped_total",
                                   "Log rows dropped beyond the buffer while the log's database was away",
                                   ["kind"], registry=self.registry)
        for kind in ("prediction", "feedback", "image"):  # shown at 0, so a shortfall is always accounted for
            self.log_dropped.labels(kind=kind)
        self.log_buffered = Gauge("catdog_prediction_log_buffered", "Log rows waiting for the log's database",
                                  registry=self.registry, multiprocess_mode="livesum")
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
