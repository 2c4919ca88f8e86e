"""Prediction log: every prediction, every piece of feedback and every upload, in SQLite or PostgreSQL.

One log can be shared by any number of ``serve`` processes on any number of hosts (a PostgreSQL URL):
feedback reaches the prediction whichever server answered it, ``monitor`` sees the whole traffic, and
``fit --extra-data feedback`` finds every correction and its photo (kept once per distinct photo, by
SHA-256, in the log itself).

Writes never break serving. A locked SQLite file, a full disk or a database that went away turns the
log's writes into a bounded in-memory buffer, written in order as soon as the database answers again
(a background thread retries every second). Rows dropped beyond the buffer are counted
(``dropped``, and ``catdog_prediction_log_dropped_total`` in ``/metrics``), so a shortfall is always
accounted for.
"""

import collections
import contextlib
import logging
import os
import socket
import threading
import time
from pathlib import Path

from ..exceptions import DatasetError

__all__ = ["PredictionLog", "DEFAULT_MAX_BUFFERED", "DEFAULT_MAX_BUFFERED_BYTES"]

logger = logging.getLogger("catdog_sk.serving")

#: Log rows (predictions and feedback) a server holds while its database is away; older ones are dropped.
DEFAULT_MAX_BUFFERED = 10_000

#: Bytes of uploads a server holds while its database is away; the oldest are dropped beyond it.
DEFAULT_MAX_BUFFERED_BYTES = 256 * 2**20

#: Seconds a queued feedback waits for its prediction to reach the log (from another server's buffer).
FEEDBACK_WAIT_S = 60.0

#: Uploads this server remembers having written (by SHA-256): a photo sent again is not sent to the
#: database again (the images table keeps each photo once anyway). The oldest are forgotten first.
REMEMBERED_UPLOADS = 100_000


