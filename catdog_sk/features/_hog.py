"""Histogram of oriented gradients on a fixed-size greyscale image."""

import numpy as np

from .._validation import check_choice, check_number

__all__ = ["hog_features", "HOGExtractor"]

_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")


def hog_features(image, *, size=128, orientations=9, pixels_per_cell=8, cells_per_block=2,
                 block_norm="L2-Hys"):
    """HOG descriptor of an RGB image, resized to ``size x size`` greyscale.

    Resizing to a fixed square (aspect ratio not kept) makes every image give a
    descriptor of the same length, which a linear or kernel classifier needs.

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
    import cv2
    from skimage.feature import hog

    from ..preprocess import resize_exact

    grey = cv2.cvtColor(resize_exact(image, size), cv2.COLOR_RGB2GRAY)
    out = hog(grey, orientations=orientations, pixels_per_cell=(pixels_per_cell, pixels_per_cell),
              cells_per_block=(cells_per_block, cells_per_block), block_norm=block_norm,
              feature_vector=True)
    return out.astype(np.float32, copy=False)


class HOGExtractor:
    """Extraction plan for :func:`hog_features` (used by the extraction engine and cache)."""

    name = "hog"
    version = 1  # bump whenever hog_features' output changes

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
        return {"name": self.name, "version": self.version, **self.params}

    def prepare(self, image):
        return hog_features(image, **self.params)

    def finalize(self, prepared):
        return np.stack(prepared).astype(np.float32, copy=False)
