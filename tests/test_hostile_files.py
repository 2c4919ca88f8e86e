"""Special files (FIFOs, sockets) among photos: every folder walk skips them with a reason, never opening them.

One walk (catdog_sk.data.walk_images) serves training folders, CSV manifests, --negatives and predict; a
FIFO opened for reading would wait forever for a writer, so each check also proves the call returns.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from catdog_sk.data import expand_inputs, find_images, find_negatives, special_file_reason, walk_images

REPO = Path(__file__).resolve().parents[1]


def returns_within(seconds, fn, *args):
    """``fn(*args)``'s value; fails (rather than hanging the suite) when it has not returned in time."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} blocked on a special file"
    return out["value"]


def _specials(folder):
    """A FIFO and a socket named like photos in ``folder``; returns their names."""
    os.mkfifo(folder / "pipe.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "socket.png"))
    sock.close()
    return {"pipe.jpg": "FIFO", "socket.png": "socket"}


@pytest.fixture
def photo_folders(tmp_path, few_photos):
    """class folders (cats/, dogs/), a Kaggle-named folder and a negatives folder, each with special files."""
    for i, p in enumerate(few_photos):
        for sub in ("classes/" + ("cats" if i < 3 else "dogs"), "kaggle"):
            (tmp_path / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, tmp_path / sub / (Path(p).name if sub != "kaggle" else f"{('cat', 'dog')[i >= 3]}.{i}.jpg"))
    (tmp_path / "negatives" / "cow").mkdir(parents=True)
    shutil.copy(few_photos[0], tmp_path / "negatives" / "cow" / "not-a-cow.jpg")
    specials = {}
    for sub in ("classes/cats", "kaggle", "negatives/cow"):
        specials[sub] = _specials(tmp_path / sub)
    return tmp_path, specials


def test_special_file_reason_names_the_kind(tmp_path, few_photos):
    _specials(tmp_path)
    assert "FIFO" in special_file_reason(tmp_path / "pipe.jpg")
    assert "socket" in special_file_reason(tmp_path / "socket.png")
    assert "device" in special_file_reason("/dev/null")
    assert special_file_reason(few_photos[0]) is None
    assert special_file_reason(tmp_path / "missing.jpg") is None  # left to the decoder, which reports it
    os.symlink(tmp_path / "pipe.jpg", tmp_path / "link.jpg")
    assert "FIFO" in special_file_reason(tmp_path / "link.jpg")  # links are followed


@pytest.mark.parametrize("sub", ["classes", "kaggle"])
def test_training_folders_skip_special_files_with_a_reason(photo_folders, sub):
    root, specials = photo_folders
    found = returns_within(30, find_images, root / sub)
    assert len(found) == 6 and found.counts() == {"cat": 3, "dog": 3}
    names = {os.path.basename(p): why for p, why in found.ignored}
    key = "classes/cats" if sub == "classes" else sub
    for name, kind in specials[key].items():
        assert kind in names[name] and "not opened" in names[name]


def test_manifest_rows_naming_special_files_are_ignored(photo_folders, few_photos):
    root, _ = photo_folders
    csv = root / "manifest.csv"
    csv.write_text(f"path,label\n{few_photos[0]},cat\n{few_photos[3]},dog\n{root / 'kaggle' / 'pipe.jpg'},cat\n")
    found = returns_within(30, find_images, csv)
    assert found.paths == [str(few_photos[0]), str(few_photos[3])]
    assert [why for _, why in found.ignored] == ["a FIFO (named pipe), not a regular file: not opened"]


def test_negatives_skip_special_files_before_hashing(photo_folders):
    root, _ = photo_folders
    negatives = returns_within(30, find_negatives, root / "negatives")  # content hashes would read the FIFO
    assert [os.path.basename(p) for p in negatives.paths] == ["not-a-cow.jpg"]
    assert sorted(os.path.basename(p) for p, _ in negatives.ignored) == ["pipe.jpg", "socket.png"]
    used, held = negatives.split(0.5)
    assert used.ignored == held.ignored == negatives.ignored


def test_expand_inputs_keeps_special_files_in_order_unopened(photo_folders, few_photos):
    root, _ = photo_folders
    (root / "classes" / "notes.txt").write_text("not a photo")
    inputs = [str(few_photos[0]), str(root / "kaggle" / "pipe.jpg"), str(root / "classes")]
    paths, ignored = returns_within(30, expand_inputs, inputs)
    assert paths[:2] == inputs[:2] and len(paths) == 2 + 6 + 2  # the folder's photos and its two special files
    assert [os.path.basename(p) for p, _ in ignored] == ["notes.txt"]
    assert walk_images(root / "classes")[0] == [p for p in paths[2:] if special_file_reason(p) is None]


def test_predict_answers_each_special_file_without_opening_it(photo_folders, model_dir):
    root, _ = photo_folders
    proc = subprocess.run([sys.executable, "-m", "catdog_sk.predict", "--model", str(model_dir), "--quiet",
                           str(root / "kaggle")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr  # the documented status when files could not be read
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, proc.stdout.splitlines())}
    assert len(rows) == 8 and sum("label" in r for r in rows.values()) == 6
    assert rows["pipe.jpg"]["error"] == "unreadable" and "FIFO" in rows["pipe.jpg"]["detail"]
    assert "socket" in rows["socket.png"]["detail"] and "Traceback" not in proc.stderr


def test_evaluate_negatives_with_a_fifo_does_not_hang(photo_folders, full_run, tmp_path):
    root, _ = photo_folders
    proc = subprocess.run([sys.executable, "-m", "catdog_sk.evaluate", "--model", str(full_run / "models" / "full"),
                           "--data", str(root / "classes"), "--negatives", str(root / "negatives"),
                           "--out", str(tmp_path / "report"), "--no-cache", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report" / "index.html").is_file()
