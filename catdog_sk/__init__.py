"""catdog_sk: tell photos of cats from photos of dogs, the scikit-learn way.

Importing this package is cheap: torch, timm, matplotlib and FastAPI load only
when a feature that needs them is used.
"""

from ._version import __version__
from .exceptions import (BackboneUnavailableError, DatasetError, ImageDecodeError,
                         InvalidParameterError, ModelVersionWarning)

__all__ = [
    "__version__",
    "CatDogClassifier",
    "load_pretrained",
    "list_backbones",
    "BackboneUnavailableError",
    "DatasetError",
    "ImageDecodeError",
    "InvalidParameterError",
    "ModelVersionWarning",
]


def __getattr__(name):
    if name == "CatDogClassifier":
        from .models.classifier import CatDogClassifier

        return CatDogClassifier
    if name == "load_pretrained":
        from .pretrained import load_pretrained

        return load_pretrained
    if name == "list_backbones":
        from .features import list_backbones

        return list_backbones
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
