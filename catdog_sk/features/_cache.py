"""Content-addressed, crash-safe feature cache.

Layout: ``<location>/<extractor>-<config hash>/<sha[:2]>/<sha>.npy``, plus a
``config.json`` per extractor namespace saying what the hash stands for.

- The key is the SHA-256 of the image *bytes*, so a renamed or moved file hits
  and an edited file misses.
- The namespace is ``joblib.hash`` of the extractor's full configuration
  (parameters, weights checksum, code version), so changing any parameter
  never returns stale features.
- Entries are written to a temporary file and moved into place with
  ``os.replace``: a killed run leaves whole entries or none, and a rerun
  resumes from them. An unreadable entry is reported, deleted and recomputed.
- Entries are ``.npy`` files read with ``allow_pickle=False``: unlike a pickle
  (what ``joblib.Memory`` stores), a tampered cache file cannot run code.

- A file's content hash is remembered in ``hashes.sqlite`` against its path,
  size, modification time (ns) and inode, so a warm run reads no image at
  all; any change to those four fields means the file is read and hashed again.

Why not ``joblib.Memory`` itself: it keys on call arguments, not file
content, stores one result per call (our CNN computes a batch at once), and
writes non-atomically (joblib#551).
"""

import json
import os
import tempfile
import uuid
import warnings
from pathlib import Path

import joblib
import numpy as np

__all__ = ["FeatureCache", "resolve_cache", "default_cache_dir"]


def default_cache_dir():
    """``$CATDOG_CACHE`` if set, else ``./artifacts/cache``."""
    return Path(os.environ.get("CATDOG_CACHE") or Path("artifacts") / "cache")


class FeatureCache:
    """A directory of cached feature vectors.

    Parameters
    ----------
    location : str or os.PathLike
        Directory; created on first write.
    """

    def __init__(self, location):
        self.location = Path(location)
        self._namespaces = {}

    # -- remembered content hashes -------------------------------------------------------------
    def _db(self):
        import sqlite3

        self.location.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.location / "hashes.sqlite", timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
                   "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
        return db

    def known_hashes(self):
        """``{path: (size, mtime_ns, inode, sha256)}`` for every file hashed before."""
        if not (self.location / "hashes.sqlite").exists():
            return {}
        db = self._db()
        try:
            return {row[0]: tuple(row[1:]) for row in db.execute("SELECT * FROM hashes")}
        finally:
            db.close()

    def remember_hashes(self, rows):
        """Store ``(path, size, mtime_ns, inode, sha256)`` rows in one transaction."""
        if not rows:
            return
        db = self._db()
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", rows)
        finally:
            db.close()

    def __repr__(self):
        return f"FeatureCache({str(self.location)!r})"

    def namespace(self, config):
        """Directory for one extractor configuration (created, with its config.json)."""
        key = joblib.hash(config)
        if key not in self._namespaces:
            ns = self.location / f"{config['name']}-{key[:16]}"
            ns.mkdir(parents=True, exist_ok=True)
            cfg_path = ns / "config.json"
            if not cfg_path.exists():
                self._atomic_write(cfg_path, json.dumps(config, indent=2, sort_keys=True).encode())
            self._namespaces[key] = ns
        return self._namespaces[key]

    @staticmethod
    def _entry(ns, key):
        return ns / key[:2] / f"{key}.npy"

    def get(self, ns, key, n_features):
        """Cached vector for ``key``, or None when missing or corrupt (then it is removed)."""
        path = self._entry(ns, key)
        try:
            with open(path, "rb") as fh:
                arr = np.load(fh, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            self._discard(path, f"unreadable ({exc})")
            return None
        if arr.dtype != np.float32 or arr.shape != (n_features,) or not np.isfinite(arr).all():
            self._discard(path, f"wrong content (dtype {arr.dtype}, shape {arr.shape})")
            return None
        return arr

    def _discard(self, path, why):
        warnings.warn(f"Corrupt cache entry {path} {why}; recomputing it.", RuntimeWarning, stacklevel=3)
        try:
            os.unlink(path)
        except OSError:
            pass

    def put(self, ns, key, vector):
        """Store one vector atomically (temporary file + ``os.replace``)."""
        path = self._entry(ns, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(vector, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @staticmethod
    def _atomic_write(path, data):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def resolve_cache(cache):
    """None -> None; a path -> FeatureCache(path); a FeatureCache -> itself."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, FeatureCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(cache)
    from ..exceptions import InvalidParameterError

    raise InvalidParameterError(
        f"The 'cache' parameter must be None, a directory path or a FeatureCache. Got {cache!r} instead."
    )
