"""The extraction engine: decode each image once, run several extractors, use the cache.

Work proceeds in chunks. While the calling thread runs the batch stage of
chunk *i* (e.g. the CNN), worker threads read, hash, decode and prepare
chunk *i + 1*, so decoding overlaps inference and memory stays bounded by
two chunks whatever the dataset size.

The extractor protocol ("plans"). :func:`extract_features` takes any objects with:

- ``name`` (str) and ``n_features_out`` (int): the cache folder's prefix and the output width;
- ``config() -> dict``: every setting that decides the output (with a ``version`` bumped when the
  code's output changes); its ``joblib.hash`` names the cache namespace, so a changed parameter never
  returns stale features;
- ``prepare(image) -> object``: the per-image stage, run in the worker threads on a decoded
  ``(H, W, 3)`` uint8 RGB image (a HOG vector, CNN crops, ...);
- ``finalize(list) -> ndarray (n_images, n_features_out)``: the batch stage, run in the calling
  thread on one chunk's prepared items in order (the CNN's forward pass).

Optional: ``preferred_chunk_size`` (larger chunks for a GPU batch), and ``prepare_encoded(data, path,
max_pixels)`` + ``decode_prepared(list)`` for extractors that decode JPEG bytes themselves in the
batch stage (:class:`EmbeddingExtractor` with ``decoder='nvjpeg'``). :class:`HOGExtractor` is the
smallest complete example.
"""

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._hashing import array_sha256
from ..exceptions import ImageDecodeError
from ..preprocess import DEFAULT_MAX_PIXELS, AugmentedImage, augment, check_image_array, decode_image, read_bytes
from ._cache import resolve_cache

__all__ = ["ExtractionResult", "extract_features", "effective_n_jobs"]


@dataclass
class ExtractionResult:
    """What :func:`extract_features` returns.

    Attributes
    ----------
    features : list of ndarray of shape (n_images, n_features_k), dtype float32
        One matrix per extractor; rows of failed images are NaN.
    ok : ndarray of shape (n_images,), dtype bool
        Which images were decoded (or served from the cache).
    errors : list of ImageDecodeError
        One per failed image, with ``.path``, ``.reason`` and ``.detail``.
    hits, misses : int
        Cache hits and misses, counted per (image, extractor).
    seconds : float
    """

    features: list
    ok: np.ndarray
    errors: list = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    seconds: float = 0.0

    @property
    def n_images(self):
        return int(self.ok.size)

    @property
    def images_per_second(self):
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def effective_n_jobs(n_jobs):
    """Worker threads for an ``n_jobs`` parameter: None -> number of CPUs; negative counts back from it.

    Parameters
    ----------
    n_jobs : int or None
        As in joblib: -1 is all CPUs, -2 all but one.

    Returns
    -------
    n : int
        At least 1.
    """
    cpus = os.cpu_count() or 1
    if n_jobs is None:
        return cpus
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return max(1, n_jobs)


def _describe(item):
    if isinstance(item, AugmentedImage):
        return _describe(item.source)
    if isinstance(item, np.ndarray):
        return None
    return os.fspath(item)


def _remembered_sha(path, known):
    """The remembered SHA-256 of ``path`` if its (size, mtime, inode) still match, else None."""
    memo = known.get(os.path.abspath(path)) if known else None
    if memo is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return memo[3] if memo[:3] == (st.st_size, st.st_mtime_ns, st.st_ino) else None


def _load(item, max_pixels, known=None, learned=None):
    """Return (content key, thunk that decodes, thunk that reads the bytes) for one item.

    Errors come as ImageDecodeError. ``known`` maps paths to (size, mtime_ns,
    inode, sha256) remembered by the cache: when the file's stat still matches,
    its bytes are not read until (unless) they are needed. Newly hashed files
    are appended to ``learned``. The third element is None for anything but a
    plain image file (arrays and augmented copies have no bytes to hand over).
    """
    if isinstance(item, AugmentedImage):
        key, decode, _ = _load(item.source, max_pixels, known, learned)
        suffix = hashlib.sha256(repr((item.seed, item.augmentation.as_dict())).encode()).hexdigest()[:16]
        return f"{key}-aug{suffix}", lambda: augment(decode(), random_state=item.seed,
                                                     augmentation=item.augmentation), None
    if isinstance(item, np.ndarray):
        arr = check_image_array(item)
        return array_sha256(arr), lambda: arr, None
    if not isinstance(item, (str, os.PathLike)):
        raise ImageDecodeError(None, "bad_array", f"expected a path or a uint8 array; got {type(item).__name__}")
    path = os.fspath(item)
    sha = _remembered_sha(path, known)
    if sha is not None:
        return sha, lambda: decode_image(read_bytes(path), path=path, max_pixels=max_pixels), \
            lambda: read_bytes(path)
    data = read_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    if learned is not None:
        try:
            st = os.stat(path)
            learned.append((os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, sha))
        except OSError:
            pass
    return sha, lambda: decode_image(data, path=path, max_pixels=max_pixels), lambda: data