class PredictionLog:
    """Append-only log of predictions, feedback and uploads, shared by every server that writes to it.

    Parameters
    ----------
    url : str or os.PathLike
        A SQLite file path (created when missing), ``sqlite:///path``, or
        ``postgresql://user[:password]@host[:port]/database`` for a log shared by several servers.
    timeout : float, default=0.5
        Seconds to wait for a locked SQLite file (PostgreSQL: for a connection) before the write is
        buffered instead.
    create : bool, default=True
        A writer: create the tables, or migrate an older log on open. False for readers (``monitor``,
        ``fit --extra-data``), which never write and read any schema version.
    max_buffered : int, default=DEFAULT_MAX_BUFFERED
        Rows held in memory while the database is away.
    max_buffered_bytes : int, default=DEFAULT_MAX_BUFFERED_BYTES
        Bytes of uploads held in memory while the database is away.
    retry_interval : float, default=1.0
        Seconds between attempts to write the buffer.

    Attributes
    ----------
    path : str
        The log as given (a path or a URL).
    url : str
        The log's URL, password hidden (for messages and ``/ready``).
    errors : int
        Writes that failed (and were buffered).
    dropped : dict
        Rows dropped beyond the buffer, by kind: ``'prediction'``, ``'feedback'``, ``'image'``.
    on_drop : callable(kind, n) or None
        Told about every drop (the server counts them in ``/metrics``).
    """

    def __init__(self, url, *, timeout=0.5, create=True, max_buffered=DEFAULT_MAX_BUFFERED,
                 max_buffered_bytes=DEFAULT_MAX_BUFFERED_BYTES, retry_interval=1.0):
        from ._store import display_url, log_url, open_engine

        self.path = os.fspath(url)
        self._url = log_url(url)
        self.url = display_url(self.path)
        self.dialect = self._url.get_backend_name()
        self.timeout = timeout
        self.max_buffered = max_buffered
        self.max_buffered_bytes = max_buffered_bytes
        self.retry_interval = retry_interval
        self.errors = 0
        self.dropped = {"prediction": 0, "feedback": 0, "image": 0}
        self.on_drop = None
        self.server = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.RLock()
        self._pending = collections.deque()  # ("prediction", row) | ("feedback", row) | ("image", (sha, t, data))
        self._pending_bytes = 0
        self._stored = collections.OrderedDict()  # sha256 of uploads already written, oldest first
        self._down_since = None
        self._retrying = None
        self._schema_ready = False
        self._writer = create
        if create:
            self._engine = open_engine(self._url, timeout=timeout)
            with self._lock:
                self._try_flush()  # creates or migrates the tables; a database that is away: buffered mode
        else:
            if self.dialect == "sqlite" and not Path(self._url.database).is_file():
                raise DatasetError(f"No prediction log at {self.path}.")
            self._engine = open_engine(self._url, timeout=max(timeout, 5.0), read_only=True)

    # -- writing -------------------------------------------------------------------------------------

    def record(self, rows, images=None):
        """Store predictions, and the uploads they were made on.

        Parameters
        ----------
        rows : iterable of tuple
            ``(request_id, item, sha256, label, probabilities_json, model_version, latency_ms,
            embedding[, presence])``, where ``embedding`` is a float vector (stored as float16, for
            embedding-drift monitoring) or None, and ``presence`` the model's presence score (None
            for a model that never abstains).
        images : dict, default=None
            ``{sha256: bytes}``: each upload, kept once per distinct photo for retraining on feedback.

        Returns
        -------
        written : bool
            False when the log could not be written at once: the rows wait in the buffer (the failure
            is logged and counted, never raised: a database outage must not fail a prediction).
        """
        import numpy as np

        now = time.time()
        with self._lock:
            for sha, data in (images or {}).items():
                if sha in self._stored:  # written before: only the prediction row refers to it
                    self._stored.move_to_end(sha)
                else:
                    self._push("image", (sha, now, bytes(data)))
            for r in rows:
                embedding = None if r[7] is None else np.asarray(r[7], np.float16).tobytes()
                presence = None if len(r) < 9 or r[8] is None else float(r[8])
                self._push("prediction", {"request_id": r[0], "item": int(r[1]), "time": now, "sha256": r[2],
                                          "label": r[3], "probabilities": r[4], "model_version": r[5],
                                          "latency_ms": float(r[6]), "embedding": embedding, "presence": presence,
                                          "server": self.server})
            return self._write_now()

    def feedback(self, request_id, item, true_label, *, wait_if_missing=False):
        """Attach the true label to a logged prediction, whichever server answered it.

        Parameters
        ----------
        request_id : str
            The prediction's request.
        item : int
            The image's position in that request.
        true_label : str
            What the user says the photo shows.
        wait_if_missing : bool, default=False
            A prediction that is not in the log yet may still be in another server's buffer (its
            database was away): queue the feedback rather than answer False, and join it when the
            prediction arrives (within ``FEEDBACK_WAIT_S`` seconds; after that it is dropped and counted).

        Returns
        -------
        result : tuple, False or 'queued'
            ``(predicted_label, new)`` (``new`` is False when the same label was already recorded for
            this prediction: a replay); False when the log has no such prediction; ``'queued'`` when the
            database is away (or the prediction is not there yet): the feedback waits in the buffer.
        """
        with self._lock:
            if self._down_since is None and (not self._pending or self._try_flush()):  # own rows first
                try:
                    with self._engine.begin() as conn:
                        found = self._feedback_in(conn, request_id, int(item), true_label, time.time())
                    if found is not False or not wait_if_missing:
                        return found
                except Exception as exc:  # noqa: BLE001 - any database failure: queue it, as predictions are
                    self._went_down(exc)
            self._push("feedback", {"request_id": request_id, "item": int(item), "time": time.time(),
                                    "true_label": true_label, "queued": time.time()})
            self._write_now()
            return "queued"

    def _feedback_in(self, conn, request_id, item, true_label, when):
        import sqlalchemy as sa

        t = self._tables()
        p, f = t["predictions"], t["feedback"]
        found = conn.execute(sa.select(p.c.label).where(p.c.request_id == request_id, p.c.item == item)).fetchone()
        if found is None:
            return False
        before = conn.execute(sa.select(f.c.true_label).where(f.c.request_id == request_id,
                                                               f.c.item == item)).fetchone()
        row = {"request_id": request_id, "item": item, "time": when, "true_label": true_label}
        conn.execute(self._upsert(f, ["request_id", "item"]), [row])
        return found[0], before is None or before[0] != true_label

    def _push(self, kind, row):
        self._pending.append((kind, row))
        if kind == "image":
            self._pending_bytes += len(row[2])
        while self._pending and (len(self._pending) > self.max_buffered
                                 or self._pending_bytes > self.max_buffered_bytes):
            self._drop(*self._oldest(images_first=self._pending_bytes > self.max_buffered_bytes))

    def _oldest(self, images_first):
        if images_first:
            for k, (kind, row) in enumerate(self._pending):
                if kind == "image":
                    del self._pending[k]
                    return kind, row
        return self._pending.popleft()

    def _drop(self, kind, row):
        if kind == "image":
            self._pending_bytes -= len(row[2])
        self.dropped[kind] += 1
        if self.on_drop is not None:
            self.on_drop(kind, 1)

    def _write_now(self):
        """Write the buffer unless the database is known to be away (then the retry thread does)."""
        if self._down_since is not None:
            self.errors += 1
            return False
        return self._try_flush()

    def _try_flush(self):
        try:
            self._flush()
            return True
        except Exception as exc:  # noqa: BLE001 - any database failure: keep the rows, retry later
            self.errors += 1
            self._went_down(exc)
            return False

    def _flush(self):
        """Write every buffered row in order, in one transaction; feedback whose prediction is not there yet
        stays queued (up to FEEDBACK_WAIT_S)."""
        if not self._schema_ready:
            from ._store import SCHEMA_VERSION, migrate

            before = migrate(self._engine)
            if before is not None and before < SCHEMA_VERSION:
                logger.warning("prediction log %s: migrated from schema version %s", self.url, before)
            self._schema_ready = True
        if not self._pending:
            self._came_back()
            return
        t = self._tables()
        batch = list(self._pending)
        waiting = []
        with self._engine.begin() as conn:
            images = [{"sha256": s, "time": w, "data": d} for kind, (s, w, d) in
                      ((k, r) for k, r in batch if k == "image")]
            if images:
                conn.execute(self._upsert(t["images"], ["sha256"], update=False), images)
            predictions = [r for k, r in batch if k == "prediction"]
            if predictions:
                conn.execute(self._upsert(t["predictions"], ["request_id", "item"]), predictions)
            for kind, row in batch:
                if kind == "feedback" and self._feedback_in(conn, row["request_id"], row["item"], row["true_label"],
                                                            row["time"]) is False:
                    waiting.append(row)
        for image in images:  # committed: remembered from now on
            self._stored[image["sha256"]] = None
        while len(self._stored) > REMEMBERED_UPLOADS:
            self._stored.popitem(last=False)
        self._pending.clear()
        self._pending_bytes = 0
        now = time.time()
        for row in waiting:
            if now - row["queued"] < FEEDBACK_WAIT_S:
                self._pending.append(("feedback", row))
            else:
                self._drop("feedback", row)
        if self._pending:
            self._start_retrying()
        else:
            self._came_back()

    def _upsert(self, table, keys, *, update=True):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_={
            c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})

    def _went_down(self, exc):
        self._schema_ready = False  # what comes back may be a new, empty database or file: check its tables
        if self._down_since is None:
            self._down_since = time.time()
            logger.error("prediction log %s: write failed (%s); %d rows wait in memory and serving goes on",
                         self.url, str(exc).splitlines()[0][:300], len(self._pending))
        self._start_retrying()

    def _came_back(self):
        if self._down_since is not None:
            logger.warning("prediction log %s: written again after %.1f s", self.url, time.time() - self._down_since)
        self._down_since = None

    def _start_retrying(self):
        if self._retrying is None or not self._retrying.is_alive():
            self._retrying = threading.Thread(target=self._retry_loop, name="catdog-log-retry", daemon=True)
            self._retrying.start()

    def _retry_loop(self):
        import sqlalchemy as sa

        while True:
            time.sleep(self.retry_interval)
            if self._down_since is not None:
                try:  # outside the lock: a database host that does not answer must not hold up requests
                    with self._engine.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                except Exception:  # noqa: BLE001 - still away
                    continue
            with self._lock:
                if not self._pending and self._down_since is None:
                    return
                try:
                    self._flush()
                except Exception:  # noqa: BLE001 - still away: try again later
                    continue
                if not self._pending:
                    return

    def flush(self, timeout=10.0):
        """Wait until every buffered row is written (or ``timeout`` seconds pass).

        Returns
        -------
        written : bool
            True when nothing is left in the buffer.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._writer and (self._pending or self._down_since is not None):
                    try:
                        self._flush()
                    except Exception:  # noqa: BLE001 - still away
                        pass
                if not self._pending:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(min(0.2, self.retry_interval))

    def status(self):
        """Whether the log is reachable, and what waits in the buffer or was dropped (for ``/ready``).

        Returns
        -------
        status : dict
            ``{"url", "dialect", "reachable", "buffered", "dropped", "down_since"}``.
        """
        # no lock: /ready must answer while a write waits for the database
        return {"url": self.url, "dialect": self.dialect, "reachable": self._down_since is None,
                "buffered": len(self._pending), "dropped": dict(self.dropped), "down_since": self._down_since}

    def close(self, timeout=5.0):
        """Write what is buffered (waiting at most ``timeout`` s) and release the connections."""
        if self._writer and self._pending:
            if not self.flush(timeout):
                logger.error("prediction log %s: %d rows could not be written before shutdown", self.url,
                             len(self._pending))
        self._engine.dispose()

    def _tables(self):
        if getattr(self, "_table_objects", None) is None:
            from ._store import tables

            self._table_objects = tables()
        return self._table_objects

    # -- reading -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self):
        """The database's errors on something that is not a prediction log (or cannot be reached), as one
        DatasetError naming it."""
        import sqlalchemy as sa

        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            if self.dialect == "sqlite":
                raise DatasetError(f"{self.path} is not a prediction log written by serve "
                                   f"({_first_line(exc)}).") from None
            raise DatasetError(f"The prediction log at {self.url} cannot be read ({_first_line(exc)}).") from None
        except sa.exc.DatabaseError as exc:
            raise DatasetError(f"{self.url} is not a prediction log written by serve ({_first_line(exc)}).") from None

    def _columns(self, conn):
        import sqlalchemy as sa

        names = set(sa.inspect(conn).get_table_names())
        if not {"predictions", "feedback"} <= names:
            raise DatasetError(f"{self.url} is not a prediction log written by serve (no predictions and feedback "
                               "tables).")
        return {c["name"] for c in sa.inspect(conn).get_columns("predictions")}, names

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
            b = bytes(b) if isinstance(b, memoryview) else b
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
        import sqlalchemy as sa

        with self._reading() as conn:
            self._columns(conn)
            query = ("SELECT embedding FROM predictions WHERE embedding IS NOT NULL AND (time >= :since OR time IS "
                     "NULL) ORDER BY time DESC" + ("" if limit is None else " LIMIT :limit"))
            params = {"since": float(since or 0)} | ({} if limit is None else {"limit": int(limit)})
            return [b for (b,) in conn.execute(sa.text(query), params)][::-1]

    def feedback_images(self, uploads_dir=None):
        """Images users labelled through feedback, as files (for feature extraction).

        Uploads kept in the log are written once into ``uploads_dir`` under their SHA-256; logs written
        before uploads were kept in the log find them there already.

        Parameters
        ----------
        uploads_dir : str or os.PathLike, default=None
            Where the image files are; None: ``uploads/`` beside a SQLite log, or a folder under
            ``uploads/`` in the feature cache (``$CATDOG_CACHE`` or ``artifacts/cache``), in a folder
            named after a database log's host, port and name.

        Returns
        -------
        paths : list of str
            The labelled uploads.
        labels : list of str
            Their latest feedback label.
        missing : list of str
            Hashes whose image is neither in the log nor in ``uploads_dir``.
        """
        import sqlalchemy as sa

        uploads = Path(uploads_dir) if uploads_dir else self._default_uploads()
        latest = {}
        for row in self.rows():
            if row["true_label"] is not None:
                latest[row["sha256"]] = row["true_label"]
        paths, labels, missing = [], [], []
        for sha, label in sorted(latest.items()):
            path = uploads / f"{sha}.img"
            if not path.is_file() and not self._export_image(sha, path, sa):
                missing.append(sha)
                continue
            paths.append(str(path))
            labels.append(label)
        return paths, labels, missing

    def _default_uploads(self):
        if self.dialect == "sqlite":
            return Path(self._url.database).parent / "uploads"
        from ..features import default_cache_dir

        name = f"{self._url.host or 'local'}_{self._url.port or 5432}_{self._url.database or 'postgres'}"
        return default_cache_dir() / "uploads" / name

    def _export_image(self, sha, path, sa):
        with self._reading() as conn:
            if "images" not in sa.inspect(conn).get_table_names():
                return False
            row = conn.execute(sa.text("SELECT data FROM images WHERE sha256 = :sha"), {"sha": sha}).fetchone()
        if row is None or row[0] is None:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
        tmp.write_bytes(bytes(row[0]))
        os.replace(tmp, path)
        return True

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
            The file or database is not a prediction log (not SQLite, or without its tables), or cannot
            be reached: one line, no traceback.
        """
        import sqlalchemy as sa

        with self._reading() as conn:
            columns, _ = self._columns(conn)
            optional = ", ".join(f"p.{c}" if c in columns else f"NULL AS {c}" for c in ("presence", "server"))
            query = ("SELECT p.request_id, p.item, p.time, p.sha256, p.label, p.probabilities, p.model_version, "
                     f"p.latency_ms, {optional}, f.true_label FROM predictions p LEFT JOIN feedback f "
                     "ON p.request_id = f.request_id AND p.item = f.item ORDER BY p.time DESC"
                     + ("" if limit is None else " LIMIT :limit"))
            result = conn.execute(sa.text(query), {} if limit is None else {"limit": int(limit)})
            cols = list(result.keys())
            return [dict(zip(cols, r)) for r in result.fetchall()][::-1]


def _first_line(exc):
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
