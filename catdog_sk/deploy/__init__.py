"""Deployment beyond the Python server: portable ONNX files and a page that classifies in the browser."""

__all__ = ["ExportError", "OnnxModel", "check_onnx_file", "onnx_graph", "preprocessing", "write_onnx", "write_web"]


def __getattr__(name):  # onnx, skl2onnx and torch load only when an export runs
    if name in ("ExportError", "OnnxModel", "check_onnx_file", "onnx_graph", "preprocessing", "write_onnx"):
        from . import onnx as _onnx

        return getattr(_onnx, name)
    if name == "write_web":
        from .web import write_web

        return write_web
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
