import io
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from catdog_sk.exceptions import ImageDecodeError
from catdog_sk.preprocess import (Augmentation, augment, decode_image, read_image,
                                  resize_shorter_center_crop)

from conftest import png_header_only, save, textured_image

# EXIF orientation -> the numpy operation that makes the stored pixels upright.
UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


def _png_with_orientation(img, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_matches_physically_transposed_copy(orientation):
    img = textured_image(40, 64)
    decoded = decode_image(_png_with_orientation(img, orientation))
    np.testing.assert_array_equal(decoded, np.ascontiguousarray(UPRIGHT[orientation](img)))


def test_exif_orientation_6_on_4x2_jpeg_comes_back_2x4():
    """The mflux#495 recipe: a 4 wide x 2 high JPEG tagged Orientation=6 is 2 wide x 4 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (4, 2), (200, 10, 10)).save(buf, format="JPEG", exif=exif)
    assert decode_image(buf.getvalue()).shape == (4, 2, 3)


def _encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_modes_convert_to_rgb_uint8():
    rgb = Image.fromarray(textured_image())
    cases = {
        "grey": _encode(rgb.convert("L"), "PNG"),
        "cmyk_jpeg": _encode(rgb.convert("CMYK"), "JPEG"),
        "palette_gif": _encode(rgb.convert("P"), "GIF"),
        "rgba": _encode(rgb.convert("RGBA"), "PNG"),
        "la": _encode(rgb.convert("LA"), "PNG"),
        "bmp": _encode(rgb, "BMP"),
        "webp": _encode(rgb, "WEBP"),
    }
    for name, data in cases.items():
        out = decode_image(data)
        assert out.dtype == np.uint8 and out.shape == (96, 128, 3), name


def test_alpha_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out == 255).all()


def test_palette_with_transparency_is_composited_on_white():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0] * 256)
    out = decode_image(_encode(im, "GIF", transparency=0))
    assert (out == 255).all()


def test_16_bit_grey_png_keeps_its_range():
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    out = decode_image(_encode(Image.fromarray(ramp), "PNG"))
    assert out.dtype == np.uint8
    # Clipping instead of rescaling would make almost everything 255.
    expected = np.round(ramp / 65535 * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    assert len(np.unique(out[..., 0])) == 64


def test_content_decides_format_not_extension(tmp_path):
    png_named_jpg = save(textured_image(), tmp_path / "really_a_png.jpg", format="PNG")
    assert read_image(png_named_jpg).shape == (96, 128, 3)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"hello, I am a text file\n" * 10, "not_an_image"),
    (np.random.default_rng(0).bytes(5000), "not_an_image"),
])
def test_undecodable_files_raise_decode_error_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason) as info:
        read_image(path)
    assert info.value.reason == reason and info.value.path == str(path)


def test_truncated_jpeg_is_reported_not_padded():
    data = _encode(Image.fromarray(textured_image(256, 256)), "JPEG", quality=95)
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data[: len(data) // 2], path="half.jpg")
    assert info.value.reason == "truncated"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is before


@pytest.mark.parametrize("side", [30000, 8000])
def test_decompression_bomb_rejected_from_header(side):
    """30000^2 trips Pillow's own guard, 8000^2 only ours: both say too_large, fast."""
    max_before = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError) as info:
        decode_image(png_header_only(side, side), path="bomb.png")
    assert info.value.reason == "too_large"
    assert time.perf_counter() - start < 1.0  # header only: nothing was decoded
    assert Image.MAX_IMAGE_PIXELS == max_before


def test_max_pixels_is_configurable():
    data = _encode(Image.fromarray(textured_image(100, 100)), "PNG")
    with pytest.raises(ImageDecodeError, match="max_pixels=5,000"):
        decode_image(data, max_pixels=5000)
    assert decode_image(data, max_pixels=10_000).shape == (100, 100, 3)


def test_arrays_pass_through_and_bad_arrays_are_refused():
    img = textured_image()
    np.testing.assert_array_equal(read_image(img), img)
    assert read_image(img[:, :, 0]).shape == (96, 128, 3)
    with pytest.raises(ImageDecodeError, match="bad_array"):
        read_image(img.astype(np.float32))


def test_unreadable_path_is_reported(tmp_path):
    with pytest.raises(ImageDecodeError) as info:
        read_image(tmp_path)  # a directory
    assert info.value.reason == "unreadable"


def test_augment_is_seeded_and_changes_the_image():
    img = textured_image(120, 160)
    a = augment(img, random_state=3)
    b = augment(img, random_state=3)
    c = augment(img, random_state=4)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape[2] == 3
    plain = augment(img, random_state=0, augmentation=Augmentation(hflip=0, crop_scale=(1, 1), jitter=0))
    assert plain.shape[2] == 3 and plain.size <= img.size


def test_resize_shorter_center_crop_shape():
    out = resize_shorter_center_crop(textured_image(300, 500), 224, crop_pct=0.875)
    assert out.shape == (224, 224, 3)
    tiny = resize_shorter_center_crop(textured_image(10, 20), 224, crop_pct=0.875)
    assert tiny.shape == (224, 224, 3)
