"""Turn image files into pixels, robustly, and resize/augment them per feature.

Every function here returns or takes ``uint8`` arrays of shape ``(height, width, 3)``
in RGB order. Decoding never touches Pillow's process-wide switches
(``ImageFile.LOAD_TRUNCATED_IMAGES``, ``Image.MAX_IMAGE_PIXELS``): a truncated
file is reported, not silently padded, and the pixel cap is our own, checked
from the header before any pixel is decoded.
"""

import io
import os
import stat
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import ImageDecodeError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "centre_squares",
    "training_crop",
    "check_image_array",
    "read_bytes",
    "decode_image",
    "read_image",
    "image_size",
    "jpeg_orientation",
    "resize_exact",
    "resize_shorter_center_crop",
    "center_crop_geometry",
    "Augmentation",
    "augment",
]

#: Default cap on width * height, checked from the header before decoding.
#: 40 MP covers any camera photo while keeping one decode under ~120 MB of RAM.
DEFAULT_MAX_PIXELS = 40_000_000

#: Largest long-to-short side ratio kept before an image is upscaled for a centre crop: a 1 x 8,000
#: strip would otherwise grow to 256 x 2,048,000 pixels (1.5 GB) on its way to a 224-px crop.
MAX_ASPECT_RATIO = 4.0


def read_bytes(path):
    """Read a whole file, turning OS failures into :class:`ImageDecodeError`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    data : bytes
        The file's content (never empty).

    Raises
    ------
    ImageDecodeError
        With reason ``'unreadable'`` (permissions, a symlink loop, a directory,
        a FIFO or device, a file that vanished) or ``'empty'`` (zero bytes).
    """
    try:
        # O_NONBLOCK: a FIFO named like a photo must not hang the run waiting for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ImageDecodeError(path, "unreadable", "not a regular file")
            data = fh.read()
    except OSError as exc:
        raise ImageDecodeError(path, "unreadable", exc.strerror or type(exc).__name__) from None
    if not data:
        raise ImageDecodeError(path, "empty", "file has 0 bytes")
    return data


