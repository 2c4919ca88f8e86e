"""Sphinx configuration of the catdog_sk documentation (``make docs``).

The API reference is generated from each public package's ``__all__`` when the build starts
(:func:`write_api_pages`), so a new public name appears without editing the docs, and a name that
moves between modules of a package is still found through the package.
"""

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import catdog_sk  # noqa: E402

# The gallery runs on the shared photos beside the clone (as the tests: $CATDOG_SHARED_DATA is the
# catsdogs folder, animals10/ and breeds/ beside it) and keeps its features in docs/_build, so a
# second build reads them from the cache (the examples read these two variables).
os.environ.setdefault("CATDOG_SHARED_DATA", str((ROOT / ".." / "shared" / "data" / "catsdogs").resolve()))
os.environ.setdefault("CATDOG_DOCS_CACHE", str(DOCS / "_build" / "feature-cache"))
os.environ.setdefault("MPLBACKEND", "agg")

project = "catdog_sk"
author = "the catdog_sk developers"
copyright = "2026, " + author
release = catdog_sk.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples"]  # the gallery's sources; sphinx-gallery reads them
root_doc = "index"

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = f"catdog_sk {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "header_links_before_dropdown": 5,
}
html_static_path = []
html_show_sourcelink = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 0,
    "matplotlib_animations": False,
    # "Examples using X" on each API page (the minigallery directive of the autosummary templates)
    "backreferences_dir": "api/generated/backreferences",
    "doc_module": ("catdog_sk",),
    "reference_url": {"catdog_sk": None},
}

# -- API reference from __all__ --------------------------------------------------------------

#: The public packages, in the order of the journey; each gets one page listing its ``__all__``.
API_MODULES = [
    ("catdog_sk", "The estimator, the bundled ready model, the backbone list and the exceptions."),
    ("catdog_sk.data", "Finding labelled photos on disk, splits, negatives, the PetImages download."),
    ("catdog_sk.preprocess", "Decoding any image file to RGB safely, resizing and cropping, augmentation."),
    ("catdog_sk.features", "Feature extractors, the extraction engine, the feature cache, transformers."),
    ("catdog_sk.models", "Pipelines, grids, searches, the presence model, model files and cards."),
    ("catdog_sk.metrics", "Scores: accuracy and its interval, calibration, abstention, rejection of photos of neither."),
    ("catdog_sk.evaluation", "Report plots, galleries, the comparison table and the report."),
    ("catdog_sk.training", "The fit journey as library calls: features once, every search, save, report, promote."),
    ("catdog_sk.monitoring", "The prediction log and the drift statistics of the monitor."),
    ("catdog_sk.serving", "The HTTP service."),
    ("catdog_sk.deploy", "ONNX export and the offline web page."),
    ("catdog_sk.cluster", "Scale-out on a Dask cluster."),
]

GENERATED = DOCS / "api" / "generated"


def public_names(module):
    """``module.__all__`` without dunder names (``__version__``), in its order."""
    return [n for n in getattr(module, "__all__", []) if not (n.startswith("__") and n.endswith("__"))]


def _kind(obj):
    import inspect

    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _module_page(modname, summary, owners):
    """reST of one module's page: its docstring, then autosummary tables of classes, functions, data."""
    import importlib

    module = importlib.import_module(modname)
    groups = {"class": [], "function": [], "data": []}
    also = []
    for name in public_names(module):
        obj = getattr(module, name)
        kind = _kind(obj)
        if kind != "data" and id(obj) in owners:  # a re-export documented on another page
            also.append(f":obj:`~{owners[id(obj)]}`")
            continue
        if kind != "data":
            owners[id(obj)] = f"{modname}.{name}"
        groups[kind].append(name)
    lines = [f"``{modname}``", "=" * (len(modname) + 4), "", summary, "",
             f".. automodule:: {modname}", "   :no-members:", "", f".. currentmodule:: {modname}", ""]
    titles = {"class": "Classes", "function": "Functions", "data": "Constants"}
    for kind, names in groups.items():
        if names:
            lines += [titles[kind], "-" * len(titles[kind]), "", ".. autosummary::", "   :toctree: .",
                      f"   :template: {kind}.rst", "", *[f"   {n}" for n in names], ""]
    if also:
        lines += ["Also importable from here: " + ", ".join(also) + ".", ""]
    return "\n".join(lines)


def write_api_pages(app=None, config=None):
    """Write ``api/generated/<module>.rst`` for every module of :data:`API_MODULES`."""
    GENERATED.mkdir(parents=True, exist_ok=True)
    owners = {}
    for modname, summary in API_MODULES:
        text = _module_page(modname, summary, owners)
        page = GENERATED / f"{modname}.rst"
        if not page.exists() or page.read_text(encoding="utf-8") != text:  # unchanged pages stay unchanged
            page.write_text(text, encoding="utf-8")


def skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (their docstrings link to sklearn's glossary)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_BARS = re.compile(r"(?<![\\|`])\|(?=\S)([^|`\n]*?\S)\|(?![|_])")


def escape_bars(app, what, name, obj, options, lines):
    """``|a - b|`` in a docstring means an absolute value, never a reST substitution: escape the bars.

    (``catdog_sk.evaluation.expected_calibration_error`` writes ``|accuracy - confidence|``.)
    """
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("+", "|")):  # leave grid tables and line blocks alone
            lines[i] = _BARS.sub(r"\\|\1\\|", line)


def check_shared_data(app, config):
    """The examples need the shared photos: say where they were looked for, before any example runs."""
    catsdogs = Path(os.environ["CATDOG_SHARED_DATA"])
    if str(config.plot_gallery).lower() not in ("0", "false", "no") and not (catsdogs / "train").is_dir():
        from sphinx.errors import ConfigError

        raise ConfigError(f"Shared photos not found at {catsdogs}: clone the repo beside ../shared or set "
                          f"CATDOG_SHARED_DATA (or build without running the examples: -D plot_gallery=0).")


def setup(app):
    app.connect("config-inited", check_shared_data)
    app.connect("autodoc-skip-member", skip_member)
    app.connect("autodoc-process-docstring", escape_bars)
    # Before Sphinx lists the source files: autosummary writes the per-object stubs of the pages it finds.
    app.connect("config-inited", write_api_pages)
