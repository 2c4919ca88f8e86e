"""From uploaded bytes to decisions: header checks first, then decode and classify a few at a time."""

import os
import uuid
from pathlib import Path

import numpy as np

from ..exceptions import ImageDecodeError
from ..preprocess import decode_image

__all__ = ["MAX_PIXELS_PER_REQUEST", "BATCH", "classify_uploads", "keep_uploads", "embeddings_of"]

#: Decoded pixels one /predict request may cost (sum over its images, read from their headers before
#: any is decoded); more get 413. Images are decoded and classified a few at a time.
MAX_PIXELS_PER_REQUEST = 64_000_000
BATCH = 4


def classify_uploads(slot, uploads, *, max_pixels):
    """Decode and predict ``[(name, bytes)]`` (run it in a worker thread); an ImageDecodeError is returned.

    Every image's header is checked first (size, pixel cap, the request's pixel budget), so a bad
    request costs no decoding; then at most :data:`BATCH` decoded images are held at once.

    Parameters
    ----------
    slot : ModelSlot
        Holds the model to serve with (its snapshot is taken once per request).
    uploads : list of (str, bytes)
        File names (for messages) and bodies.
    max_pixels : int
        Largest image accepted, from its header.

    Returns
    -------
    (model, features, decision) or ImageDecodeError
        The model snapshot used, the feature matrix (:meth:`CatDogClassifier.featurize`, the one path
        from images to features), and the :class:`~catdog_sk.models.Decision`.
    """
    from ..models import Decision
    from ..preprocess import image_size

    total = 0
    for name, data in uploads:
        try:
            width, height = image_size(data, path=name, max_pixels=max_pixels)
        except ImageDecodeError as exc:
            return exc
        total += width * height
    if total > MAX_PIXELS_PER_REQUEST:
        return ImageDecodeError(None, "too_large", f"the request's images hold {total:,} pixels in all; at "
                                                   f"most {MAX_PIXELS_PER_REQUEST:,} per request")
    model = slot.current()
    features, decisions = [], []
    for start in range(0, len(uploads), BATCH):
        try:
            images = [decode_image(data, path=name, max_pixels=max_pixels)
                      for name, data in uploads[start:start + BATCH]]
        except ImageDecodeError as exc:
            return exc
        with slot.predict_lock:  # compiled CNN runtimes are not re-entrant
            res = model["clf"].featurize(images, cache=None, n_jobs=1, progress=False)
        del images
        features.append(res.features)
        decisions.append(model["clf"].predict_features(res.features, sides=res.sides))
    return model, np.concatenate(features), Decision(*(np.concatenate(parts) for parts in zip(*decisions)))


def embeddings_of(model, features, n):
    """The unit CNN embeddings of the request's images (no ImageNet head columns), or ``[None] * n``.

    Parameters
    ----------
    model : dict
        The snapshot :func:`classify_uploads` used.
    features : ndarray of shape (n, n_features)
        Its feature matrix.
    n : int
        Number of images.

    Returns
    -------
    embeddings : ndarray of shape (n, embedding_dim) or list of None
    """
    embeddings = model["clf"].split_features(features)[1]
    return [None] * n if embeddings is None else embeddings


def keep_uploads(folder, hashes, blobs):
    """Keep each decoded upload by content hash (for retraining on feedback); False when the disk refused."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for h, data in zip(hashes, blobs):
            target = folder / f"{h}.img"
            if not target.exists():
                tmp = folder / f".{h}.{uuid.uuid4().hex}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, target)
    except OSError:
        return False
    return True
