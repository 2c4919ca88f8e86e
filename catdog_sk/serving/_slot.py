"""The served model: loaded once, swapped whole when a models root promotes another one."""

import logging
import threading
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

    A promotion that cannot be loaded (missing run, tampered file, bad pointer) never takes the
    service down: the model it has keeps serving, ``on_reload_error`` is called once per change of
    ``PROMOTED``, and the load is tried again only when ``PROMOTED`` changes again.
    """

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
        self._failed_mtime = None
        self.on_reload = self.on_reload_error = None
        self.model = self._load()

    def _pointer_mtime(self):
        try:
            return self.pointer.stat().st_mtime_ns
        except OSError:
            return None

    def _load(self):
        """A new snapshot: the classifier (its network compiled now, by one warm-up image), version and classes."""
        from ..models import load_model
        from ..models.card import model_version
        from ..models.persistence import promoted_model_dir

        mtime = self._pointer_mtime()
        clf = load_model(self.model_path, unsafe=self.unsafe)
        if self.device:
            clf.set_params(device=self.device)
        # Warm up: load and compile the network now, not on the first request (no cache here:
        # a cached warm-up image would skip the network).
        clf.featurize([np.zeros((8, 8, 3), np.uint8)], cache=None, n_jobs=1, progress=False)
        card = getattr(clf, "card_", None)
        return {"clf": clf, "sha": card.sha256 if card else "",
                "dir": promoted_model_dir(self.model_path), "version": model_version(clf),
                "classes": [str(c) for c in clf.classes_], "pointer_mtime": mtime}

    def current(self):
        """The snapshot to serve with, reloaded first if the models root promoted another model."""
        seen = self._pointer_mtime()
        if seen is not None and seen != self.model["pointer_mtime"]:
            with self._reload_lock:
                if seen != self.model["pointer_mtime"] and seen != self._failed_mtime:
                    try:
                        self.model = self._load()
                    except Exception as exc:  # noqa: BLE001 - any failure keeps the old model
                        self._failed_mtime = seen
                        logger.error("reload of the promoted model failed, still serving %s: %s",
                                     self.model["version"], exc)
                        if self.on_reload_error is not None:
                            self.on_reload_error(exc)
                    else:
                        if self.on_reload is not None:
                            self.on_reload(self.model)
        return self.model