def _to_rgb(im):
    """Convert any Pillow mode to RGB; alpha is composited onto white."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # High-bit-depth greyscale: Pillow's convert('L') clips at 255 and would
        # turn a 16-bit photo white, so rescale the actual range instead.
        arr = np.asarray(im).astype(np.float64)
        finite = np.isfinite(arr)
        top = arr.max(initial=0) if finite.all() else arr[finite].max(initial=0)
        hi = 65535.0 if (mode.startswith("I;16") or top > 255) else 255.0
        if not finite.all():  # a float TIFF's NaN is black, +inf white: no numpy warning about the cast
            arr = np.nan_to_num(arr, nan=0.0, posinf=hi, neginf=0.0)
        grey = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, im).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def _reason(exc):
    text = str(exc).lower()
    return "truncated" if ("truncated" in text or "broken data stream" in text) else "corrupt"


def decode_image(data, *, path=None, max_pixels=DEFAULT_MAX_PIXELS, draft_size=None):
    """Decode encoded image bytes into an RGB ``uint8`` array, upright.

    The format is sniffed from the content, never from the file name, so a
    PNG named ``.jpg`` decodes. EXIF orientation (tags 2-8) is applied, so a
    tagged photo gives the same pixels as a physically rotated copy.

    Parameters
    ----------
    data : bytes
        The encoded image.
    path : str, default=None
        Only used in error messages.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Reject images whose header declares more than this many pixels, before
        decoding (decompression-bomb guard). None disables our cap; Pillow's
        own ``MAX_IMAGE_PIXELS`` still applies.
    draft_size : int, default=None
        If given, let the JPEG decoder downscale in the DCT domain while keeping
        the shorter side >= ``draft_size`` (several times faster on large photos).

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8

    Raises
    ------
    ImageDecodeError
        Reason ``'not_an_image'``, ``'truncated'``, ``'too_large'`` or ``'corrupt'``.
    """
    im = _open_checked(data, path, max_pixels)
    with im:
        width, height = im.size
        try:
            if draft_size and im.format == "JPEG":
                scale = draft_size / min(width, height)
                if scale < 1:
                    im.draft("RGB", (int(width * scale + 1), int(height * scale + 1)))
            im.load()
            im = ImageOps.exif_transpose(im)
            return np.ascontiguousarray(_to_rgb(im))
        except OSError as exc:
            raise ImageDecodeError(path, _reason(exc), str(exc)) from None
        except (ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageDecodeError(path, "corrupt", str(exc)) from None


def image_size(data, *, path=None, max_pixels=DEFAULT_MAX_PIXELS):
    """``(width, height)`` from an image's header, with every check ``decode_image`` makes before decoding.

    Cheap (the pixel data is not decoded), so callers can size or refuse an
    image before paying for the decode.

    Parameters
    ----------
    data : bytes
        The encoded image.
    path : str, default=None
        Only used in error messages.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Decompression-bomb cap, as in :func:`decode_image`.

    Returns
    -------
    size : tuple of (int, int)
        ``(width, height)`` in pixels as the header declares them, before any
        EXIF rotation.

    Raises
    ------
    ImageDecodeError
        As :func:`decode_image` would for the header (not for the pixel data).
    """
    with _open_checked(data, path, max_pixels) as im:
        return im.size


def jpeg_orientation(data, *, path=None, max_pixels=DEFAULT_MAX_PIXELS):
    """The EXIF orientation (1-8) of a colour or greyscale JPEG, from its header; None for anything else.

    It lets a GPU decoder (which ignores EXIF) take the file and turn the pixels
    upright afterwards, while everything it cannot take (PNG, CMYK JPEG, ...)
    goes to :func:`decode_image`. The header checks are those of ``decode_image``.

    Parameters
    ----------
    data : bytes
        The encoded image.
    path : str, default=None
        Only used in error messages.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Decompression-bomb cap, as in :func:`decode_image`.

    Returns
    -------
    orientation : int or None
        The EXIF orientation tag, 1-8 (1 when the tag is missing or out of
        range); None when the image is not an RGB or greyscale JPEG, or its
        EXIF block cannot be read.

    Raises
    ------
    ImageDecodeError
        As :func:`decode_image` would for the header (not for the pixel data).
    """
    with _open_checked(data, path, max_pixels) as im:
        if im.format != "JPEG" or im.mode not in ("RGB", "L"):
            return None
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:  # a damaged EXIF block: Pillow's path decides what that means
            return None
        return orientation if 1 <= orientation <= 8 else 1


def _open_checked(data, path, max_pixels):
    """Open the image lazily (header only) and refuse what must not be decoded."""
    if not data:
        raise ImageDecodeError(path, "empty", "no bytes")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(path, "too_large", str(exc).split(" could")[0]) from None
    except UnidentifiedImageError:
        raise ImageDecodeError(path, "not_an_image", "content is not a recognised image format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(path, _reason(exc), str(exc)) from None
    try:
        width, height = im.size
        if width < 1 or height < 1:
            raise ImageDecodeError(path, "corrupt", f"header declares {width}x{height} pixels")
        if max_pixels is not None and width * height > max_pixels:
            raise ImageDecodeError(
                path, "too_large",
                f"{width}x{height} = {width * height:,} pixels exceeds max_pixels={max_pixels:,}",
            )
        # JPEG spends at least a bit per 8x8 block of pixels; fewer bytes than that cannot hold the
        # picture the header declares: the decoder would pad it with grey (a 716-byte file would
        # decode as 36 MP of nothing).
        if im.format == "JPEG" and len(data) * 8 < (width * height) / 64:
            raise ImageDecodeError(
                path, "truncated",
                f"{len(data):,} bytes cannot hold the {width}x{height} pixels the header declares",
            )
    except ImageDecodeError:
        im.close()
        raise
    return im


def check_image_array(image):
    """An in-memory image as contiguous RGB uint8: grey is repeated, an alpha channel dropped.

    Parameters
    ----------
    image : array-like of shape (H, W), (H, W, 3) or (H, W, 4), dtype uint8

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8

    Raises
    ------
    ImageDecodeError
        Reason ``'bad_array'`` for any other dtype or shape.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageDecodeError(
            None, "bad_array",
            f"expected a uint8 array of shape (H, W, 3); got {arr.dtype} of shape {arr.shape}",
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def read_image(source, *, max_pixels=DEFAULT_MAX_PIXELS, draft_size=None):
    """Read one image from a path (or pass an array through) as RGB ``uint8``.

    Parameters
    ----------
    source : str, os.PathLike or ndarray
        A file path, or an ``(H, W, 3)`` / ``(H, W)`` uint8 array.
    max_pixels, draft_size
        See :func:`decode_image`.

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8
    """
    if isinstance(source, np.ndarray):
        return check_image_array(source)
    return decode_image(read_bytes(source), path=os.fspath(source), max_pixels=max_pixels,
                        draft_size=draft_size)


def resize_exact(image, size):
    """Resize to ``size x size`` ignoring aspect ratio (area averaging when shrinking).

    For features that want a fixed grid over the whole photo (nothing cropped
    away); area averaging avoids aliasing when shrinking, bilinear is used when
    either side grows.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3)
        The image to resize.
    size : int
        Side of the square output, in pixels.

    Returns
    -------
    image : ndarray of shape (size, size, 3)
        Same dtype as ``image``; ``image`` itself when it is already that size.
    """
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def center_crop_geometry(height, width, size, *, crop_pct=1.0):
    """Where :func:`resize_shorter_center_crop` trims, to what it resizes and where it crops.

    One place for the geometry, so every implementation of the transform (Pillow here, torch on a GPU in
    :mod:`catdog_sk.features._device_decode`) gives the same sizes and offsets.

    Parameters
    ----------
    height, width : int
        The image's size, in pixels.
    size : int
        Side of the square crop.
    crop_pct : float, default=1.0
        Fraction of the resized shorter side the crop keeps, as in
        :func:`resize_shorter_center_crop`.

    Returns
    -------
    trim : (slice, slice)
        Rows and columns kept before resizing: only the centre of a thin strip can reach the crop, so at
        most ``MAX_ASPECT_RATIO : 1`` of it is kept (photos of ordinary aspect are untouched). This
        bounds every intermediate image before upscaling.
    resized : (int, int)
        ``(new_height, new_width)``: the shorter side becomes ``int(size / crop_pct)``.
    offset : (int, int)
        ``(top, left)`` of the ``size x size`` crop in the resized image.
    """
    h, w = height, width
    rows, cols = slice(0, h), slice(0, w)
    if max(h, w) > MAX_ASPECT_RATIO * min(h, w):
        keep = int(np.ceil(MAX_ASPECT_RATIO * min(h, w)))
        if h > w:
            top = (h - keep) // 2
            rows, h = slice(top, top + keep), keep
        else:
            left = (w - keep) // 2
            cols, w = slice(left, left + keep), keep
    short = int(size / crop_pct)
    if w <= h:
        new_w, new_h = short, int(short * h / w)
    else:
        new_w, new_h = int(short * w / h), short
    return (rows, cols), (new_h, new_w), (int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0)))


