"""Prediction log: every prediction and every piece of feedback, in SQLite.

Writes never break serving: a locked database, a full disk or a read-only
file is reported through ``errors`` (and the ``catdog_sk.serving`` logger),
and the prediction is still returned to the client.
"""

import contextlib
import logging
import sqlite3
import threading
import time

__all__ = ["PredictionLog"]

logger = logging.getLogger("catdog_sk.serving")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT, item INTEGER, time REAL, sha256 TEXT, label TEXT, probabilities TEXT,
    model_version TEXT, latency_ms REAL, embedding BLOB, presence REAL, PRIMARY KEY (request_id, item));
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT, item INTEGER, time REAL, true_label TEXT, PRIMARY KEY (request_id, item));
"""


class PredictionLog:
    """Append-only log of predictions and feedback.

    Parameters
    ----------
    path : str or os.PathLike
        SQLite file, created when missing.
    timeout : float, default=0.5
        Seconds to wait for a locked database before giving up on a write.
    create : bool, default=True
        Create (and migrate) the tables; False for readers, which never write into the file.
    """

    def __init__(self, path, *, timeout=0.5, create=True):
        self.path = str(path)
        self.timeout = timeout
        self.errors = 0
        self._lock = threading.Lock()
        if create:  # the server's log; readers (monitor, fit --extra-data) never write into the file
            self._write(lambda db: db.executescript(_SCHEMA))
            self._write(self._migrate)

    @staticmethod
    def _migrate(db):
        """Logs written before the presence score was logged get the column (NULL for old rows)."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(predictions)")}
        if "presence" not in columns:
            db.execute("ALTER TABLE predictions ADD COLUMN presence REAL")

    def _write(self, action):
        with self._lock:
            try:
                db = sqlite3.connect(self.path, timeout=self.timeout)
                try:
                    with db:
                        return action(db)
                finally:
                    db.close()
            except sqlite3.Error as exc:
                self.errors += 1
                logger.error("prediction log %s: write failed (%s); serving goes on", self.path, exc)
                return None

    def record(self, rows):
        """Store predictions.

        Parameters
        ----------
        rows : iterable of tuple
            ``(request_id, item, sha256, label, probabilities_json, model_version, latency_ms,
            embedding[, presence])``, where ``embedding`` is a float vector (stored as float16, for
            embedding-drift monitoring) or None, and ``presence`` the model's presence score (None
            for a model that never abstains).

        Returns
        -------
        written : bool
            False when the log could not be written (the failure is logged and counted, never raised:
            a full disk must not fail a prediction).
        """
        import numpy as np

        now = time.time()
        rows = [(*r[:2], now, *r[2:7], None if r[7] is None else np.asarray(r[7], np.float16).tobytes(),
                 None if len(r) < 9 or r[8] is None else float(r[8])) for r in rows]
        return self._write(lambda db: db.executemany(
            "INSERT OR REPLACE INTO predictions (request_id, item, time, sha256, label, probabilities, "
            "model_version, latency_ms, embedding, presence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows)) is not None

    def embeddings(self, *, since=None, limit=None, width=None):
        """Logged embeddings of one width as a float32 matrix; ``limit``: the latest ones.

        A log can hold embeddings of several widths (a Lite0 + Lite2 model promoted over a Lite0 one)
        and damaged blobs (an odd number of bytes is no float16 vector): only rows of one width are
        stacked, and :meth:`embedding_sample` also says what else is there.

        Parameters
        ----------
        since : float, default=None
            Epoch seconds.
        limit : int, default=None
        width : int, default=None
            Keep the embeddings of this width (default: the latest row's).

        Returns
        -------
        embeddings : ndarray of shape (n, width), dtype float32
        """
        return self.embedding_sample(since=since, limit=limit, width=width)[0]

    def embedding_sample(self, *, since=None, limit=None, width=None):
        """The embeddings of one width and how many of each width the log holds, from one read.

        Parameters
        ----------
        since, limit, width
            As for :meth:`embeddings`.

        Returns
        -------
        embeddings : ndarray of shape (n, width), dtype float32
        widths : dict
            ``{width: count}`` over all logged embeddings read, plus ``'damaged': count`` for blobs that
            are not whole float16 vectors.
        """
        import numpy as np

        blobs, widths = [], {}
        for b in self._blobs(since, limit):
            whole = isinstance(b, bytes) and len(b) and len(b) % 2 == 0
            key = len(b) // 2 if whole else "damaged"
            widths[key] = widths.get(key, 0) + 1
            if whole:
                blobs.append(b)
        if width is None and blobs:
            width = len(blobs[-1]) // 2
        kept = [b for b in blobs if len(b) // 2 == width]
        if not kept:
            return np.empty((0, width or 0), np.float32), widths
        return np.stack([np.frombuffer(b, np.float16) for b in kept]).astype(np.float32), widths

    def _blobs(self, since, limit):
        with self._reading():
            db = sqlite3.connect(self.path, timeout=5)
            try:
                return [b for (b,) in db.execute(
                    "SELECT embedding FROM predictions WHERE embedding IS NOT NULL AND (time >= ? OR time IS NULL) "
                    "ORDER BY time DESC LIMIT ?", (since or 0, -1 if limit is None else int(limit)))][::-1]
            finally:
                db.close()

    def feedback(self, request_id, item, true_label):
        """Attach the true label to a logged prediction.

        Parameters
        ----------
        request_id : str
            The prediction's request.
        item : int
            The image's position in that request.
        true_label : str
            What the user says the photo shows.

        Returns
        -------
        result : tuple, False or None
            ``(predicted_label, new)`` (``new`` is False when the same label was already recorded for
            this prediction: a replay), False when there is no such prediction, or None when the log
            cannot be written.
        """
        def action(db):
            found = db.execute("SELECT label FROM predictions WHERE request_id = ? AND item = ?",
                               (request_id, item)).fetchone()
            if found is None:
                return False
            before = db.execute("SELECT true_label FROM feedback WHERE request_id = ? AND item = ?",
                                (request_id, item)).fetchone()
            db.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)",
                       (request_id, item, time.time(), true_label))
            return found[0], before is None or before[0] != true_label
        return self._write(action)

    def feedback_images(self, uploads_dir=None):
        """Images users labelled through feedback.

        Parameters
        ----------
        uploads_dir : str or os.PathLike, default=None
            Where the service keeps each upload under its SHA-256; None: ``uploads/`` beside the log.

        Returns
        -------
        paths : list of str
            The labelled uploads still on disk.
        labels : list of str
            Their latest feedback label.
        missing : list of str
            Hashes whose image is no longer there.
        """
        from pathlib import Path

        uploads = Path(uploads_dir) if uploads_dir else Path(self.path).parent / "uploads"
        latest = {}
        for row in self.rows():
            if row["true_label"] is not None:
                latest[row["sha256"]] = row["true_label"]
        paths, labels, missing = [], [], []
        for sha, label in sorted(latest.items()):
            path = uploads / f"{sha}.img"
            if path.is_file():
                paths.append(str(path))
                labels.append(label)
            else:
                missing.append(sha)
        return paths, labels, missing

    def rows(self, *, limit=None):
        """Predictions joined with their feedback, oldest first (for monitoring); ``limit``: the latest ones.

        Parameters
        ----------
        limit : int, default=None

        Returns
        -------
        rows : list of dict

        Raises
        ------
        DatasetError
            The file is not a prediction log (not SQLite, or without its tables): one line, no traceback.
        """
        with self._reading():
            return self._rows(limit)

    @contextlib.contextmanager
    def _reading(self):
        """sqlite3's errors on a file that is not a prediction log, as one DatasetError naming it."""
        from ..exceptions import DatasetError

        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"{self.path} is not a prediction log written by serve ({exc}).") from None

    def _rows(self, limit):
        db = sqlite3.connect(self.path, timeout=5)
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(predictions)")}
            presence = "p.presence" if "presence" in columns else "NULL AS presence"  # logs from before it
            cur = db.execute(
                "SELECT p.request_id, p.item, p.time, p.sha256, p.label, p.probabilities, p.model_version, "
                f"p.latency_ms, {presence}, f.true_label FROM predictions p LEFT JOIN feedback f "
                "ON p.request_id = f.request_id AND p.item = f.item ORDER BY p.time DESC LIMIT ?",
                (-1 if limit is None else int(limit),))
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()][::-1]
        finally:
            db.close()
