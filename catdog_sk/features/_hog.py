"""Histogram of oriented gradients on a fixed-size greyscale image."""

from functools import lru_cache

import numpy as np

from .._validation import check_choice, check_number

__all__ = ["hog_features", "hog_batch", "HOGExtractor"]

_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")


def _grey(image, size):
    import cv2

    from ..preprocess import resize_exact

    return cv2.cvtColor(resize_exact(image, size), cv2.COLOR_RGB2GRAY)


def _orientation_bins(orientation, orientations):
    # Bin i holds angles in [i * 180/orientations, (i + 1) * 180/orientations),
    # decided by the same comparisons skimage makes.
    edges = (180.0 / orientations) * np.arange(1, orientations)
    return np.searchsorted(edges, orientation, side="right")


@lru_cache(maxsize=8)
def _gradient_tables(orientations):
    d = np.arange(-255, 256, dtype=np.float64)
    g_row, g_col = np.meshgrid(d, d, indexing="ij")
    bins = _orientation_bins(np.rad2deg(np.arctan2(g_row, g_col)) % 180, orientations).astype(np.intp).ravel()
    return bins, np.hypot(g_col, g_row).ravel()


def hog_batch(greys, *, orientations=9, pixels_per_cell=8, cells_per_block=2, block_norm="L2-Hys"):
    """HOG descriptors of a stack of same-size greyscale images, vectorised over the stack.

    Computes exactly what :func:`skimage.feature.hog` computes for each image
    (central-difference gradients, unsigned orientations hard-binned into
    ``orientations`` bins over [0, 180), magnitudes averaged per cell, blocks
    of cells normalised), but for a whole batch with a handful of NumPy calls
    instead of a Cython loop per image, which makes it several times faster.

    Parameters
    ----------
    greys : ndarray of shape (n_images, height, width)
        uint8 (the fast table path) or float images.
    orientations, pixels_per_cell, cells_per_block, block_norm
        As in :func:`hog_features`.

    Returns
    -------
    features : ndarray of shape (n_images, n_features), dtype float32
    """
    greys = np.asarray(greys)
    bins, magnitude = _gradients(greys, orientations)
    hist = _cell_histograms(bins, magnitude, orientations, pixels_per_cell)
    return _normalized_blocks(hist, cells_per_block, block_norm).reshape(len(greys), -1).astype(np.float32)