def resize_shorter_center_crop(image, size, *, crop_pct=1.0):
    """Resize so the shorter side is ``int(size / crop_pct)``, then center-crop ``size x size``.

    This is exactly the ImageNet evaluation transform the pretrained weights
    expect (torchvision ``Resize(int(size / crop_pct), BICUBIC)`` +
    ``CenterCrop(size)`` on a Pillow image, as timm's eval transform does):
    Pillow's anti-aliased bicubic filter, the same output sizes and the same
    crop offsets, so embeddings match the reference pipeline to cosine > 0.9999.
    Thin strips keep their centre ``MAX_ASPECT_RATIO : 1`` first (see
    :func:`center_crop_geometry`).

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
        The image to transform.
    size : int
        Side of the square crop, in pixels (the backbone's input size).
    crop_pct : float, default=1.0
        Fraction of the resized shorter side the crop keeps (timm's
        ``crop_pct``; e.g. 0.875 resizes to ``int(size / 0.875)`` first).

    Returns
    -------
    image : ndarray of shape (size, size, 3), dtype uint8
        C-contiguous.
    """
    (rows, cols), (new_h, new_w), (top, left) = center_crop_geometry(*image.shape[:2], size, crop_pct=crop_pct)
    image = image[rows, cols]
    if (new_h, new_w) != image.shape[:2]:
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((new_w, new_h), Image.BICUBIC))
    return np.ascontiguousarray(image[top:top + size, left:left + size])


