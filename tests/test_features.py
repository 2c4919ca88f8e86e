import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from catdog_sk.exceptions import BackboneUnavailableError, ImageDecodeError, InvalidParameterError
from catdog_sk.features import (ColorHistogramExtractor, ColorHistogramTransformer, FeatureCache,
                                HOGExtractor, HOGTransformer, color_histogram, extract_features,
                                get_backbone, hog_features, list_backbones)
from catdog_sk.preprocess import AugmentedImage

from conftest import REPO, save, textured_image


@pytest.mark.parametrize("size, ppc, cpb, orient", [(128, 8, 2, 9), (64, 8, 2, 9), (96, 12, 3, 6)])
def test_hog_length_follows_formula(size, ppc, cpb, orient):
    out = hog_features(textured_image(), size=size, pixels_per_cell=ppc, cells_per_block=cpb,
                       orientations=orient)
    n_blocks = size // ppc - cpb + 1
    assert out.shape == (n_blocks ** 2 * cpb ** 2 * orient,) and out.dtype == np.float32
    assert HOGExtractor(size=size, pixels_per_cell=ppc, cells_per_block=cpb,
                        orientations=orient).n_features_out == out.size


def test_hog_sees_orientation():
    vertical = np.zeros((64, 64, 3), np.uint8)
    vertical[:, 32:] = 255
    horizontal = np.ascontiguousarray(vertical.transpose(1, 0, 2))
    a = hog_features(vertical, size=64)
    b = hog_features(horizontal, size=64)
    assert not np.allclose(a, b)


@pytest.mark.parametrize("space", ["hsv", "rgb", "lab"])
def test_color_histogram_is_normalised(space):
    out = color_histogram(textured_image(), space=space, bins=6)
    assert out.shape == (216,) and out.dtype == np.float32
    np.testing.assert_allclose((out.astype(np.float64) ** 2).sum(), 1.0, rtol=1e-5)


def test_color_histogram_tells_red_from_blue():
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 220
    blue = red[..., ::-1].copy()
    assert np.argmax(color_histogram(red)) != np.argmax(color_histogram(blue))


def test_parameter_errors_follow_one_grammar():
    with pytest.raises(InvalidParameterError,
                       match=r"The 'block_norm' parameter of HOGTransformer must be one of .*'L2-Hys'\. "
                             r"Got 'L3' instead\."):
        HOGTransformer(block_norm="L3").fit()
    with pytest.raises(InvalidParameterError, match=r"The 'bins' parameter of ColorHistogramTransformer must "
                                                    r"be an int in the range \[2, 64\]\. Got 0 instead\."):
        ColorHistogramTransformer(bins=0).transform([textured_image()])
    with pytest.raises(InvalidParameterError, match="The 'space' parameter"):
        ColorHistogramExtractor(space="xyz")


def test_transformers_in_pipeline_and_feature_union(tmp_path):
    imgs = [textured_image(seed=s) for s in range(4)]
    union = FeatureUnion([("hog", HOGTransformer(size=32)), ("color", ColorHistogramTransformer(bins=4))])
    pipe = Pipeline([("features", union), ("scale", StandardScaler())])
    out = pipe.fit_transform(imgs)
    assert out.shape == (4, HOGExtractor(size=32).n_features_out + 64)
    pipe.set_params(features__hog__size=64)
    assert pipe.get_params()["features__hog__size"] == 64
    assert clone(pipe).fit_transform(imgs).shape == (4, HOGExtractor(size=64).n_features_out + 64)


def test_paths_and_arrays_give_identical_features(tmp_path):
    img = textured_image()
    path = save(img, tmp_path / "a.png")
    t = HOGTransformer(size=64)
    np.testing.assert_array_equal(t.transform([path]), t.transform([img]))


def test_transform_raises_decode_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageDecodeError, match="bad.jpg: not_an_image"):
        HOGTransformer().transform([save(textured_image(), tmp_path / "ok.png"), bad])


