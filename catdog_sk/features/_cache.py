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

- After a run, loose entries are merged into a *pack* (``pack-<id>.npy``, a
  float32 matrix, plus ``pack-<id>.keys``, its row keys, written last so a
  pack without its keys is ignored). Packs are memory-mapped, so a warm run
  reads thousands of vectors at memory speed instead of opening a file each.
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

import numpy as np

__all__ = ["FeatureCache", "resolve_cache", "default_cache_dir"]


def default_cache_dir():
    """``$CATDOG_CACHE`` if set, else ``./artifacts/cache``.

    Returns
    -------
    path : pathlib.Path
        The cache folder the command-line tools use by default (not created here).
    """
    return Path(os.environ.get("CATDOG_CACHE") or Path("artifacts") / "cache")


class FeatureCache:
    """A directory of cached feature vectors.

    Parameters
    ----------
    location : str or os.PathLike
        Directory; created on first write.
    """

    #: Loose entries that trigger merging them into a pack at the end of a run.
    PACK_THRESHOLD = 64

    def __init__(self, location):
        self.location = Path(location)
        self._namespaces = {}
        self._packs = {}  # namespace dir -> {key: (memmap, row)}
        self._memo_off = False  # set when hashes.sqlite is locked by another process: work without it

    def check_usable(self):
        """Create the folder if needed and prove it is writable; CacheError naming the path and the fix.

    Called before any image is read, so an unusable cache fails at once
    rather than after the first chunk of work.

    Returns
    -------
    self : FeatureCache

    Raises
    ------
    CacheError
        The folder cannot be created or written to.
    """
        from ..exceptions import CacheError

        try:
            self.location.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.location, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CacheError(f"Feature cache {self.location} is not usable ({exc.strerror or exc}); choose "
                             f"another folder with --cache DIR (or $CATDOG_CACHE), or run with --no-cache.") from None
        return self

    # -- remembered content hashes -------------------------------------------------------------
    MEMO = "hashes.sqlite"

    def _db(self):
        import sqlite3

        self.location.mkdir(parents=True, exist_ok=True)
        # A short wait: the memo is only a speed-up, never worth a minute of waiting for a lock.
        db = sqlite3.connect(self.location / self.MEMO, timeout=2)
        db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
                   "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
        return db

    def _memo(self, action, default):
        """Run ``action(db)``; a corrupt memo is set aside and rebuilt, a locked one skipped for this run."""
        import sqlite3

        if self._memo_off:
            return default
        for attempt in (0, 1):
            try:
                db = self._db()
                try:
                    return action(db)
                finally:
                    db.close()
            except sqlite3.DatabaseError as exc:  # locked, "file is not a database", malformed
                locked = "locked" in str(exc) or "busy" in str(exc)
                if locked or attempt:
                    why = "is locked by another process" if locked else f"cannot be used ({exc})"
                    warnings.warn(f"{self.location / self.MEMO} {why}; this run reads and hashes image files "
                                  f"instead of using it.", RuntimeWarning, stacklevel=3)
                    self._memo_off = True
                    return default
                self._set_aside(exc)  # then try once more with a fresh memo
        return default

    def _set_aside(self, exc):
        memo = self.location / self.MEMO
        aside = memo.with_name(f"{self.MEMO}.corrupt-{uuid.uuid4().hex[:8]}")
        warnings.warn(f"{memo} is unreadable ({exc}); moved to {aside.name} and rebuilt (files are hashed "
                      f"again once).", RuntimeWarning, stacklevel=4)
        try:
            os.replace(memo, aside)
        except OSError:
            pass

    def known_hashes(self):
        """``{path: (size, mtime_ns, inode, sha256)}`` for every file hashed before.

        Lets a run skip re-hashing files that did not change since.

        Returns
        -------
        hashes : dict of str to tuple
            Empty when nothing was remembered or the memo is locked by another process.
        """
        if not (self.location / self.MEMO).exists():
            return {}

        def action(db):
            # Paths are stored as their file-system bytes: a name that is not valid UTF-8 is a
            # legal Unix file name, and SQLite TEXT cannot hold Python's surrogate escapes.
            return {os.fsdecode(row[0]) if isinstance(row[0], bytes) else row[0]: tuple(row[1:])
                    for row in db.execute("SELECT * FROM hashes")}
        return self._memo(action, {})

    def remember_hashes(self, rows):
        """Store ``(path, size, mtime_ns, inode, sha256)`` rows in one transaction.

        Parameters
        ----------
        rows : list of tuple
            ``(path, size, mtime_ns, inode, sha256)`` per newly hashed file; an
            empty list does nothing. Skipped silently when the memo is locked.
        """
        if not rows:
            return

        def action(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                               [(os.fsencode(r[0]), *r[1:]) for r in rows])
        self._memo(action, None)

    def __repr__(self):
        return f"FeatureCache({str(self.location)!r})"

    def namespace(self, config):
        """Directory for one extractor configuration (created, with its config.json).

        Parameters
        ----------
        config : dict
            The extractor's ``config()``; its joblib hash names the directory,
            so different settings never share entries.

        Returns
        -------
        ns : pathlib.Path
            ``<location>/<name>-<16 hex digits>``.

        Raises
        ------
        CacheError
            The directory cannot be created.
        """
        from ..exceptions import CacheError

        import joblib  # here: importing joblib costs 0.3 s, and --version / --help need no cache

        key = joblib.hash(config)
        if key not in self._namespaces:
            ns = self.location / f"{config['name']}-{key[:16]}"
            try:
                ns.mkdir(parents=True, exist_ok=True)
                cfg_path = ns / "config.json"
                if not cfg_path.exists():
                    self._atomic_write(cfg_path, json.dumps(config, indent=2, sort_keys=True).encode())
            except OSError as exc:
                raise CacheError(f"Feature cache {self.location} is not usable ({exc.strerror or exc}); choose "
                                 f"another folder with --cache DIR (or $CATDOG_CACHE), or run with "
                                 f"--no-cache.") from None
            self._namespaces[key] = ns
        return self._namespaces[key]

    @staticmethod
    def _entry(ns, key):
        return ns / key[:2] / f"{key}.npy"

    def _pack_index(self, ns):
        index = self._packs.get(ns)
        if index is None:
            index = {}
            for keys_file in sorted(ns.glob("pack-*.keys")):
                try:
                    keys = keys_file.read_text().split()
                    matrix = np.load(keys_file.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError) as exc:
                    self._drop_pack(keys_file, f"Removing unreadable cache pack {keys_file} ({exc}); "
                                               f"its entries will be recomputed.")
                    continue
                if matrix.ndim != 2 or matrix.shape[0] != len(keys) or matrix.dtype != np.float32:
                    self._drop_pack(keys_file, f"Removing cache pack {keys_file}: {len(keys)} keys for a "
                                               f"{matrix.dtype} matrix of shape {matrix.shape}.")
                    continue
                for row, k in enumerate(keys):
                    index[k] = (matrix, row)
            self._packs[ns] = index
        return index

    @staticmethod
    def _drop_pack(keys_file, message):
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        for path in (keys_file, keys_file.with_suffix(".npy")):
            try:
                os.unlink(path)
            except OSError:
                pass

    def get_packed(self, ns, key, n_features):
        """Cached vector for ``key`` from a pack (memory speed), or None.

        Parameters
        ----------
        ns : pathlib.Path
            The namespace directory, from :meth:`namespace`.
        key : str
            The entry's key (the image's content hash, plus an augmentation suffix).
        n_features : int
            The expected length; a pack of another width does not match.

        Returns
        -------
        vector : ndarray of shape (n_features,), dtype float32, or None
            A copy of the row; None when missing or not finite.
        """
        hit = self._pack_index(ns).get(key)
        if hit is not None and hit[0].shape[1] == n_features:
            vec = np.array(hit[0][hit[1]])
            if np.isfinite(vec).all():
                return vec
        return None

    def get(self, ns, key, n_features):
        """Cached vector for ``key``, or None when missing or corrupt (then it is removed).

        Packs are looked up first, then the loose entry; a corrupt entry is
        removed with a RuntimeWarning so it is recomputed.

        Parameters
        ----------
        ns : pathlib.Path
            The namespace directory, from :meth:`namespace`.
        key : str
            The entry's key (the image's content hash, plus an augmentation suffix).
        n_features : int
            The expected length.

        Returns
        -------
        vector : ndarray of shape (n_features,), dtype float32, or None
        """
        vec = self.get_packed(ns, key, n_features)
        if vec is not None:
            return vec
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
        """Store one vector atomically (temporary file + ``os.replace``); CacheError when the disk refuses.

        Parameters
        ----------
        ns : pathlib.Path
            The namespace directory, from :meth:`namespace`.
        key : str
            The entry's key (the image's content hash, plus an augmentation suffix).
        vector : array-like of shape (n_features,)
            Stored as float32.

        Raises
        ------
        CacheError
            The entry cannot be written; entries written so far are kept.
        """
        from ..exceptions import CacheError

        path = self._entry(ns, key)
        tmp = path.parent / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(vector, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        except OSError as exc:
            raise CacheError(f"Cannot write to the feature cache {self.location} ({exc.strerror or exc}); free "
                             f"space or choose another folder with --cache DIR, or run with --no-cache. "
                             f"Entries written so far are kept.") from None
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass

    def pack(self, ns):
        """Merge loose entries of a namespace into one memory-mapped pack (atomic, crash-safe).

        Returns the number of entries packed (0 when below ``PACK_THRESHOLD``).

        Parameters
        ----------
        ns : pathlib.Path
            The namespace directory, from :meth:`namespace`.

        Returns
        -------
        n_packed : int
            Entries moved into the new pack; 0 when fewer than
            ``PACK_THRESHOLD`` loose entries (or none readable) were found.
        """
        loose = sorted(ns.glob("??/*.npy"))
        if len(loose) < self.PACK_THRESHOLD:
            return 0
        keys, rows = [], []
        for path in loose:
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue  # corrupt or vanished: get() reports and recomputes it later
            if arr.dtype == np.float32 and arr.ndim == 1 and (not rows or arr.shape == rows[0].shape):
                keys.append(path.stem)
                rows.append(arr)
        if not rows:
            return 0
        name = f"pack-{uuid.uuid4().hex[:12]}"
        with tempfile.NamedTemporaryFile(dir=ns, prefix=".tmp-", suffix=".npy", delete=False) as fh:
            np.save(fh, np.stack(rows), allow_pickle=False)
        os.replace(fh.name, ns / f"{name}.npy")
        self._atomic_write(ns / f"{name}.keys", "\n".join(keys).encode())  # the pack exists from here on
        for path in loose:
            if path.stem in keys:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self._packs.pop(ns, None)
        return len(keys)

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
    """None -> None; a path -> FeatureCache(path); a FeatureCache -> itself.

    Parameters
    ----------
    cache : None, False, str, os.PathLike or FeatureCache
        What a ``cache`` parameter was given; False means no cache, like None.

    Returns
    -------
    cache : FeatureCache or None

    Raises
    ------
    InvalidParameterError
        Anything else.
    """
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