@dataclass(frozen=True)
class Augmentation:
    """Train-time augmentation settings (horizontal flip, random resized crop, colour jitter).

    Parameters
    ----------
    hflip : float, default=0.5
        Probability of a horizontal flip.
    crop_scale : tuple of float, default=(0.6, 1.0)
        Range of the crop's area as a fraction of the image (aspect kept within 3/4..4/3).
    jitter : float, default=0.2
        Maximum relative change of brightness, contrast and saturation.
    """

    hflip: float = 0.5
    crop_scale: tuple = (0.6, 1.0)
    jitter: float = 0.2

    def as_dict(self):
        """The settings as a plain dict, for model cards and feature-cache keys.

        Returns
        -------
        settings : dict
            ``{"hflip": float, "crop_scale": tuple, "jitter": float}``.
        """
        return {"hflip": self.hflip, "crop_scale": tuple(self.crop_scale), "jitter": self.jitter}


def augment(image, *, random_state, augmentation=Augmentation()):
    """Return a randomly flipped, cropped and colour-jittered copy of ``image``.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    random_state : int or numpy.random.Generator
        The same seed always gives the same copy, so augmented features cache.
    augmentation : Augmentation, default=Augmentation()

    Returns
    -------
    image : ndarray of shape (crop_height, crop_width, 3), dtype uint8
    """
    rng = np.random.default_rng(random_state)
    out = image
    h, w = out.shape[:2]
    lo, hi = augmentation.crop_scale
    area = h * w * rng.uniform(lo, hi)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(min(h, max(1, round(np.sqrt(area / aspect)))))
    cw = int(min(w, max(1, round(np.sqrt(area * aspect)))))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    out = out[top:top + ch, left:left + cw]
    if rng.uniform() < augmentation.hflip:
        out = out[:, ::-1]
    j = augmentation.jitter
    if j > 0:
        f = out.astype(np.float32)
        f *= rng.uniform(1 - j, 1 + j)  # brightness
        mean = f.mean()
        f = (f - mean) * rng.uniform(1 - j, 1 + j) + mean  # contrast
        grey = f.mean(axis=2, keepdims=True)
        f = (f - grey) * rng.uniform(1 - j, 1 + j) + grey  # saturation
        out = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class AugmentedImage:
    """An item standing for a seeded augmented copy of an image, usable wherever a path is.

    Feature extraction decodes ``source``, applies :func:`augment` with ``seed``
    and caches the result under the content hash plus the seed and settings.

    Parameters
    ----------
    source : str, os.PathLike or ndarray
        The original image: a file path or an ``(H, W, 3)`` uint8 array.
    seed : int
        The ``random_state`` given to :func:`augment`; the same seed always
        gives the same copy, so its features can be cached.
    augmentation : Augmentation, default=Augmentation()
        The augmentation settings.
    """

    source: object
    seed: int
    augmentation: Augmentation = Augmentation()


def centre_squares(images, side, *, n_jobs=1):
    """Each image decoded and cut to its centre square at ``side`` x ``side`` pixels: fine-tuning's bases.

    Parameters
    ----------
    images : sequence of str, os.PathLike or ndarray
        Paths are decoded with :func:`read_image` (an unreadable one raises its
        :class:`~catdog_sk.exceptions.ImageDecodeError`).
    side : int
    n_jobs : int, default=1
        Decoding threads.

    Returns
    -------
    squares : list of ndarray of shape (side, side, 3), dtype uint8
    """
    from concurrent.futures import ThreadPoolExecutor

    def square(image):
        return resize_shorter_center_crop(read_image(image), side, crop_pct=1.0)

    with ThreadPoolExecutor(max(1, int(n_jobs))) as pool:
        return list(pool.map(square, images))


def training_crop(base, size, rng, *, min_scale=0.6):
    """A random square crop of ``base`` (side ``min_scale``..1 of it), resized to ``size``, flipped half the time.

    ``base`` is the photo's centre square at the network's resize size (see :func:`centre_squares`),
    so the crop always shows most of what the evaluation crop shows, at a slightly varied scale and
    position.

    Parameters
    ----------
    base : ndarray of shape (side, side, 3), dtype uint8
    size : int
        The network's input size.
    rng : numpy.random.RandomState
    min_scale : float, default=0.6
        Smallest share of the base's area a crop keeps.

    Returns
    -------
    crop : ndarray of shape (size, size, 3), dtype uint8
    """
    import cv2

    side = base.shape[0]
    crop = int(round(side * np.sqrt(rng.uniform(min_scale, 1.0))))
    top, left = rng.randint(0, side - crop + 1, size=2)
    out = base[top:top + crop, left:left + crop]
    out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA if crop >= size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out[:, ::-1] if rng.rand() < 0.5 else out)