def test_extract_skip_mode_records_errors_and_goes_on(tmp_path):
    good = save(textured_image(), tmp_path / "ok.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    res = extract_features([good, tmp_path / "empty.jpg", good], [HOGExtractor(size=32)], on_error="skip")
    assert res.ok.tolist() == [True, False, True]
    assert [(e.reason, os.path.basename(e.path)) for e in res.errors] == [("empty", "empty.jpg")]
    assert np.isnan(res.features[0][1]).all() and not np.isnan(res.features[0][[0, 2]]).any()


# --- cache ----------------------------------------------------------------------------------

def _counting(extractor):
    """Wrap an extractor so calls to prepare() (the real work) are counted."""
    calls = []
    original = extractor.prepare

    def prepare(image):
        calls.append(1)
        return original(image)

    extractor.prepare = prepare
    return extractor, calls


def test_cache_hit_equals_computed_and_survives_rename(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    paths = [save(textured_image(seed=s), tmp_path / f"img{s}.png") for s in range(3)]
    ex, calls = _counting(HOGExtractor(size=64))
    first = extract_features(paths, [ex], cache=cache)
    assert (first.hits, first.misses, len(calls)) == (0, 3, 3)
    moved = tmp_path / "elsewhere" / "renamed.png"
    moved.parent.mkdir()
    shutil.move(paths[0], moved)
    again = extract_features([moved, paths[1], paths[2]], [ex], cache=cache)
    assert (again.hits, again.misses, len(calls)) == (3, 0, 3)
    np.testing.assert_array_equal(first.features[0], again.features[0])
    # and identical to a run with no cache at all
    np.testing.assert_array_equal(extract_features([moved], [HOGExtractor(size=64)]).features[0],
                                  first.features[0][:1])


def test_cache_misses_on_one_pixel_edit_and_on_parameter_change(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    img = textured_image()
    path = save(img, tmp_path / "a.png")
    extract_features([path], [HOGExtractor(size=64)], cache=cache)
    edited = img.copy()
    edited[0, 0] = 255 - edited[0, 0]
    save(edited, path)
    ex, calls = _counting(HOGExtractor(size=64))
    assert extract_features([path], [ex], cache=cache).misses == 1
    ex2, calls2 = _counting(HOGExtractor(size=64, orientations=12))
    res = extract_features([path], [ex2], cache=cache)
    assert res.misses == 1 and len(calls2) == 1
    assert res.features[0].shape[1] == HOGExtractor(size=64, orientations=12).n_features_out


def test_changing_one_extractor_recomputes_only_that_one(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    path = save(textured_image(), tmp_path / "a.png")
    extract_features([path], [HOGExtractor(size=64), ColorHistogramExtractor()], cache=cache)
    hog, hog_calls = _counting(HOGExtractor(size=64))
    color, color_calls = _counting(ColorHistogramExtractor(bins=4))
    res = extract_features([path], [hog, color], cache=cache)
    assert (len(hog_calls), len(color_calls), res.hits, res.misses) == (0, 1, 1, 1)


def test_corrupt_cache_entry_is_reported_and_recomputed(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    path = save(textured_image(), tmp_path / "a.png")
    first = extract_features([path], [HOGExtractor(size=64)], cache=cache).features[0]
    (entry,) = list((tmp_path / "cache").glob("hog-*/*/*.npy"))
    entry.write_bytes(entry.read_bytes()[:60])
    with pytest.warns(RuntimeWarning, match="Corrupt cache entry"):
        res = extract_features([path], [HOGExtractor(size=64)], cache=cache)
    assert res.misses == 1
    np.testing.assert_array_equal(res.features[0], first)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_augmented_copies_are_cached_per_seed(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    path = save(textured_image(120, 160), tmp_path / "a.png")
    items = [path, AugmentedImage(path, seed=1), AugmentedImage(path, seed=2), AugmentedImage(path, seed=1)]
    res = extract_features(items, [ColorHistogramExtractor()], cache=cache)
    f = res.features[0]
    np.testing.assert_array_equal(f[1], f[3])
    assert not np.array_equal(f[0], f[1]) and not np.array_equal(f[1], f[2])
    again = extract_features(items, [ColorHistogramExtractor()], cache=cache)
    assert again.misses == 0
    np.testing.assert_array_equal(again.features[0], f)


# --- backbones ------------------------------------------------------------------------------

def test_bundled_backbones_resolve_without_torch():
    code = ("import sys; from catdog_sk.features import get_backbone, list_backbones, make_extractor;"
            "print(list_backbones()); make_extractor('cnn').config();"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["['efficientnet_lite0', 'efficientnet_lite2']", "False"]
    assert get_backbone("efficientnet_lite0").mean == (0.5, 0.5, 0.5)


def test_unknown_backbone_suggests_names():
    with pytest.raises(BackboneUnavailableError, match="Did you mean .*resnet50"):
        get_backbone("resnet5O")
    assert list_backbones() == ["efficientnet_lite0", "efficientnet_lite2"]


_BLOCK_NETWORK = textwrap.dedent("""
    import socket
    def _blocked(*args, **kwargs):
        raise OSError("network blocked by the test")
    socket.socket.connect = _blocked
    socket.create_connection = _blocked
    socket.getaddrinfo = _blocked
    from catdog_sk.extract import main
    raise SystemExit(main(sys.argv[1:]))
""")


def _run_offline(*args, timeout=120):
    return subprocess.run([sys.executable, "-c", "import sys\n" + _BLOCK_NETWORK, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.cnn
def test_offline_default_backbone_works_and_downloadable_one_fails_fast(tmp_path, few_photos):
    data = tmp_path / "data"
    for p in few_photos:
        dest = data / p.parent.name / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    ok = _run_offline("--data", str(data), "--features", "cnn", "--no-cache", "--json")
    assert ok.returncode == 0, ok.stderr
    assert '"cat": 3' in ok.stdout
    bad = _run_offline("--data", str(data), "--features", "cnn", "--backbone", "convnext_tiny", timeout=60)
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert "convnext_tiny" in lines[0] and "efficientnet_lite0" in lines[0]


@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("ppc, cpb, orient", [(8, 2, 9), (12, 3, 6), (16, 1, 12)])
def test_batch_hog_equals_skimage_hog(few_photos, block_norm, ppc, cpb, orient):
    """The vectorised HOG is skimage's HOG, image by image, for every normalisation."""
    from skimage.feature import hog

    from catdog_sk.features._hog import _grey, hog_batch
    from catdog_sk.preprocess import read_image

    greys = np.stack([_grey(read_image(p), 100) for p in few_photos])
    ours = hog_batch(greys, orientations=orient, pixels_per_cell=ppc, cells_per_block=cpb, block_norm=block_norm)
    for g, row in zip(greys, ours):
        ref = hog(g, orientations=orient, pixels_per_cell=(ppc, ppc), cells_per_block=(cpb, cpb),
                  block_norm=block_norm)
        np.testing.assert_allclose(row, ref, rtol=1e-5, atol=1e-6)


def test_warm_run_reads_no_image_and_edits_are_still_seen(tmp_path, monkeypatch):
    """Remembered hashes (path, size, mtime, inode) spare reading files; a rewrite changes them."""
    from catdog_sk.features import _engine

    cache = FeatureCache(tmp_path / "cache")
    paths = [save(textured_image(seed=s), tmp_path / f"img{s}.png") for s in range(3)]
    first = extract_features(paths, [HOGExtractor(size=64)], cache=cache)
    reads = []
    original = _engine.read_bytes
    monkeypatch.setattr(_engine, "read_bytes", lambda p: reads.append(p) or original(p))
    warm = extract_features(paths, [HOGExtractor(size=64)], cache=cache)
    assert reads == [] and warm.hits == 3
    np.testing.assert_array_equal(warm.features[0], first.features[0])
    edited = textured_image(seed=0)
    edited[5, 5] = 255 - edited[5, 5]
    save(edited, paths[0])
    again = extract_features(paths, [HOGExtractor(size=64)], cache=cache)
    assert again.misses == 1 and [os.fspath(p) for p in reads] == [os.fspath(paths[0])]


def test_entries_are_packed_and_a_broken_pack_is_ignored(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    n = FeatureCache.PACK_THRESHOLD + 6
    imgs = [textured_image(24, 24, seed=s) for s in range(n)]
    paths = [save(im, tmp_path / f"i{s}.png") for s, im in enumerate(imgs)]
    first = extract_features(paths, [ColorHistogramExtractor(bins=4)], cache=cache).features[0]
    (ns,) = list((tmp_path / "cache").glob("color-*"))
    assert len(list(ns.glob("pack-*.keys"))) == 1 and not list(ns.glob("??/*.npy"))
    warm = extract_features(paths, [ColorHistogramExtractor(bins=4)], cache=FeatureCache(tmp_path / "cache"))
    assert warm.hits == n
    np.testing.assert_array_equal(warm.features[0], first)
    # an augmented copy of a packed image is its own entry, never the original's
    aug = extract_features([AugmentedImage(paths[0], seed=1)], [ColorHistogramExtractor(bins=4)], cache=cache)
    assert aug.misses == 1 and not np.array_equal(aug.features[0][0], first[0])
    (pack,) = list(ns.glob("pack-*.npy"))
    pack.write_bytes(pack.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="unreadable cache pack"):
        again = extract_features(paths, [ColorHistogramExtractor(bins=4)], cache=FeatureCache(tmp_path / "cache"))
    assert again.misses == n
    np.testing.assert_array_equal(again.features[0], first)
    assert not pack.exists() and len(list(ns.glob("pack-*.keys"))) == 1  # broken pack gone, a new one made
