"""Markup in user strings never reaches a report page as HTML (issue: folder and file names, labels, titles).

The pages are rendered from Markdown by markdown-it-py with raw HTML disabled; these tests write a real
report for photos kept in a folder named like an XSS payload and parse the page that comes out.
"""

import shutil
from html.parser import HTMLParser

import numpy as np
import pytest

from catdog_sk._html import markdown_page
from catdog_sk.evaluation import write_report

PAYLOAD = "<img src=x onerror=alert(1)>"


class _Elements(HTMLParser):
    """Every start tag with its attributes, as the browser would build them."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(page):
    parser = _Elements()
    parser.feed(page)
    return parser.tags


def test_markdown_page_shows_markup_as_text():
    page = markdown_page(f"# {PAYLOAD}\n\n| a | b |\n|---|---|\n| <b>x</b> | [y](javascript:alert(1)) |\n\n"
                         "![plot](plot.png)", title=PAYLOAD)
    tags = _elements(page)
    assert not [t for t, attrs in tags if "onerror" in attrs or t == "b"]
    assert [attrs["src"] for t, attrs in tags if t == "img"] == ["plot.png"]  # our own images still render
    assert not [attrs for t, attrs in tags if t == "a" and "javascript" in attrs.get("href", "")]
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and any(t == "table" for t, _ in tags)


@pytest.fixture
def hostile_photos(tmp_path, few_photos):
    """The six shared photos copied into a folder named like a payload, one file named like markup."""
    folder = tmp_path / PAYLOAD
    folder.mkdir()
    paths = []
    for i, p in enumerate(few_photos):
        name = "<b>bold & 'quoted' (1).jpg" if i == 0 else p.name  # no '/': one file name
        shutil.copy(p, folder / name)
        paths.append(str(folder / name))
    return paths


def test_report_escapes_folder_file_names_and_labels(hostile_photos, tmp_path):
    y_true = np.array(["cat"] * 3 + ["dog"] * 3, dtype=object)
    proba = np.tile([[0.1, 0.9]], (6, 1))  # every cat confidently wrong: they fill the gallery and its table
    out = tmp_path / "report"
    out.mkdir()
    write_report(out, paths=hostile_photos, y_true=y_true, pred=np.array(["dog"] * 6, dtype=object), proba=proba,
                 classes=np.array(["cat", "dog"], dtype=object), title=f"Evaluation on {hostile_photos[0]}",
                 short_title=PAYLOAD)
    page = (out / "index.html").read_text()
    tags = _elements(page)
    assert not [attrs for _, attrs in tags if any(k.startswith("on") for k in attrs)]
    assert not [t for t, _ in tags if t in ("b", "script")]
    assert {attrs["src"] for t, attrs in tags if t == "img"} >= {"confusion.png", "top_losses.png"}
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