def _encoded(read, item, extractors, max_pixels):
    """What every extractor in ``extractors`` takes undecoded (a GPU decoder's input), or None.

    Only when all of them can decode a file in their batch stage is the CPU decode skipped.
    """
    if read is None or not all(hasattr(ex, "prepare_encoded") for ex in extractors):
        return None
    data, path = read(), os.fspath(item)
    encoded = [ex.prepare_encoded(data, path, max_pixels) for ex in extractors]
    return None if any(e is None for e in encoded) else encoded


def _work(item, plans, max_pixels, known=None, learned=None):
    """Worker-thread stage for one item: hash, look up the cache, decode and prepare misses."""
    key, decode, read = _load(item, max_pixels, known, learned)
    cached, prepared = {}, {}
    for k, (extractor, cache, ns, dim) in enumerate(plans):
        vec = cache.get(ns, key, dim) if cache is not None else None
        if vec is not None:
            cached[k] = vec
    missing = [k for k in range(len(plans)) if k not in cached]
    if missing:
        encoded = _encoded(read, item, [plans[k][0] for k in missing], max_pixels)
        if encoded is not None:
            return key, cached, dict(zip(missing, encoded))
        image = decode()
        for k in missing:
            prepared[k] = plans[k][0].prepare(image)
    return key, cached, prepared


def _packed_hit(item, plans, known):
    """Main-thread shortcut: (key, cached, {}) when every extractor's vector is in a pack."""
    if isinstance(item, AugmentedImage) or not isinstance(item, (str, os.PathLike)):
        return None
    sha = _remembered_sha(os.fspath(item), known)
    if sha is None:
        return None
    cached = {}
    for k, (_, cache, ns, dim) in enumerate(plans):
        vec = cache.get_packed(ns, sha, dim)
        if vec is None:
            return None
        cached[k] = vec
    return sha, cached, {}


def _safe_work(item, plans, max_pixels, known=None, learned=None):
    try:
        return _work(item, plans, max_pixels, known, learned), None
    except ImageDecodeError as exc:
        if exc.path is None:
            exc = ImageDecodeError(_describe(item), exc.reason, exc.detail)
        return None, exc


def _place(chunk, done, outputs, result, n_plans):
    """Store cached vectors and errors of one chunk; return, per plan, the (row, key, prepared) left to compute."""
    to_finalize = [[] for _ in range(n_plans)]
    for i, (res, err) in zip(chunk, done):
        if err is not None:
            result.errors.append(err)
            continue
        key, cached, prepared = res
        result.ok[i] = True
        for k, vec in cached.items():
            outputs[k][i] = vec
            result.hits += 1
        for k, prep in prepared.items():
            to_finalize[k].append((i, key, prep))
    return to_finalize


def _decode_batches(plans, to_finalize, outputs, result, on_error):
    """Let each plan decode what it took undecoded (``decode_prepared``); drop the images that fail.

    A failed image fails for every plan, as a CPU decode failure would: its error
    is raised (``on_error='raise'``) or recorded and its rows set back to NaN.
    """
    failed = {}
    for k, rows in enumerate(to_finalize):
        decode = getattr(plans[k][0], "decode_prepared", None)
        if decode is None or not rows:
            continue
        decoded = decode([prep for _, _, prep in rows])
        for (i, _, _), value in zip(rows, decoded):
            if isinstance(value, ImageDecodeError):
                if on_error == "raise":
                    raise value
                failed.setdefault(i, value)
        to_finalize[k] = [(i, key, value) for (i, key, _), value in zip(rows, decoded) if i not in failed]
    for i, err in failed.items():
        result.errors.append(err)
        result.ok[i] = False
        for out in outputs:
            out[i] = np.nan
    if failed:
        to_finalize[:] = [[row for row in rows if row[0] not in failed] for rows in to_finalize]
    return to_finalize


def _finalize(plans, to_finalize, outputs):
    """Run each plan's batch stage (e.g. the CNN) on a chunk's misses; store the rows and cache entries.

    ``to_finalize[k]`` holds ``(row, content key, prepared)`` for plan ``k``. Returns the number of misses.
    """
    misses = 0
    for k, rows in enumerate(to_finalize):
        if not rows:
            continue
        ex, cache_k, ns, _ = plans[k]
        values = ex.finalize([prep for _, _, prep in rows])
        for (i, key, _), vec in zip(rows, values):
            outputs[k][i] = vec
            if cache_k is not None:
                cache_k.put(ns, key, vec)
        misses += len(rows)
    return misses


