"""Classifier pipelines, grid searches, the CatDogClassifier estimator and model files."""

from ._registry import FEATURE_SETS, MODELS, make_pipeline, param_grid
from ._presence import PresenceDetector
from ._fisher import FisherVectorEncoder
from ._vlad import VLADEncoder
from .card import ModelCard
from .classifier import MIN_SIDE, UNKNOWN_REASONS, CatDogClassifier, Decision
from .inference import predict_paths
from .persistence import ModelLoadError, load_model, save_model
from .search import make_search, run_search, stack_features

__all__ = [
    "FEATURE_SETS",
    "FisherVectorEncoder",
    "MIN_SIDE",
    "MODELS",
    "UNKNOWN_REASONS",
    "CatDogClassifier",
    "Decision",
    "ModelCard",
    "ModelLoadError",
    "PresenceDetector",
    "load_model",
    "make_pipeline",
    "make_search",
    "param_grid",
    "predict_paths",
    "run_search",
    "save_model",
    "stack_features",
    "VLADEncoder",
]
