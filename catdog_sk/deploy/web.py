"""A static folder that classifies photos in the browser: the ONNX file, ONNX Runtime Web and one page.

Nothing is fetched at run time: the page loads ONNX Runtime Web's files from its own folder. Those
files come from the npm registry's ``onnxruntime-web`` package at build time (``make web-runtime``
unpacks them into ``artifacts/vendor/onnxruntime-web``), never from a CDN.
"""

import os
import shutil
from importlib import resources
from pathlib import Path

from .onnx import ExportError, check_exportable, check_onnx_file, write_onnx

__all__ = ["ORT_WEB_FILES", "default_ort_web_dir", "write_web"]

#: The ONNX Runtime Web files the page needs (the WebAssembly build, single- or multi-threaded).
ORT_WEB_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def default_ort_web_dir():
    """Where ONNX Runtime Web's files are looked for.

    Returns
    -------
    path : pathlib.Path
        ``$CATDOG_ORT_WEB``, else ``artifacts/vendor/onnxruntime-web`` (where ``make web-runtime`` puts it).
    """
    return os.environ.get("CATDOG_ORT_WEB") or os.path.join("artifacts", "vendor", "onnxruntime-web")


def check_ort_web(ort_dir):
    """ExportError naming the fix when a file of :data:`ORT_WEB_FILES` is missing from ``ort_dir``."""
    missing = [f for f in ORT_WEB_FILES if not (Path(ort_dir) / f).is_file()]
    if missing:
        raise ExportError(
            f"ONNX Runtime Web is not in {ort_dir} (missing {', '.join(missing)}). Run `make web-runtime`, which "
            f"unpacks the npm package onnxruntime-web there, or point --ort-web (CATDOG_ORT_WEB) at a folder "
            f"holding its dist/ files."
        )


def write_web(clf, folder, *, ort_dir=None, version="", onnx_file=None):
    """Write a static folder that classifies photos entirely in the browser.

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted, ``features='cnn'``.
    folder : str or os.PathLike
        Created whole or not at all; an existing folder is never replaced.
    ort_dir : str, default: :func:`default_ort_web_dir`
        Folder holding ONNX Runtime Web's ``dist`` files.
    version : str
        Model version shown on the page.
    onnx_file : str or os.PathLike, default=None
        An ONNX file :func:`write_onnx` wrote from this model: copied instead of exporting the network
        again, once :func:`check_onnx_file` has proven it a valid graph of model ``version``.

    Returns
    -------
    folder : pathlib.Path
        With ``index.html``, ``model.onnx``, ``model.json`` and the runtime files.
    """
    from .._io import atomic_dir, check_new_dir

    ort_dir = ort_dir or default_ort_web_dir()
    check_exportable(clf)
    check_new_dir(folder)
    check_ort_web(ort_dir)
    if onnx_file is not None:
        check_onnx_file(onnx_file, version)
    with atomic_dir(folder) as work:
        if onnx_file is None:
            write_onnx(clf, work / "model.onnx", version=version)
        else:
            shutil.copyfile(onnx_file, work / "model.onnx")
            shutil.copyfile(Path(onnx_file).with_suffix(".json"), work / "model.json")
        for name in ORT_WEB_FILES:
            shutil.copyfile(Path(ort_dir) / name, work / name)
        page = resources.files("catdog_sk.deploy").joinpath("page.html").read_text(encoding="utf-8")
        (work / "index.html").write_text(page, encoding="utf-8")
        (work / "NOTICE.txt").write_text(_notice(ort_dir), encoding="utf-8")
    return Path(folder)


def _notice(ort_dir):
    """Where the bundled runtime comes from and under which licence (the npm package ships no LICENSE file)."""
    import json

    try:
        meta = json.loads((Path(ort_dir) / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    return (f"{', '.join(ORT_WEB_FILES)}: ONNX Runtime Web {meta.get('version', '(version unknown)')} "
            f"(npm package onnxruntime-web), {meta.get('license', 'MIT')} License, "
            f"Copyright (c) Microsoft Corporation. https://github.com/microsoft/onnxruntime\n"
            f"model.onnx, model.json, index.html: written by catdog_sk.\n")
