import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest

from catdog_sk.data import (content_hashes, download_petimages, find_images, find_splits,
                            load_dataset, split_dataset)
from catdog_sk.exceptions import DatasetError

from conftest import save, textured_image


def _touch_images(folder, names, seed=0):
    out = []
    for k, name in enumerate(names):
        out.append(save(textured_image(20, 24, seed=seed + k), folder / name, format="PNG"))
    return out


@pytest.mark.parametrize("cat_dir, dog_dir", [("cats", "dogs"), ("Cat", "Dog"), ("cat", "DOGS")])
def test_class_folders_any_case(tmp_path, cat_dir, dog_dir):
    _touch_images(tmp_path / cat_dir, ["a.jpg", "b.png"])
    _touch_images(tmp_path / dog_dir, ["c.jpeg"], seed=5)
    (tmp_path / dog_dir / "Thumbs.db").write_bytes(b"x")
    found = find_images(tmp_path)
    assert found.layout == "class-folders"
    assert found.counts() == {"cat": 2, "dog": 1}
    assert [p for p, _ in found.ignored] == [str(tmp_path / dog_dir / "Thumbs.db")]


def test_petimages_layout(tmp_path):
    _touch_images(tmp_path / "PetImages" / "Cat", ["1.jpg", "2.jpg"])
    _touch_images(tmp_path / "PetImages" / "Dog", ["1.jpg"], seed=3)
    found = find_images(tmp_path)
    assert found.layout == "petimages" and found.counts() == {"cat": 2, "dog": 1}


def test_kaggle_flat_names(tmp_path):
    _touch_images(tmp_path, ["cat.1.jpg", "Cat.2.jpg", "dog.45.jpg", "bird.3.jpg"])
    found = find_images(tmp_path)
    assert found.layout == "kaggle-names"
    assert found.counts() == {"cat": 2, "dog": 1}
    assert any("bird.3.jpg" in p for p, _ in found.ignored)


def test_csv_manifest(tmp_path):
    _touch_images(tmp_path / "img", ["x.jpg", "y.jpg", "z.jpg"])
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\nimg/x.jpg,cat\nimg/y.jpg,Dog\nimg/z.jpg,horse\nimg/gone.jpg,cat\n")
    found = find_images(manifest)
    assert found.layout == "csv"
    assert list(found.labels) == ["cat", "dog"]
    reasons = dict(found.ignored)
    assert "unknown label" in reasons[str(tmp_path / "img" / "z.jpg")]
    assert "missing" in reasons[str(tmp_path / "img" / "gone.jpg")]


