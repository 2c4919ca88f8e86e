"""Feature extraction: HOG, colour histograms and frozen-CNN embeddings, cached by content."""

from ..registry import EXTRACTORS
from ._backbones import (BUNDLED_BACKBONES, DEFAULT_CLI_BACKBONE, IMAGENET_CAT_CLASSES, IMAGENET_DOG_CLASSES,
                         BackboneSpec, get_backbone, list_backbones, register_tuned, state_sha256)
from ._cache import FeatureCache, default_cache_dir
from ._color import ColorHistogramExtractor, color_histogram
from ._engine import ExtractionResult, effective_n_jobs, extract_features
from ._hog import HOGExtractor, hog_features
from ._layout import FeatureLayout
from ._local import DenseDescriptorExtractor, TextureExtractor, dense_descriptors, texture_histograms
from ._size import ShorterSideExtractor

#: Names loaded on first use, by module: the CNN modules (torch when a network is built) and the
#: scikit-learn transformers (scikit-learn costs 1.4 s to import; the CLI's --help needs none of it).
_LAZY = {
    "_embed": ("embed", "EmbeddingExtractor", "split_backbones", "calibrate_int8"),
    "_loading": ("load_backbone", "imagenet_head", "imagenet_groups", "HEAD_COLUMNS"),
    "_runtimes": ("resolve_device", "cuda_available", "cuda_precision", "load_cuda", "load_openvino", "RUNTIMES",
                  "DEVICES", "DECODERS", "CUDA_BATCH_SIZE", "DEFAULT_BATCH_SIZE", "int8_calibration",
                  "INT8_CALIBRATION_SIZE"),
    "transformers": ("ColorHistogramTransformer", "EmbeddingTransformer", "HOGTransformer"),
}
_LAZY_MODULE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "BackboneSpec",
    "ColorHistogramExtractor",
    "DenseDescriptorExtractor",
    "TextureExtractor",
    "dense_descriptors",
    "texture_histograms",
    "ExtractionResult",
    "FeatureLayout",
    "FeatureCache",
    "HOGExtractor",
    "ShorterSideExtractor",
    "color_histogram",
    "default_cache_dir",
    "extract_features",
    "get_backbone",
    "hog_features",
    "list_backbones",
    "make_extractor",
    "FEATURE_NAMES",
    "BUNDLED_BACKBONES",
    "DEFAULT_CLI_BACKBONE",
    "IMAGENET_CAT_CLASSES",
    "IMAGENET_DOG_CLASSES",
    "effective_n_jobs",
    "state_sha256",
    "register_tuned",
    *_LAZY_MODULE,
]

#: The base extractor names, in catdog_sk.registry.EXTRACTORS order.
FEATURE_NAMES = tuple(EXTRACTORS)


def _make_cnn(*, backbone, batch_size, runtime, device, caller):
    from ._embed import EmbeddingExtractor

    # The catalogue's 'cnn' carries the ImageNet head's cat/dog/other log-probabilities after the
    # embeddings: what CatDogClassifier answers 'unknown' with (see EmbeddingExtractor).
    return EmbeddingExtractor(backbone=backbone, batch_size=batch_size, runtime=runtime, head=True, device=device,
                              caller=caller)


#: Name -> factory(backbone=, batch_size=, runtime=, device=, caller=); the keys are catdog_sk.registry.EXTRACTORS'.
_FACTORIES = {
    "hog": lambda *, caller, **_: HOGExtractor(caller=caller),
    "color": lambda *, caller, **_: ColorHistogramExtractor(caller=caller),
    "dense": lambda *, caller, **_: DenseDescriptorExtractor(caller=caller),
    "texture": lambda *, caller, **_: TextureExtractor(caller=caller),
    "cnn": _make_cnn,
}
if tuple(_FACTORIES) != FEATURE_NAMES:  # pragma: no cover - a developer added a name in one place only
    raise ImportError("catdog_sk.features._FACTORIES and catdog_sk.registry.EXTRACTORS list different names")


def make_extractor(name, *, backbone="efficientnet_lite0", batch_size=4, runtime="openvino", device="auto",
                   caller="extract"):
    """Extractor plan for one feature name (see :data:`catdog_sk.registry.EXTRACTORS`) with default parameters.

    Parameters
    ----------
    name : str
        One of ``FEATURE_NAMES``: 'hog', 'color', 'dense', 'texture' or 'cnn'.
    backbone : str, default='efficientnet_lite0'
        CNN backbone(s) for 'cnn', several joined with '+'.
    batch_size : int, default=4
        Images per forward pass of the CNN.
    runtime : str, default='openvino'
        The CNN's runtime (see :data:`RUNTIMES`).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the CNN runs.
    caller : str, default='extract'
        Named in error messages.

    Returns
    -------
    extractor : object
        An extractor plan for :func:`extract_features` (the protocol of :mod:`catdog_sk.features._engine`).

    Raises
    ------
    InvalidParameterError
        ``name`` is not one of ``FEATURE_NAMES`` (a typo never silently becomes a CNN).
    """
    from .._validation import check_choice

    check_choice(name, FEATURE_NAMES, name="name", caller="make_extractor")
    return _FACTORIES[name](backbone=backbone, batch_size=batch_size, runtime=runtime, device=device, caller=caller)


def __getattr__(name):  # see _LAZY
    if name in _LAZY_MODULE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY_MODULE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
