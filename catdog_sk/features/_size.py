"""The shorter side of each decoded image, as an extraction plan: what ``CatDogClassifier(min_side=...)`` reads."""

import numpy as np

__all__ = ["ShorterSideExtractor"]


class ShorterSideExtractor:
    """Extraction plan giving the shorter side, in decoded pixels, of each image.

    The size is measured on the decoded photo before any resize or crop (EXIF
    rotation swaps the sides, not the shorter one). It runs in the same decode
    as the features and is cached by content like them, so a warm cache still
    reads no image. A GPU decoder's path takes it from the header instead
    (:func:`catdog_sk.preprocess.image_size`, the same number).

    Attributes
    ----------
    name : str
        ``'shorter_side'``.
    version : int
        Bumped whenever the output changes.
    n_features_out : int
        1.

    See Also
    --------
    catdog_sk.CatDogClassifier : its ``min_side`` answers ``'unknown'`` (reason ``'too_small'``) below a size.
    """

    name = "shorter_side"
    version = 1
    n_features_out = 1

    def config(self):
        """The settings that decide this plan's output (its feature-cache namespace).

        Returns
        -------
        config : dict
        """
        return {"name": self.name, "version": self.version}

    def prepare(self, image):
        """The shorter side of one decoded ``(H, W, 3)`` image."""
        return min(image.shape[:2])

    def prepare_encoded(self, data, path, max_pixels):
        """The shorter side from the encoded file's header (for a batch-stage GPU decoder)."""
        from ..preprocess import image_size

        return min(image_size(data, path=path, max_pixels=max_pixels))

    def decode_prepared(self, items):
        """Nothing to decode: the header already gave the size."""
        return list(items)

    def finalize(self, items):
        """Stack the sides of one chunk.

        Returns
        -------
        sides : ndarray of shape (n_images, 1), dtype float32
        """
        return np.asarray(items, dtype=np.float32).reshape(-1, 1)