def _cancel(pending):
    """Cancel the decode-ahead work of the next chunk (futures not yet started)."""
    for f in pending:
        if not isinstance(f, tuple):
            f.cancel()


def extract_features(images, extractors, *, cache=None, n_jobs=None, chunk_size=None,
                     on_error="raise", progress=False, max_pixels=DEFAULT_MAX_PIXELS, desc="extract"):
    """Compute features of many images with several extractors, decoding each image once.

    Parameters
    ----------
    images : sequence of (str, os.PathLike, ndarray or AugmentedImage)
        Image files, ``(H, W, 3)`` uint8 arrays, or augmented copies.
    extractors : sequence of extractor plans
        Objects with ``name``, ``config()``, ``n_features_out``, ``prepare(image)``
        and ``finalize(list) -> ndarray``: the protocol in this module's docstring.
    cache : None, str, os.PathLike or FeatureCache, default=None
        Where to read and store features; None computes everything.
    n_jobs : int, default=None
        Threads for reading, decoding and per-image features (None: all CPUs).
    chunk_size : int, default=None
        Images per chunk; peak memory is about two chunks of decoded images.
        None: 64, or more when an extractor asks for larger batches
        (``preferred_chunk_size``, e.g. 256 for a CNN on a GPU).
    on_error : {'raise', 'skip'}, default='raise'
        What to do with an image that cannot be decoded: raise its
        :class:`ImageDecodeError`, or record it in ``errors``, leave its rows
        NaN and go on.
    progress : bool, default=False
        Show progress on stderr: a tqdm bar on a terminal, a line every 10 s otherwise.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Decompression-bomb cap, see :func:`catdog_sk.preprocess.decode_image`.

    Returns
    -------
    result : ExtractionResult
    """
    start = time.perf_counter()
    images = list(images)
    cache = resolve_cache(cache)
    plans = [(ex, cache, cache.namespace(ex.config()) if cache is not None else None, ex.n_features_out)
             for ex in extractors]
    if chunk_size is None:  # 64, or what the largest batch stage asks for (a CNN on a GPU: 256)
        chunk_size = max([64] + [getattr(ex, "preferred_chunk_size", None) or 0 for ex in extractors])
    n = len(images)
    outputs = [np.full((n, dim), np.nan, dtype=np.float32) for (_, _, _, dim) in plans]
    ok = np.zeros(n, dtype=bool)
    result = ExtractionResult(features=outputs, ok=ok)
    if n == 0:
        return result

    from .._progress import progress_bar

    bar = progress_bar(n, desc, "img", enabled=progress, leave=False)
    try:
        _run_chunks(images, plans, outputs, result, cache, chunk_size=chunk_size, n_jobs=n_jobs,
                    max_pixels=max_pixels, on_error=on_error, bar=bar)
    finally:
        bar.close()
    if cache is not None and result.misses:
        for _, _, ns, _ in plans:
            cache.pack(ns)
    result.seconds = time.perf_counter() - start
    return result


def _run_chunks(images, plans, outputs, result, cache, *, chunk_size, n_jobs, max_pixels, on_error, bar):
    """Decode chunk c + 1 in worker threads while chunk c's batch stage runs; fill ``outputs`` and ``result``."""
    known = cache.known_hashes() if cache is not None else None
    learned = [] if cache is not None else None  # list.append is atomic across threads
    n = len(images)
    chunks = [range(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    with ThreadPoolExecutor(max_workers=effective_n_jobs(n_jobs)) as pool:
        def submit(chunk):
            out = []
            for i in chunk:
                hit = _packed_hit(images[i], plans, known)
                out.append((hit, None) if hit is not None else
                           pool.submit(_safe_work, images[i], plans, max_pixels, known, learned))
            return out

        pending = submit(chunks[0])
        for c, chunk in enumerate(chunks):
            done = [f if isinstance(f, tuple) else f.result() for f in pending]
            if c + 1 < len(chunks):
                pending = submit(chunks[c + 1])  # decode ahead while the batch stage runs
            first_error = next((err for _, err in done if err is not None), None)
            try:
                if first_error is not None and on_error == "raise":
                    raise first_error
                to_finalize = _decode_batches(plans, _place(chunk, done, outputs, result, len(plans)),
                                              outputs, result, on_error)
            except ImageDecodeError:
                _cancel(pending)
                raise
            result.misses += _finalize(plans, to_finalize, outputs)
            if learned:  # hashes computed so far (workers may be appending more)
                done_n = len(learned)
                cache.remember_hashes(learned[:done_n])
                del learned[:done_n]
            bar.update(len(chunk))
