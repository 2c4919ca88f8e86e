"""The names of the files a saved model folder holds, and where the bundled model is, with no imports.

They live here, not in ``catdog_sk.models``, so that serving and monitoring can
name a model folder's files without importing the models package (and with it
scikit-learn).
"""

from pathlib import Path

__all__ = ["CARD_FILE", "CARD_MARKDOWN", "REFERENCE_EMBEDDINGS", "PRETRAINED_DIR"]

CARD_FILE = "model_card.json"
CARD_MARKDOWN = "model_card.md"
#: Beside the model: a seeded sample of held-out test-set CNN embeddings, the reference for drift monitoring.
REFERENCE_EMBEDDINGS = "reference_embeddings.npy"
#: The model bundled with the package (see :mod:`catdog_sk.pretrained`); the commands' default ``--model``.
PRETRAINED_DIR = Path(__file__).resolve().parent / "_pretrained"