def _gradients(greys, orientations):
    """Orientation bin and magnitude of every pixel's gradient: central differences, zero on the border.

    As skimage's ``_hog_channel_gradient``; 8-bit images have integer gradients in [-255, 255], so bin
    and magnitude are looked up in a table computed once with skimage's float64 formula instead of an
    arctan2 and a hypot per pixel.
    """
    dtype = np.int16 if greys.dtype == np.uint8 else np.float64
    g = greys.astype(dtype)
    g_row = np.zeros_like(g)
    g_col = np.zeros_like(g)
    g_row[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    g_col[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    if dtype == np.int16:
        bin_lut, mag_lut = _gradient_tables(orientations)
        flat = (g_row.astype(np.int32) + 255) * 511 + (g_col + 255)
        return bin_lut[flat], mag_lut[flat]
    magnitude = np.hypot(g_col, g_row)
    return _orientation_bins(np.rad2deg(np.arctan2(g_row, g_col)) % 180, orientations), magnitude


def _cell_histograms(bins, magnitude, orientations, ppc):
    """(n, cell rows, cell cols, orientations) magnitudes averaged per cell, all images in one bincount."""
    n, rows, cols = bins.shape
    n_cr, n_cc = rows // ppc, cols // ppc
    # Pixels outside the last whole cell do not count, as in skimage.
    bins = bins[:, :n_cr * ppc, :n_cc * ppc]
    magnitude = magnitude[:, :n_cr * ppc, :n_cc * ppc]
    cell_r = (np.arange(n_cr * ppc) // ppc)[None, :, None]
    cell_c = (np.arange(n_cc * ppc) // ppc)[None, None, :]
    img = np.arange(n)[:, None, None]
    index = ((img * n_cr + cell_r) * n_cc + cell_c) * orientations + bins
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * n_cr * n_cc * orientations)
    return hist.reshape(n, n_cr, n_cc, orientations) / (ppc * ppc)


def _normalized_blocks(hist, cpb, block_norm):
    """Blocks of ``cpb`` x ``cpb`` cells, one cell apart, each normalised as skimage does."""
    n, n_cr, n_cc, _ = hist.shape
    blocks = np.lib.stride_tricks.sliding_window_view(hist, (cpb, cpb), axis=(1, 2))
    blocks = blocks.transpose(0, 1, 2, 4, 5, 3).reshape(n, n_cr - cpb + 1, n_cc - cpb + 1, -1)
    eps = 1e-5
    if block_norm == "L1":
        return blocks / (np.abs(blocks).sum(-1, keepdims=True) + eps)
    if block_norm == "L1-sqrt":
        return np.sqrt(blocks / (np.abs(blocks).sum(-1, keepdims=True) + eps))
    out = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + eps ** 2)
    if block_norm == "L2":
        return out
    out = np.minimum(out, 0.2)  # L2-Hys: L2, clip at 0.2, L2 again
    return out / np.sqrt((out ** 2).sum(-1, keepdims=True) + eps ** 2)


def hog_features(image, *, size=128, orientations=9, pixels_per_cell=8, cells_per_block=2,
                 block_norm="L2-Hys"):
    """HOG descriptor of an RGB image, resized to ``size x size`` greyscale.

    Resizing to a fixed square (aspect ratio not kept) makes every image give a
    descriptor of the same length, which a linear or kernel classifier needs.
    The descriptor equals :func:`skimage.feature.hog` of that greyscale image
    (see :func:`hog_batch`).

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
    size : int, default=128
        Side of the square the image is resized to.
    orientations : int, default=9
        Number of gradient orientation bins.
    pixels_per_cell : int, default=8
        Side of a HOG cell, in pixels.
    cells_per_block : int, default=2
        Side of a normalisation block, in cells.
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, default='L2-Hys'
        Block normalisation, as in :func:`skimage.feature.hog`.

    Returns
    -------
    features : ndarray of shape (n_features,), dtype float32
        ``n_features = (size // ppc - cpb + 1) ** 2 * cpb ** 2 * orientations``.
    """
    return hog_batch(_grey(image, size)[None], orientations=orientations, pixels_per_cell=pixels_per_cell,
                     cells_per_block=cells_per_block, block_norm=block_norm)[0]


class HOGExtractor:
    """Extraction plan for :func:`hog_features` (used by the extraction engine and cache).

    :meth:`prepare` only resizes to greyscale per image; :meth:`finalize`
    computes the HOG of a whole chunk at once with :func:`hog_batch`.

    Parameters
    ----------
    size : int, default=128
        Side of the square greyscale image, 16 to 1024.
    orientations : int, default=9
        Number of gradient orientation bins, 2 to 36.
    pixels_per_cell : int, default=8
        Side of a HOG cell, in pixels (2 to ``size // 2``).
    cells_per_block : int, default=2
        Side of a normalisation block, in cells (at most the cells per side).
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, default='L2-Hys'
        Block normalisation, as in :func:`skimage.feature.hog`.
    caller : str, default='HOGTransformer'
        Name shown in parameter errors.

    Attributes
    ----------
    name : str
        ``'hog'``.
    version : int
        Bumped whenever :func:`hog_features`' output changes.
    params : dict
        The five parameters above, without ``caller``.
    n_features_out : int
        Length of one descriptor.

    Raises
    ------
    InvalidParameterError
        A parameter is out of range.
    """

    name = "hog"
    version = 2  # bump whenever hog_features' output changes (2: vectorised batch HOG)

    def __init__(self, *, size=128, orientations=9, pixels_per_cell=8, cells_per_block=2,
                 block_norm="L2-Hys", caller="HOGTransformer"):
        check_number(size, name="size", caller=caller, low=16, high=1024)
        check_number(orientations, name="orientations", caller=caller, low=2, high=36)
        check_number(pixels_per_cell, name="pixels_per_cell", caller=caller, low=2, high=size // 2)
        n_cells = size // pixels_per_cell
        check_number(cells_per_block, name="cells_per_block", caller=caller, low=1, high=n_cells)
        check_choice(block_norm, _BLOCK_NORMS, name="block_norm", caller=caller)
        self.params = dict(size=size, orientations=orientations, pixels_per_cell=pixels_per_cell,
                           cells_per_block=cells_per_block, block_norm=block_norm)
        n_blocks = n_cells - cells_per_block + 1
        self.n_features_out = n_blocks * n_blocks * cells_per_block ** 2 * orientations

    def config(self):
        """The settings that decide this extractor's output, for feature-cache keys and model cards.

        Returns
        -------
        config : dict
            ``name``, ``version`` and the parameters; a change in any of them gives a new cache namespace.
        """
        return {"name": self.name, "version": self.version, **self.params}

    def prepare(self, image):
        """Per-image stage, run in the extraction threads: the ``size x size`` greyscale copy.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3), dtype uint8
            A decoded RGB image.

        Returns
        -------
        prepared : ndarray of shape (size, size), dtype uint8
        """
        return _grey(image, self.params["size"])

    def finalize(self, prepared):
        """Batch stage: the HOG descriptors of the stacked greyscale images, see :func:`hog_batch`.

        Parameters
        ----------
        prepared : list of ndarray
            The outputs of :meth:`prepare` for a chunk of images, in order.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), dtype float32
        """
        p = self.params
        return hog_batch(np.stack(prepared), orientations=p["orientations"], pixels_per_cell=p["pixels_per_cell"],
                         cells_per_block=p["cells_per_block"], block_norm=p["block_norm"])
