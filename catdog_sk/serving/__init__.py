"""Serving: the HTTP service (FastAPI). It writes the prediction log that monitoring reads."""

from ..monitoring.log import PredictionLog  # re-exported: the log the service writes

__all__ = ["PredictionLog", "create_app"]


def __getattr__(name):  # FastAPI loads only when a service is built
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
