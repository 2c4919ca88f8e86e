"""Decoding odd but valid files (issue 25 items 4 and 8).

Big JPEGs through the batched decoder (``decoder='torch-cpu'``, the CPU twin of nvjpeg) are decoded in
sub-batches under a pixel budget read from their headers, so peak memory does not grow with a batch's
megapixels; float TIFFs with NaN and infinities decode quietly and deterministically.
"""

import gc
import io
import subprocess
import sys
import warnings
import weakref

import numpy as np
import pytest
from PIL import Image

from catdog_sk.preprocess import decode_image, read_image

from conftest import PEAK_RSS_CODE, textured_image


def _jpeg(height, width, seed=0):
    buf = io.BytesIO()
    Image.fromarray(textured_image(height, width, seed=seed)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _gradient_jpeg(side):
    """A smooth ``side`` x ``side`` gradient, JPEG quality 90: a valid big photo, cheap to make."""
    import cv2

    ramp = np.linspace(0, 255, side).astype(np.uint8)
    rgb = np.empty((side, side, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = ramp[None, :], ramp[:, None], 128
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def test_pixel_batches_stay_under_the_budget_and_keep_the_order():
    from catdog_sk.features._device_decode import pixel_batches

    batches = pixel_batches([30, 30, 30, 100, 10, 10, 70], 64)
    assert [list(b) for b in batches] == [[0, 1], [2], [3], [4, 5], [6]]  # 100 > 64: alone, never dropped
    assert pixel_batches([], 64) == []
    assert [list(b) for b in pixel_batches([5] * 4, 1_000)] == [[0, 1, 2, 3]]


def test_the_batched_decoder_holds_one_sub_batch_at_a_time(monkeypatch):
    """Each decoder call sums at most the budget from the headers; earlier images are free by then."""
    from catdog_sk.features import _device_decode

    datas = [_jpeg(400, 500, seed=i) for i in range(7)] + [_jpeg(1000, 900, seed=7)]  # 0.2 MP x 7, 0.9 MP
    real, calls, alive = _device_decode._quiet_decode, [], []

    def recording(inputs, device):
        gc.collect()
        calls.append((len(inputs), sum(ref() is not None for ref in alive)))
        return real(inputs, device)

    monkeypatch.setattr(_device_decode, "_quiet_decode", recording)
    decoded = _device_decode.decode_jpegs(datas, device="cpu", max_batch_pixels=500_000)
    assert len(decoded) == 8 and [len(b) for b in decoded.batches] == [2, 2, 2, 1, 1]
    for data, image in zip(datas, decoded):  # the extractor's loop: keep only what is made of each image
        ours = image.permute(1, 2, 0).numpy()
        assert np.abs(ours.astype(int) - decode_image(data)).mean() < 0.5  # Pillow's pixels
        alive.append(weakref.ref(image))
        del image, ours
    assert [n for n, _ in calls] == [2, 2, 2, 1, 1]  # <= 500,000 px per call, the big one alone
    assert max(held for _, held in calls) <= 1  # only the loop's last image (zip keeps its last tuple)
    assert decoded[7].shape == (3, 1000, 900) and decoded[-8].shape == (3, 400, 500)  # indexing too


def test_a_jpeg_whose_header_cannot_be_read_is_decoded_alone_and_refused_in_its_place():
    from catdog_sk.features._device_decode import decode_jpegs

    good, junk = _jpeg(64, 64), b"\xff\xd8" + b"junk" * 20 + b"\xff\xd9"
    decoded = decode_jpegs([good, junk, good, good], device="cpu", max_batch_pixels=10_000)
    assert [list(b) for b in decoded.batches] == [[0], [1], [2, 3]]  # unknown size: counted as the budget
    out = list(decoded)
    assert out[1] is None  # the engine then asks Pillow, which reports why
    assert all(out[i].shape == (3, 64, 64) for i in (0, 2, 3))


_CHILD = PEAK_RSS_CODE + """
import sys
from catdog_sk.features import EmbeddingExtractor, extract_features
res = extract_features(sys.argv[1:], [EmbeddingExtractor(decoder="torch-cpu", runtime="torch")], n_jobs=2)
print(int(res.ok.sum()), peak_rss_kb())
"""


def test_the_peak_memory_probe_reads_the_child_and_not_its_parent():
    """The bound below is the child's: a parent at 1.5 GB must not lift a bare child's reading (it did)."""
    ballast = np.ones(1_500_000_000 // 8)  # written, so resident
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_CODE + "print(peak_rss_kb())"], capture_output=True,
                         text=True, check=True)
    del ballast
    assert int(out.stdout) / 1024 < 200  # a bare interpreter is about 10 MB


@pytest.mark.cnn
def test_big_jpegs_through_the_torch_decoder_keep_memory_bounded(tmp_path):
    """12 x 36 MP in one batch: 1.3 GB decoded at once before the budget, about 0.1 GB per sub-batch now.

    The full 48 x 36 MP of the issue is ``benchmarks/bench_decode_memory.py``; the peak does not grow with
    the count, since one sub-batch is decoded at a time.
    """
    data = _gradient_jpeg(6000)
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"big{i:02d}.jpg"))
        with open(paths[-1], "wb") as fh:
            fh.write(data)
    out = subprocess.run([sys.executable, "-c", _CHILD, *paths], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    n_ok, peak_kb = map(int, out.stdout.split()[-2:])
    assert n_ok == 12
    assert peak_kb / 1024 ** 2 <= 2.0, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_float_tiff_with_nan_and_inf_decodes_without_numpy_warnings(tmp_path):
    values = np.linspace(0, 200, 64, dtype=np.float32).reshape(8, 8)
    values[0, 0], values[1, 1], values[2, 2] = np.nan, np.inf, -np.inf
    Image.fromarray(values, mode="F").save(tmp_path / "nan.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (numpy's "invalid value in cast") fails the test
        rgb = read_image(tmp_path / "nan.tif")
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[1, 1, 0] == 255 and rgb[2, 2, 0] == 0  # NaN black, +inf white, -inf black
    finite = np.isfinite(values)
    expected = np.clip(values[finite] / 255.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(rgb[..., 0][finite], expected)  # the other pixels as for a finite image


def test_an_all_nan_float_tiff_is_black_and_quiet(tmp_path):
    Image.fromarray(np.full((4, 6), np.nan, np.float32), mode="F").save(tmp_path / "void.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = read_image(tmp_path / "void.tif")
    assert rgb.shape == (4, 6, 3) and not rgb.any()
