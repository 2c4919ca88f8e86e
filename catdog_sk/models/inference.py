"""Predictions of a fitted classifier for image files, streamed chunk by chunk."""

import os

__all__ = ["predict_paths"]


def predict_paths(clf, paths, *, cache=None, n_jobs=None, progress=False, chunk_size=256):
    """Yield one result dict per path, in order, computing features chunk by chunk.

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted.
    paths : list of str
        Image files (see :func:`catdog_sk.data.expand_inputs` for folders).
    cache : str or os.PathLike, default=None
        Feature cache folder (none: features are computed).
    n_jobs : int, default=None
        Decoding threads.
    progress : bool, default=False
        A progress bar on stderr.
    chunk_size : int, default=256
        Images featurized at once: memory stays bounded on any number of paths.

    Yields
    ------
    result : dict
        ``{'path', 'label', 'probabilities': {class: p}, 'presence', 'reason', 'model_version'}``
        (label ``'unknown'`` when the model abstains, see ``CatDogClassifier(unknown=...)``;
        ``presence`` is its presence score, 1.0 for a model that never abstains; ``reason`` says why
        a label is 'unknown', ``'too_small'`` or ``'not_cat_or_dog'``, and is None otherwise), or
        ``{'path', 'error', 'detail', 'model_version'}`` for an unreadable file.
    """
    from .card import model_version

    version = model_version(clf)
    classes = [str(c) for c in clf.classes_]
    for start in range(0, len(paths), chunk_size):
        yield from _predict_chunk(clf, paths[start:start + chunk_size], classes, version, cache=cache,
                                  n_jobs=n_jobs, progress=progress)


def _predict_chunk(clf, chunk, classes, version, **featurize):
    """The result dicts of one chunk of paths, in order (see :func:`predict_paths`)."""
    from ..data import special_file_reason

    # Special files are answered without being opened (a FIFO would wait forever for a writer).
    special = {i: why for i, p in enumerate(chunk) if (why := special_file_reason(p)) is not None}
    readable = [i for i in range(len(chunk)) if i not in special]
    F, ok, errs, sides = (clf.featurize([chunk[i] for i in readable], on_error="skip", desc="predict", **featurize)
                          if readable else (None, [], [], None))
    errors = {e.path: e for e in errs}
    labels, proba, presence, reasons = clf.predict_features(F, sides=sides) if len(ok) else ([], [], [], [])
    row_of = {readable[i]: r for r, i in enumerate(ok)}
    for i, path in enumerate(chunk):
        if i in row_of:
            r = row_of[i]
            yield {"path": path, "label": str(labels[r]),
                   "probabilities": {c: round(float(v), 6) for c, v in zip(classes, proba[r])},
                   "presence": round(float(presence[r]), 6), "reason": reasons[r], "model_version": version}
        else:
            err = errors.get(os.fspath(path))
            yield {"path": path, "error": err.reason if err else "unreadable",
                   "detail": special.get(i) or (err.detail if err else ""), "model_version": version}
