"""The documentation site (`make docs`): the API reference covers every public name, and the built pages
open in headless Chromium with their content and the gallery's plots.

`make test` builds the site before pytest runs, so these tests read docs/_build/html as it is; run alone
without a built site, the session builds it once (about two minutes: the gallery's examples run).
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"


@pytest.fixture(scope="session")
def site():
    """The built site's folder: built once here when `make docs` (or `make test`) has not built it."""
    if not (HTML / "index.html").is_file():
        try:
            import sphinx  # noqa: F401
        except ImportError:
            from conftest import need

            need("Sphinx", 'install the docs extra (pip install -e ".[docs]"; `make venv` does)')
        done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                               str(DOCS), str(HTML)], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return HTML


def _api_modules():
    sys.path.insert(0, str(DOCS))
    try:
        conf = importlib.import_module("conf")
    finally:
        sys.path.remove(str(DOCS))
    return conf


def test_every_public_name_has_a_page_in_the_api_reference(site):
    """Each name of each documented package's __all__ is on a page of its own, or linked as a re-export."""
    conf = _api_modules()
    missing = []
    for modname, _ in conf.API_MODULES:
        module_page = (site / "api" / "generated" / f"{modname}.html").read_text(encoding="utf-8")
        for name in conf.public_names(importlib.import_module(modname)):
            if not ((site / "api" / "generated" / f"{modname}.{name}.html").is_file()
                    or f">{name}</span>" in module_page):  # a re-export, linked to where it is documented
                missing.append(f"{modname}.{name}")
    assert not missing, f"public names without a page: {missing}"
    assert len(conf.API_MODULES) == 12  # the ten stage packages, plus metrics and training


def test_the_gallery_has_five_executed_examples_with_plots(site):
    pages = sorted((site / "auto_examples").glob("plot_*.html"))
    assert len(pages) >= 5, pages
    for page in pages:
        images = list((site / "_images").glob(f"sphx_glr_{page.stem}_*.png"))
        assert images and all(p.stat().st_size > 1000 for p in images), f"{page.name} has no plot"


def test_the_index_and_an_example_open_in_chromium(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((site / "index.html").as_uri())
    assert browser.title.startswith("catdog_sk")
    assert "Tell photos of cats from photos of dogs" in browser.find_element(By.TAG_NAME, "main").text
    api = [a for a in browser.find_elements(By.TAG_NAME, "a") if a.text.strip() == "API reference"]
    assert api, "no link to the API reference on the index"
    api[0].click()
    WebDriverWait(browser, 30).until(lambda d: d.title.startswith("API reference"))
    assert browser.find_elements(By.CSS_SELECTOR, "a[href$='catdog_sk.data.html']")

    browser.get((site / "auto_examples" / "plot_01_journey.html").as_uri())
    assert "The whole journey on a small subset" in browser.find_element(By.TAG_NAME, "h1").text
    assert "test accuracy on these 40 photos" in browser.find_element(By.TAG_NAME, "main").text
    image = browser.find_element(By.CSS_SELECTOR, "img.sphx-glr-single-img")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return arguments[0].complete", image))
    width = browser.execute_script("return arguments[0].naturalWidth", image)
    assert width > 0, f"the example's plot did not load: {image.get_attribute('src')}"
    if os.environ.get("CATDOG_DOCS_SCREENSHOT"):
        browser.save_screenshot(os.environ["CATDOG_DOCS_SCREENSHOT"])
