"""The served model: loaded once, swapped whole when a models root promotes another one."""

import logging
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["ModelSlot"]

logger = logging.getLogger("catdog_sk.serve")


class ModelSlot:
    """Holds the model being served, as one snapshot dict a request uses from start to end.

    Parameters
    ----------
    model_path : str or os.PathLike
        A model folder, or a models root whose ``PROMOTED`` names the model to serve.
    unsafe : bool
        Passed to :func:`catdog_sk.models.load_model`.
    device : str or None
        Set on every model loaded (None: the model's own ``device``).

    A promotion is loaded beside the served model by the one request that notices it (others go on
    with the snapshot they have, without waiting), its network warmed up under ``predict_lock`` (the
    compiled runtimes are shared by name with the served model and are not re-entrant), then swapped
    in whole. Requests in flight finish on the snapshot they started with.

    A promotion that cannot be loaded (missing run, tampered file, bad pointer) never takes the
    service down: the model it has keeps serving, ``on_reload_error`` is called once per failed
    attempt, and the load is tried again after a backoff (5 s, doubling up to 60 s) for as long as
    ``PROMOTED`` is unchanged; a change of ``PROMOTED`` is tried at once.
    """

    #: First and longest wait before a failed promotion is loaded again.
    RETRY_FIRST_S, RETRY_MAX_S = 5.0, 60.0

    def __init__(self, model_path, *, unsafe=False, device=None):
        from ..models.persistence import PROMOTED_FILE

        self.model_path = model_path
        self.unsafe = unsafe
        self.device = device
        root = Path(model_path) if Path(model_path).is_dir() else Path(model_path).parent
        self.root = root
        self.pointer = root / PROMOTED_FILE
        self.predict_lock = threading.Lock()  # compiled CNN runtimes are not re-entrant
        self._reload_lock = threading.Lock()
        self._failed_mtime = None  # PROMOTED's mtime of the last failed load, its retry time and backoff
        self._retry_at, self._backoff = 0.0, self.RETRY_FIRST_S
        self.on_reload = self.on_reload_error = None
        self.model = self._load()

    #: How long an empty ``PROMOTED`` is taken for one being written (``echo run > PROMOTED`` truncates
    #: the file before it writes the name), not for a bad pointer.
    BEING_WRITTEN_S = 1.0

    def _pointer_mtime(self):
        """``PROMOTED``'s mtime in ns; None when it is missing, or empty and younger than BEING_WRITTEN_S."""
        try:
            st = self.pointer.stat()
        except OSError:
            return None
        if st.st_size == 0 and time.time_ns() - st.st_mtime_ns < self.BEING_WRITTEN_S * 1e9:
            return None  # truncated and not yet written: the write to come changes the mtime again
        return st.st_mtime_ns

    def _load(self):
        """A new snapshot: the classifier (its network compiled now, by one warm-up image), version and classes."""
        from ..models import load_model
        from ..models.card import model_version
        from ..models.persistence import promoted_model_dir

        mtime = self._pointer_mtime()
        clf = load_model(self.model_path, unsafe=self.unsafe)
        if self.device:
            clf.set_params(device=self.device)
        # Warm up: load and compile the network now, not on the first request (no cache here: a cached
        # warm-up image would skip the network). Under predict_lock: the served model's requests use
        # the same compiled network ("Infer Request is busy" otherwise).
        with self.predict_lock:
            clf.featurize([np.zeros((8, 8, 3), np.uint8)], cache=None, n_jobs=1, progress=False)
        card = getattr(clf, "card_", None)
        return {"clf": clf, "sha": card.sha256 if card else "",
                "dir": promoted_model_dir(self.model_path), "version": model_version(clf),
                "classes": [str(c) for c in clf.classes_], "pointer_mtime": mtime}

    def current(self):
        """The snapshot to serve with, after loading the promoted model if ``PROMOTED`` changed.

        Returns
        -------
        model : dict
            ``clf``, ``sha``, ``dir``, ``version``, ``classes`` and ``pointer_mtime``; one request uses
            one snapshot from start to end.
        """
        seen = self._pointer_mtime()
        if seen is None or seen == self.model["pointer_mtime"]:
            return self.model
        if seen == self._failed_mtime and time.monotonic() < self._retry_at:
            return self.model  # waiting out the backoff of a failed load
        if not self._reload_lock.acquire(blocking=False):
            return self.model  # another request is loading it: serve on, do not wait
        try:
            if seen != self.model["pointer_mtime"]:
                self._reload(seen)
        finally:
            self._reload_lock.release()
        return self.model

    def _reload(self, seen):
        try:
            model = self._load()
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old model
            if self._pointer_mtime() != seen:
                return  # PROMOTED changed while it loaded (read mid-write): the next request loads the new one
            self._backoff = min(2 * self._backoff, self.RETRY_MAX_S) if seen == self._failed_mtime \
                else self.RETRY_FIRST_S
            self._failed_mtime, self._retry_at = seen, time.monotonic() + self._backoff
            logger.error("reload of the promoted model failed, still serving %s (next try in %.0f s): %s",
                         self.model["version"], self._backoff, exc)
            if self.on_reload_error is not None:
                self.on_reload_error(exc)
            return
        self.model, self._failed_mtime = model, None  # one assignment: a request sees old or new, whole
        if self.on_reload is not None:
            self.on_reload(model)

    def is_promoted(self, model):
        """Whether ``model`` (a snapshot) is the one ``PROMOTED`` names now (True when serving one folder).

        Parameters
        ----------
        model : dict
            A snapshot from :meth:`current`.

        Returns
        -------
        promoted : bool
        """
        from ..models.persistence import promoted_model_dir

        if not self.pointer.is_file():
            return True
        try:
            return Path(promoted_model_dir(self.model_path)).resolve() == Path(model["dir"]).resolve()
        except Exception:  # noqa: BLE001 - an unreadable pointer: not the served model's
            return False
