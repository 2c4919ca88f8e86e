"""Joint colour histograms."""

import numpy as np

from .._validation import check_choice, check_number

__all__ = ["color_histogram", "ColorHistogramExtractor"]

_SPACES = ("hsv", "rgb", "lab")


def color_histogram(image, *, space="hsv", bins=8, size=128):
    """Joint 3-D colour histogram of an RGB image, L1-normalised then square-rooted.

    The square root (Hellinger mapping) makes Euclidean distance between two
    histograms behave like the Bhattacharyya distance, which suits linear and
    RBF classifiers far better than raw counts.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    space : {'hsv', 'rgb', 'lab'}, default='hsv'
        Colour space the histogram is taken in.
    bins : int, default=8
        Bins per channel; the histogram has ``bins ** 3`` cells.
    size : int, default=128
        The image is first resized to ``size x size`` (speed; the normalised
        histogram barely depends on resolution).

    Returns
    -------
    features : ndarray of shape (bins ** 3,), dtype float32
    """
    import cv2

    from ..preprocess import resize_exact

    small = resize_exact(image, size)
    if space == "hsv":
        conv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)  # H in [0, 180)
        ranges = [0, 180, 0, 256, 0, 256]
    elif space == "lab":
        conv = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
        ranges = [0, 256, 0, 256, 0, 256]
    else:
        conv = np.ascontiguousarray(small)
        ranges = [0, 256, 0, 256, 0, 256]
    hist = cv2.calcHist([conv], [0, 1, 2], None, [bins, bins, bins], ranges).ravel()
    hist /= max(hist.sum(), 1.0)
    return np.sqrt(hist).astype(np.float32)


class ColorHistogramExtractor:
    """Extraction plan for :func:`color_histogram`.

    The extraction engine calls :meth:`prepare` per image and :meth:`finalize`
    per chunk; :meth:`config` keys the feature cache.

    Parameters
    ----------
    space : {'hsv', 'rgb', 'lab'}, default='hsv'
        Colour space the histogram is taken in.
    bins : int, default=8
        Bins per channel, 2 to 64.
    size : int, default=128
        Side of the square the image is resized to first, 8 to 1024.
    caller : str, default='ColorHistogramTransformer'
        Name shown in parameter errors.

    Attributes
    ----------
    name : str
        ``'color'``.
    version : int
        Bumped whenever the output for the same parameters changes.
    params : dict
        ``space``, ``bins`` and ``size``.
    n_features_out : int
        ``bins ** 3``.

    Raises
    ------
    InvalidParameterError
        A parameter is out of range.
    """

    name = "color"
    version = 1

    def __init__(self, *, space="hsv", bins=8, size=128, caller="ColorHistogramTransformer"):
        check_choice(space, _SPACES, name="space", caller=caller)
        check_number(bins, name="bins", caller=caller, low=2, high=64)
        check_number(size, name="size", caller=caller, low=8, high=1024)
        self.params = dict(space=space, bins=bins, size=size)
        self.n_features_out = bins ** 3

    def config(self):
        """The settings that decide this extractor's output, for feature-cache keys and model cards.

        Returns
        -------
        config : dict
            ``name``, ``version`` and the parameters; a change in any of them gives a new cache namespace.
        """
        return {"name": self.name, "version": self.version, **self.params}

    def prepare(self, image):
        """Per-image stage, run in the extraction threads: the histogram of one image, see :func:`color_histogram`.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3), dtype uint8
            A decoded RGB image.

        Returns
        -------
        prepared : ndarray of shape (n_features_out,), dtype float32
        """
        return color_histogram(image, **self.params)

    def finalize(self, prepared):
        """Batch stage: stack the per-image histograms.

        Parameters
        ----------
        prepared : list of ndarray
            The outputs of :meth:`prepare` for a chunk of images, in order.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), dtype float32
        """
        return np.stack(prepared).astype(np.float32, copy=False)
