"""The upload page, end to end in headless Chromium (Debian's chromium + chromium-driver), on 127.0.0.1.

`make browser` installs the browser with apt (CI does so); without it these tests are skipped with that reason,
and under CI=true they fail. The test tool never downloads a browser.
"""

import os

import pytest

from catdog_sk.monitoring import PredictionLog

from conftest import running_server

pytestmark = pytest.mark.cnn


@pytest.fixture
def server(model_dir, tmp_path):
    log = tmp_path / "log.sqlite"
    with running_server(model_dir, "--log-db", str(log)) as url:
        yield url, log


def test_upload_a_photo_read_the_label_and_send_feedback(server, browser, photos, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, log = server
    browser.get(url + "/")
    assert "Cat or dog?" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, "file").send_keys(os.path.abspath(photos[1]))  # a dog
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: "sure" in d.find_element(By.ID, "result").text)
    result = browser.find_element(By.ID, "result")
    assert result.get_attribute("data-label") == "dog" and result.text.startswith("dog (")
    browser.save_screenshot(str(tmp_path / "page.png"))
    button = wait.until(ec.element_to_be_clickable((By.ID, "fix-cat")))
    choices = [b.text for b in browser.find_element(By.ID, "choices").find_elements(By.TAG_NAME, "button")]
    assert choices == ["a cat", "neither a cat nor a dog"]  # every correction but the answer given (issue 27)
    button.click()
    wait.until(lambda d: d.find_element(By.ID, "thanks").text == "Thanks, recorded.")
    (row,) = PredictionLog(log).rows()
    assert (row["label"], row["true_label"]) == ("dog", "cat")


def test_a_non_image_upload_shows_the_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert "not_an_image" in browser.find_element(By.ID, "error").text


def test_the_monitoring_page_renders_from_the_log(server, browser, photos):
    """GET /monitor, linked from the upload page: the report over the prediction log, plots included."""
    import base64
    import json
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    body = json.dumps({"images": [base64.b64encode(open(p, "rb").read()).decode() for p in photos]}).encode()
    req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()
    browser.get(url + "/")
    browser.find_element(By.ID, "monitor-link").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "status"))
    assert browser.title == "catdog_sk monitor"
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Predictions: 2" in text and "Class share: cat 50.0%, dog 50.0%, unknown 0.0%" in text
    assert browser.find_element(By.ID, "status").text in ("No alert", "Alerts raised")
    img = browser.find_element(By.TAG_NAME, "img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100


def test_a_report_folder_opens_as_one_page(full_run, browser):
    """fit's report folder: index.html shows the Markdown report with every plot loaded, from file://."""
    from selenium.webdriver.common.by import By

    report = full_run / "reports" / "full"
    browser.get((report / "index.html").as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Best model:")
    assert len(browser.find_elements(By.TAG_NAME, "table")) >= 2
    images = browser.find_elements(By.TAG_NAME, "img")
    assert {img.get_attribute("src").rsplit("/", 1)[1] for img in images} >= {
        "confusion.png", "comparison.png", "unknown.png", "unknown_tradeoff.png"}
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
               for img in images)


def test_the_upload_page_says_a_photo_below_min_side_is_too_small(browser, photos, tmp_path):
    """The bundled model (it abstains; min_side 32) answers a shrunk photo 'unknown', and the page says why."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from catdog_sk._testing import downscaled
    from catdog_sk.models import MIN_SIDE
    from catdog_sk.pretrained import PRETRAINED_DIR

    tiny = tmp_path / "tiny.png"
    Image.fromarray(downscaled(photos[1], MIN_SIDE - 8)).save(tiny)
    with running_server(PRETRAINED_DIR, "--log-db", str(tmp_path / "log.sqlite")) as url:
        browser.get(url + "/")
        browser.find_element(By.ID, "file").send_keys(str(tiny))
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "result").get_attribute("data-label"))
        result = browser.find_element(By.ID, "result")
        assert (result.get_attribute("data-label"), result.get_attribute("data-reason")) == ("unknown", "too_small")
        assert result.text.startswith("too small to tell")