def test_csv_without_columns_says_what_is_missing(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\na.jpg,cat\n")
    with pytest.raises(DatasetError, match="'path' and 'label'"):
        find_images(manifest)


def test_empty_or_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="No labelled images"):
        find_images(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        find_images(tmp_path / "nope")


def test_shared_data_layout(shared_data):
    splits = load_dataset(shared_data)
    assert set(splits) == {"train", "test"}
    assert splits["train"].counts() == {"cat": 1000, "dog": 1000}
    assert splits["test"].counts() == {"cat": 1000, "dog": 1000}
    assert find_splits(shared_data / "train") == {}


def test_split_is_deterministic_stratified_and_order_independent():
    rng = np.random.default_rng(0)
    labels = np.array(["cat"] * 60 + ["dog"] * 40, dtype=object)
    hashes = [f"h{i:03d}" for i in range(100)]
    a = split_dataset(labels, hashes=hashes, val_size=0.1, test_size=0.2, random_state=7)
    b = split_dataset(labels, hashes=hashes, val_size=0.1, test_size=0.2, random_state=7)
    c = split_dataset(labels, hashes=hashes, val_size=0.1, test_size=0.2, random_state=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert sorted(np.concatenate(list(a.values()))) == list(range(100))
    assert (labels[a["test"]] == "cat").sum() == 12 and (labels[a["test"]] == "dog").sum() == 8
    # Shuffling the input order changes nothing about which files go where.
    perm = rng.permutation(100)
    d = split_dataset(labels[perm], hashes=[hashes[i] for i in perm], val_size=0.1, test_size=0.2,
                      random_state=7)
    for k in a:
        assert sorted(hashes[perm[i]] for i in d[k]) == sorted(hashes[i] for i in a[k])


def test_identical_files_never_straddle_splits(tmp_path):
    paths = _touch_images(tmp_path / "cats", [f"{i}.png" for i in range(30)])
    dup_paths = []
    for i in range(10):  # ten byte-identical copies of image 0..9
        target = tmp_path / "cats" / f"copy{i}.png"
        target.write_bytes(paths[i].read_bytes())
        dup_paths.append(target)
    all_paths = [str(p) for p in paths + dup_paths]
    hashes = content_hashes(all_paths)
    labels = ["cat"] * len(all_paths)
    splits = split_dataset(labels, hashes=hashes, val_size=0.2, test_size=0.3, random_state=0)
    where = {}
    for name, idx in splits.items():
        for i in idx:
            where.setdefault(hashes[i], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    assert len(where) == 30


# --- download, against a local server on 127.0.0.1 -----------------------------------------

def _petimages_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for label, n in (("Cat", 3), ("Dog", 2)):
            for i in range(n):
                img = io.BytesIO()
                from PIL import Image
                Image.fromarray(textured_image(16, 16, seed=i)).save(img, format="JPEG")
                zf.writestr(f"PetImages/{label}/{i}.jpg", img.getvalue())
        zf.writestr("PetImages/Cat/666.jpg", b"not a jpeg")  # the known corrupt file
        zf.writestr("PetImages/Dog/empty.jpg", b"")
    return buf.getvalue()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    cut_after = None  # serve only this many bytes, then drop the connection
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None:
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            type(self).cut_after = None
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    handler = type("Handler", (_RangeHandler,), {"payload": _petimages_zip(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/kagglecatsanddogs_5340.zip"
    httpd.shutdown()


def test_download_verifies_unpacks_and_skips_known_bad(tmp_path, server, capsys):
    handler, url = server
    digest = hashlib.sha256(handler.payload).hexdigest()
    dest = download_petimages(tmp_path / "dl", url=url, sha256=digest, progress=False)
    found = find_images(dest)
    assert found.layout == "petimages" and found.counts() == {"cat": 3, "dog": 2}
    err = capsys.readouterr().err
    assert "PetImages/Cat/666.jpg: known corrupt" in err and "empty.jpg: empty file" in err
    # A second call is served from disk: no request reaches the server.
    n = len(handler.requests)
    assert download_petimages(tmp_path / "dl", url=url, progress=False) == dest
    assert len(handler.requests) == n


def test_download_resumes_after_interruption(tmp_path, server):
    handler, url = server
    handler.cut_after = 1000
    with pytest.raises(DatasetError, match="resume"):
        download_petimages(tmp_path / "dl", url=url, progress=False)
    part = tmp_path / "dl" / "kagglecatsanddogs_5340.zip.part"
    assert part.stat().st_size == 1000
    dest = download_petimages(tmp_path / "dl", url=url, sha256=hashlib.sha256(handler.payload).hexdigest(),
                              progress=False)
    assert handler.requests[-1] == "bytes=1000-"
    assert find_images(dest).counts() == {"cat": 3, "dog": 2}


def test_download_checksum_mismatch_is_refused(tmp_path, server):
    _, url = server
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        download_petimages(tmp_path / "dl", url=url, sha256="0" * 64, progress=False)
    assert not (tmp_path / "dl" / "kagglecatsanddogs_5340.zip").exists()
    assert not (tmp_path / "dl" / "kagglecatsanddogs_5340.zip.part").exists()


def test_download_offline_says_how_to_fix(tmp_path):
    with pytest.raises(DatasetError, match="CATDOG_DATA"):
        download_petimages(tmp_path / "dl", url="http://127.0.0.1:9/x.zip", progress=False, timeout=2)


def test_negatives_skip_class_folders_and_split_by_content(tmp_path):
    from catdog_sk.data import find_negatives

    root = tmp_path / "neg"
    for g, n in (("cow", 10), ("sheep", 6)):
        _touch_images(root / g, [f"{k}.png" for k in range(n)], seed=100 * len(g))
    _touch_images(root / "cat", ["c.png"], seed=7)  # a class folder: not a negative
    (root / "cow" / "notes.txt").write_text("not an image")
    found = find_negatives(root)
    assert found.counts() == {"cow": 10, "sheep": 6}
    used, held = found.split(0.5, random_state=0)
    assert used.counts() == {"cow": 5, "sheep": 3} and held.counts() == {"cow": 5, "sheep": 3}
    assert not set(used.sha256) & set(held.sha256)
    # the side depends on the bytes and the seed only: renaming every file changes nothing
    for p in list(root.rglob("*.png")):
        p.rename(p.with_name("renamed-" + p.name))
    again, _ = find_negatives(root).split(0.5, random_state=0)
    assert set(again.sha256) == set(used.sha256)
    other, _ = find_negatives(root).split(0.5, random_state=1)
    assert set(other.sha256) != set(used.sha256)
    with pytest.raises(DatasetError, match="is not a folder"):
        find_negatives(tmp_path / "missing")
    (tmp_path / "only-pets" / "dogs").mkdir(parents=True)
    _touch_images(tmp_path / "only-pets" / "dogs", ["d.png"])
    with pytest.raises(DatasetError, match="No image files under"):
        find_negatives(tmp_path / "only-pets")
    with pytest.raises(DatasetError, match="between 0 and 1"):
        found.split(1.5)
