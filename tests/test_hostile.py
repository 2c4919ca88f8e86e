"""A generated corpus of hostile and broken images, run through every command and the estimator.

Each file has one expected outcome: it decodes, or it is skipped with a stable
reason code (``ImageDecodeError.REASONS``). Every entry point must agree on
that reason, go on with the rest, say so in its exit status (3) and leave no
half-written output behind.
"""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog_sk.exceptions import ImageDecodeError
from conftest import REPO, png_header_only, textured_image

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
NON_UTF8 = os.fsdecode(b"\xff\xfe-latin1-\xe9.jpg")  # not valid UTF-8: Python holds it with surrogates


def _jpeg(img, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def make_hostile_corpus(folder, photo):
    """Write the corpus into ``folder``; return {file name: expected reason, or None if it decodes}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rgb = textured_image(96, 128)
    real = Path(photo).read_bytes()
    exif = Image.fromarray(rgb).getexif()
    exif[0x0112] = 6
    frames = [Image.fromarray(textured_image(64, 64, seed=s)).convert("P") for s in range(3)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files = {
        "zero-bytes.jpg": (b"", "empty"),
        "truncated.jpg": (real[: len(real) // 2], "truncated"),
        "random-bytes.jpg": (np.random.default_rng(0).bytes(5000), "not_an_image"),
        "text-file.jpg": (b"this is a text file, not a photo\n" * 20, "not_an_image"),
        "alpha.png": (_encode(Image.fromarray(rgb).convert("RGBA"), "PNG"), None),
        "palette.gif": (_encode(Image.fromarray(rgb).convert("P"), "GIF"), None),
        "animated.gif": (animated.getvalue(), None),
        "sixteen-bit.png": (_encode(Image.fromarray((np.arange(96 * 128, dtype=np.uint16) * 5).reshape(96, 128)),
                                    "PNG"), None),
        "cmyk.jpg": (_encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"), None),
        "grayscale.jpg": (_encode(Image.fromarray(rgb).convert("L"), "JPEG"), None),
        "exif-rotated.jpg": (_encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes()), None),
        "one-pixel.png": (_encode(Image.fromarray(rgb[:1, :1]), "PNG"), None),
        "bomb.png": (png_header_only(30000, 30000), "too_large"),
        NON_UTF8: (real, None),
        # root reads any file whatever its mode bits: then it is just a photo
        "unreadable.jpg": (real, None if ROOT_USER else "unreadable"),
    }
    expected = {}
    for name, (data, reason) in files.items():
        (folder / name).write_bytes(data)
        expected[name] = reason
    os.chmod(folder / "unreadable.jpg", 0)
    os.symlink("symlink-loop.jpg", folder / "symlink-loop.jpg")
    expected["symlink-loop.jpg"] = "unreadable"
    os.mkfifo(folder / "fifo.jpg")  # reading it naively would block forever
    expected["fifo.jpg"] = "unreadable"
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, few_photos):
    """data/train/{cats,dogs}: three real photos each, plus the hostile corpus among the cats."""
    root = tmp_path_factory.mktemp("hostile")
    for i, p in enumerate(few_photos):
        target = root / "train" / ("cats" if i < 3 else "dogs")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target / Path(p).name)
    expected = make_hostile_corpus(root / "train" / "cats", few_photos[0])
    yield root, expected
    os.chmod(root / "train" / "cats" / "unreadable.jpg", 0o644)


def _bad(expected):
    return {n: r for n, r in expected.items() if r is not None}


#: Special files in the corpus: folder walks leave them out with a reason (never opened), so the commands
#: that walk folders list them as ignored, not as decode failures (see test_hostile_files.py).
SPECIAL = ("fifo.jpg",)


def _walked_bad(expected):
    """What a command that walks the folder reports as unreadable: the bad files minus the special ones."""
    return {n: r for n, r in _bad(expected).items() if n not in SPECIAL}


def _by_name(entries, key="reason"):
    return {os.path.basename(e["path"]): e[key] for e in entries}


def _run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd or REPO, capture_output=True, timeout=600,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    return proc


def test_every_reason_is_documented(corpus):
    _, expected = corpus
    assert set(_bad(expected).values()) <= set(ImageDecodeError.REASONS)


def test_estimator_names_the_file_and_reason(corpus):
    from catdog_sk.features import HOGTransformer

    root, expected = corpus
    folder = root / "train" / "cats"
    for name, reason in expected.items():
        path = str(folder / name)
        if reason is None:
            assert HOGTransformer(size=32).fit_transform([path]).shape == (1, 324), name
        else:
            with pytest.raises(ImageDecodeError) as info:
                HOGTransformer(size=32).fit_transform([path])
            assert (info.value.reason, info.value.path) == (reason, path), name


def test_extract_lists_each_skip_with_its_reason_and_exits_3(corpus, tmp_path):
    root, expected = corpus
    csv_path = tmp_path / "skipped.csv"
    proc = _run("catdog_sk.extract", "--data", str(root / "train"), "--features", "hog,color", "--cache",
                str(tmp_path / "cache"), "--json", "--quiet", "--skipped-csv", str(csv_path))
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")
    summary = json.loads(proc.stdout)
    assert _by_name(summary["skipped"]) == {**_walked_bad(expected), **{n: "ignored" for n in SPECIAL}}
    n_good = 6 + sum(r is None for r in expected.values())
    (split,) = summary["splits"].values()
    extracted = split["extracted"]
    assert extracted["cat"] + extracted["dog"] == n_good
    assert csv_path.read_text().count("\n") == 1 + len(_bad(expected))
    strict = _run("catdog_sk.extract", "--data", str(root / "train"), "--features", "hog", "--cache",
                  str(tmp_path / "cache"), "--quiet", "--strict")
    assert strict.returncode == 1
    # The non-UTF-8 name comes out as its original bytes in the human-readable listing too.
    text = _run("catdog_sk.extract", "--data", str(root / "train"), "--features", "hog", "--cache",
                str(tmp_path / "cache"), "--quiet")
    assert text.returncode == 3 and b"symlink-loop.jpg: unreadable" in text.stdout


def test_predict_reports_each_file_in_order_and_exits_3(corpus, model_dir):
    root, expected = corpus
    folder = root / "train" / "cats"
    names = sorted(expected)
    proc = _run("catdog_sk.predict", "--model", str(model_dir), "--no-cache", "--quiet",
                *[str(folder / n) for n in names])
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [os.path.basename(r["path"]) for r in rows] == names
    for name, row in zip(names, rows):
        if expected[name] is None:
            assert row["label"] in ("cat", "dog", "unknown"), (name, row)
        else:
            assert row["error"] == expected[name], (name, row)
    csv_proc = _run("catdog_sk.predict", "--model", str(model_dir), "--no-cache", "--quiet", "--format", "csv",
                    str(folder / NON_UTF8))
    assert csv_proc.returncode == 0 and os.fsencode(NON_UTF8) in csv_proc.stdout


def test_evaluate_skips_reports_and_writes_a_whole_report(corpus, model_dir, tmp_path):
    root, expected = corpus
    out = tmp_path / "report"
    proc = _run("catdog_sk.evaluate", "--model", str(model_dir), "--data", str(root / "train"), "--out", str(out),
                "--no-cache", "--json", "--quiet")
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")
    metrics = json.loads(proc.stdout)
    assert _by_name(metrics["skipped"]) == _walked_bad(expected)
    assert metrics["test_n"] == 6 + sum(r is None for r in expected.values())
    assert {"report.md", "index.html", "results.json", "confusion.png", "top_losses.png"} <= {
        p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.tmp")]


def test_fit_goes_on_lists_skips_and_exits_3(corpus, tmp_path, few_photos):
    root, expected = corpus
    test_dir = tmp_path / "test"
    for i, p in enumerate(few_photos):
        target = test_dir / ("cats" if i < 3 else "dogs")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target / Path(p).name)
    art = tmp_path / "art"
    proc = _run("catdog_sk.fit", "--data", str(root / "train"), "--test", str(test_dir), "--features", "hog",
                "--model", "logreg", "--cv", "2", "--no-cache", "--artifacts", str(art), "--run", "r",
                "--json", "--quiet")
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")
    results = json.loads(proc.stdout)
    assert _by_name(results["skipped"]) == _walked_bad(expected)
    assert (art / "models" / "r" / "model.skops").is_file()
    assert json.loads((art / "reports" / "r" / "comparison.json").read_text())["skipped"] == results["skipped"]


def test_server_answers_4xx_with_the_same_reason_and_keeps_serving(corpus, model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from catdog_sk.serving import create_app

    root, expected = corpus
    folder = root / "train" / "cats"
    with TestClient(create_app(model_dir, log_db=tmp_path / "log.sqlite", uploads_dir=tmp_path / "uploads")) as client:
        for name, reason in expected.items():
            try:
                data = (folder / name).read_bytes() if name != "fifo.jpg" else None
            except OSError:
                continue  # the server receives bytes, never paths: unreadable files never reach it
            if data is None:
                continue
            r = client.post("/predict", files={"file": ("upload.jpg", data, "image/jpeg")})
            if reason is None:
                assert r.status_code == 200, (name, r.text)
            else:
                assert 400 <= r.status_code < 500 and reason in r.json()["error"], (name, r.status_code, r.text)
        assert client.get("/health").status_code == 200
