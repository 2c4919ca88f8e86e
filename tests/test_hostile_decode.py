"""Decoding odd but valid files: float TIFFs with NaN and infinities decode quietly and deterministically."""

import warnings

import numpy as np
from PIL import Image

from catdog_sk.preprocess import read_image


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
