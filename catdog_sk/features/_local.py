"""Local features with no neural network: dense DAISY descriptors and LBP/colour spatial pyramids.

Per image and cached, like HOG. Both look at the image and its mirror
image: a cat facing left is as much a cat as one facing right, and pooling
both views (a union of descriptors, an average of histograms) gives the
classifier that invariance without doubling the training set. The learned
part, the VLAD codebook that turns a bag of descriptors into a vector, is a
pipeline step (:class:`catdog_sk.models.VLADEncoder`), fitted inside each CV
fold like any other estimator.
"""

import numpy as np

from .._validation import check_number
from ._hog import _grey as _grey_square

__all__ = ["dense_descriptors", "texture_histograms", "DenseDescriptorExtractor", "TextureExtractor",
           "DAISY_DIM"]

#: Length of one DAISY descriptor with the parameters used here (2 rings x 6 histograms + centre, 8 orientations).
DAISY_DIM = 104
_DAISY = dict(radius=15, rings=2, histograms=6, orientations=8)


def _n_points(size, step):
    return ((size - 2 * _DAISY["radius"] - 1) // step + 1) ** 2


def dense_descriptors(image, *, size=160, step=8, mirror=True):
    """DAISY descriptors on a dense grid of a greyscale ``size x size`` copy of the image.

    DAISY (Tola et al., 2010) is a SIFT-like histogram of gradient
    orientations around a point, computed for a whole grid at once from a few
    smoothed orientation maps, so it is an order of magnitude faster than
    SIFT at every pixel.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    size : int, default=160
        Side of the square the image is resized to.
    step : int, default=8
        Grid spacing in pixels.
    mirror : bool, default=True
        Also describe the horizontally mirrored image (the rows follow the
        first view's).

    Returns
    -------
    descriptors : ndarray of shape (n_points * (1 + mirror), 104), dtype float32
        ``n_points = ((size - 31) // step + 1) ** 2``.
    """
    from skimage.feature import daisy

    grey = _grey_square(image, size)
    views = [grey, np.ascontiguousarray(grey[:, ::-1])] if mirror else [grey]
    return np.concatenate([daisy(v, step=step, **_DAISY).reshape(-1, DAISY_DIM) for v in views]).astype(np.float32)


def _pyramid(codes, n_codes, levels):
    size = codes.shape[0]
    out = []
    for grid in levels:
        cell = size // grid
        for i in range(grid):
            for j in range(grid):
                hist = np.bincount(codes[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].ravel(),
                                   minlength=n_codes).astype(np.float32)
                out.append(hist / max(hist.sum(), 1.0))
    return np.concatenate(out)


def _texture_one(rgb):
    import cv2
    from skimage.feature import local_binary_pattern

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    parts = [_pyramid(local_binary_pattern(grey, p, r, "uniform").astype(np.intp), p + 2, (1, 2, 4))
             for p, r in ((8, 1), (16, 2))]
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.intp)  # H in [0, 180)
    codes = (hsv[..., 0] * 8 // 180) * 16 + (hsv[..., 1] // 64) * 4 + hsv[..., 2] // 64
    parts.append(_pyramid(codes, 128, (1, 2)))
    return np.concatenate(parts)


def texture_histograms(image, *, size=160, mirror=True):
    """Uniform-LBP texture and HSV colour histograms over a spatial pyramid.

    Local binary patterns (radius 1 with 8 neighbours, radius 2 with 16) are
    histogrammed over the whole image, its quarters and its sixteenths; an
    8 x 4 x 4 HSV colour histogram over the whole image and its quarters. Each
    histogram sums to 1 (compare them with a chi-squared kernel).

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    size : int, default=160
    mirror : bool, default=True
        Average with the mirrored image's histograms.

    Returns
    -------
    features : ndarray of shape (1228,), dtype float32
    """
    from ..preprocess import resize_exact

    small = resize_exact(image, size)
    out = _texture_one(small)
    if mirror:
        out = (out + _texture_one(np.ascontiguousarray(small[:, ::-1]))) / 2
    return out.astype(np.float32)


class DenseDescriptorExtractor:
    """Extraction plan for :func:`dense_descriptors`: one flat row of descriptors per image.

    The rows are what a VLAD or Fisher encoder reshapes back into descriptors.

    Parameters
    ----------
    size : int, default=160
        Side of the square greyscale image (large enough for one DAISY
        descriptor, at most 1024).
    step : int, default=8
        Grid spacing in pixels, 2 to 64.
    mirror : bool, default=True
        Also describe the mirrored image.
    caller : str, default='extract'
        Name shown in parameter errors.

    Attributes
    ----------
    name : str
        ``'dense'``.
    version : int
        Bumped whenever the output for the same parameters changes.
    params : dict
        ``size``, ``step`` and ``mirror``.
    n_descriptors : int
        Descriptors per image (both views when ``mirror``).
    n_features_out : int
        ``n_descriptors * DAISY_DIM``.

    Raises
    ------
    InvalidParameterError
        A parameter is out of range.
    """

    name = "dense"
    version = 1

    def __init__(self, *, size=160, step=8, mirror=True, caller="extract"):
        check_number(size, name="size", caller=caller, low=2 * _DAISY["radius"] + 2, high=1024)
        check_number(step, name="step", caller=caller, low=2, high=64)
        self.params = dict(size=size, step=step, mirror=bool(mirror))
        self.n_descriptors = _n_points(size, step) * (2 if mirror else 1)
        self.n_features_out = self.n_descriptors * DAISY_DIM

    def config(self):
        """The settings that decide this extractor's output, for feature-cache keys and model cards.

        Returns
        -------
        config : dict
            ``name``, ``version`` and the parameters and the DAISY settings; a change in any of them gives a new cache namespace.
        """
        return {"name": self.name, "version": self.version, "daisy": _DAISY, **self.params}

    def prepare(self, image):
        """Per-image stage, run in the extraction threads: the image's descriptors, flattened, see :func:`dense_descriptors`.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3), dtype uint8
            A decoded RGB image.

        Returns
        -------
        prepared : ndarray of shape (n_features_out,), dtype float32
        """
        return dense_descriptors(image, **self.params).ravel()

    def finalize(self, prepared):
        """Batch stage: stack the per-image rows.

        Parameters
        ----------
        prepared : list of ndarray
            The outputs of :meth:`prepare` for a chunk of images, in order.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), dtype float32
        """
        return np.stack(prepared)


class TextureExtractor:
    """Extraction plan for :func:`texture_histograms`.

    Parameters
    ----------
    size : int, default=160
        Side of the square the image is resized to, 16 to 1024.
    mirror : bool, default=True
        Average with the mirrored image's histograms.
    caller : str, default='extract'
        Name shown in parameter errors.

    Attributes
    ----------
    name : str
        ``'texture'``.
    version : int
        Bumped whenever the output for the same parameters changes.
    params : dict
        ``size`` and ``mirror``.
    n_features_out : int
        1228.

    Raises
    ------
    InvalidParameterError
        ``size`` is out of range.
    """

    name = "texture"
    version = 1
    n_features_out = 1228

    def __init__(self, *, size=160, mirror=True, caller="extract"):
        check_number(size, name="size", caller=caller, low=16, high=1024)
        self.params = dict(size=size, mirror=bool(mirror))

    def config(self):
        """The settings that decide this extractor's output, for feature-cache keys and model cards.

        Returns
        -------
        config : dict
            ``name``, ``version`` and the parameters; a change in any of them gives a new cache namespace.
        """
        return {"name": self.name, "version": self.version, **self.params}

    def prepare(self, image):
        """Per-image stage, run in the extraction threads: the histograms of one image, see :func:`texture_histograms`.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3), dtype uint8
            A decoded RGB image.

        Returns
        -------
        prepared : ndarray of shape (1228,), dtype float32
        """
        return texture_histograms(image, **self.params)

    def finalize(self, prepared):
        """Batch stage: stack the per-image histograms.

        Parameters
        ----------
        prepared : list of ndarray
            The outputs of :meth:`prepare` for a chunk of images, in order.

        Returns
        -------
        features : ndarray of shape (n_images, 1228), dtype float32
        """
        return np.stack(prepared)
