"""Scale-out on a Dask cluster: extraction split into partitions, grid searches through joblib's Dask backend.

When one machine is not enough, ``extract`` and ``fit`` take ``--backend dask``
(and ``--scheduler tcp://host:8786`` for a running cluster; without it, a
``LocalCluster`` on this machine). Every worker writes into the same feature
cache, so the cache must be on storage all workers see (a network file
system); entries are written atomically, so workers never corrupt each other's
results. ``dask`` and ``distributed`` are imported only here, only when used.
"""

import contextlib
import time

import numpy as np

from .exceptions import CatDogError

__all__ = ["connect", "extract_features_on_cluster", "extract_features_with", "predict_paths_on_cluster",
           "predict_paths_with", "joblib_on_cluster"]


def _check_listening(scheduler):
    """Fail at once when nothing listens at a ``tcp://host:port`` address.

    The Dask client retries a refused connection until its timeout (10 s);
    a closed port deserves the one-line error without the wait. Other
    address kinds go straight to the client.
    """
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(scheduler)
    if parsed.scheme != "tcp" or not parsed.hostname or not parsed.port:
        return
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=5):
            return
    except OSError as exc:
        raise CatDogError(f"Cannot reach the Dask scheduler at {scheduler!r} "
                          f"({exc.strerror or type(exc).__name__}).") from None


@contextlib.contextmanager
def connect(scheduler=None, *, n_workers=None):
    """A ``distributed.Client``: on the cluster at ``scheduler``, or on a new LocalCluster.

    Parameters
    ----------
    scheduler : str, default=None
        Address of a running scheduler (``tcp://host:8786``). None starts a
        LocalCluster of single-threaded worker processes, closed on exit.
    n_workers : int, default=None
        LocalCluster size (None: one per CPU).

    Yields
    ------
    client : distributed.Client

    Raises
    ------
    CatDogError
        If dask.distributed is not installed or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CatDogError("--backend dask needs dask.distributed: pip install 'catdog_sk[dask]'") from None
    if scheduler:
        _check_listening(scheduler)
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise CatDogError(f"Cannot reach the Dask scheduler at {scheduler!r} ({exc}).") from None
        with client:
            yield client
        return
    import os

    n = n_workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _extract_partition(images, extractors, cache, on_error, max_pixels):
    from .features import extract_features

    res = extract_features(images, extractors, cache=cache, n_jobs=1, on_error=on_error, max_pixels=max_pixels)
    return res.features, res.ok, res.errors, res.hits, res.misses


def extract_features_on_cluster(client, images, extractors, *, cache=None, on_error="raise", partition_size=128,
                                progress=False, desc="extract", max_pixels=None):
    """:func:`catdog_sk.features.extract_features`, one partition of images per Dask task.

    Parameters
    ----------
    client : distributed.Client
    images : sequence of str or os.PathLike
        Paths every worker can read (in-memory arrays work too, but travel over the network).
    extractors, cache, on_error, progress, desc, max_pixels
        As in :func:`catdog_sk.features.extract_features`; ``cache`` must be a
        path all workers share.
    partition_size : int, default=128
        Images per task.

    Returns
    -------
    result : catdog_sk.features.ExtractionResult
        In the order of ``images``, identical to a single-process run.
    """
    from ._progress import progress_bar

    from .features import ExtractionResult
    from .preprocess import DEFAULT_MAX_PIXELS

    start = time.perf_counter()
    images = list(images)
    cache = None if cache is None or cache is False else str(getattr(cache, "location", cache))
    parts = [images[i:i + partition_size] for i in range(0, len(images), partition_size)]
    futures = [client.submit(_extract_partition, part, extractors, cache, "skip", max_pixels or DEFAULT_MAX_PIXELS,
                             pure=False) for part in parts]
    from distributed import as_completed

    bar = progress_bar(len(images), desc, "img", enabled=progress, leave=False)
    index = {f.key: k for k, f in enumerate(futures)}
    done = [None] * len(futures)
    for future in as_completed(futures):
        k = index[future.key]
        done[k] = future.result()
        bar.update(len(parts[k]))
    bar.close()
    if not done:
        return ExtractionResult(features=[np.zeros((0, ex.n_features_out), np.float32) for ex in extractors],
                                ok=np.zeros(0, bool))
    features = [np.concatenate([d[0][j] for d in done]) for j in range(len(extractors))]
    result = ExtractionResult(features=features, ok=np.concatenate([d[1] for d in done]),
                              errors=[e for d in done for e in d[2]], hits=sum(d[3] for d in done),
                              misses=sum(d[4] for d in done))
    if on_error == "raise" and result.errors:
        raise result.errors[0]
    result.seconds = time.perf_counter() - start
    return result


def extract_features_with(client, images, extractors, *, n_jobs=None, **kwargs):
    """:func:`catdog_sk.features.extract_features` here (``client`` None, ``n_jobs`` threads) or on the cluster.

    One call for both backends, so ``extract`` and ``fit`` need not branch on ``--backend``.

    Parameters
    ----------
    client : distributed.Client or None
        The cluster to run on (see :func:`connect`); None extracts in this
        process with :func:`catdog_sk.features.extract_features`.
    images : sequence of str, os.PathLike, ndarray or AugmentedImage
        The images, as :func:`catdog_sk.features.extract_features` takes them
        (on a cluster, paths every worker can read).
    extractors : sequence of extractor plans
        As in :func:`catdog_sk.features.extract_features`.
    n_jobs : int, default=None
        Threads for a local run (None: all CPUs); ignored on a cluster,
        where each task runs single-threaded.
    **kwargs
        Passed on unchanged: ``cache``, ``on_error``, ``progress``, ``desc``,
        ``max_pixels`` (and, on a cluster, ``partition_size``; locally,
        ``chunk_size``), see :func:`extract_features_on_cluster`.

    Returns
    -------
    result : catdog_sk.features.ExtractionResult
        Features, ``ok`` mask, errors and cache hits, in the order of ``images``.
    """
    if client is None:
        from .features import extract_features

        return extract_features(images, extractors, n_jobs=n_jobs, **kwargs)
    return extract_features_on_cluster(client, images, extractors, **kwargs)


def _predict_partition(clf, paths, cache):
    from .models.inference import predict_paths

    return list(predict_paths(clf, paths, cache=cache, n_jobs=1))


def predict_paths_on_cluster(client, clf, paths, *, cache=None, partition_size=128, progress=False):
    """:func:`catdog_sk.models.predict_paths`, one partition of paths per Dask task, yielded in input order.

    The classifier is sent to every worker once. Partitions run wherever workers are free; each
    partition's results are yielded as soon as it and every partition before it are done, so output
    starts before the whole batch is classified and keeps the input order. An unreadable file gets
    its error result in its place, as in a local run.

    Parameters
    ----------
    client : distributed.Client
        The cluster (see :func:`connect`).
    clf : CatDogClassifier
        Fitted.
    paths : sequence of str
        Image files every worker can read.
    cache : str or os.PathLike, default=None
        A feature cache on storage all workers share; None computes the features.
    partition_size : int, default=128
        Paths per task.
    progress : bool, default=False
        A progress bar on stderr.

    Yields
    ------
    result : dict
        As :func:`catdog_sk.models.predict_paths` yields them.
    """
    from distributed import as_completed
    from ._progress import progress_bar

    paths = [str(p) for p in paths]
    cache = None if cache is None or cache is False else str(getattr(cache, "location", cache))
    parts = [paths[i:i + partition_size] for i in range(0, len(paths), partition_size)]
    if not parts:
        return
    [model] = client.scatter([clf], broadcast=True)
    futures = [client.submit(_predict_partition, model, part, cache, pure=False) for part in parts]
    index = {f.key: k for k, f in enumerate(futures)}
    done, next_k = {}, 0
    bar = progress_bar(len(paths), "predict", "img", enabled=progress, leave=False)
    try:
        for future in as_completed(futures):
            k = index[future.key]
            done[k] = future.result()
            bar.update(len(parts[k]))
            while next_k in done:
                yield from done.pop(next_k)
                next_k += 1
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])


def predict_paths_with(client, clf, paths, *, n_jobs=None, **kwargs):
    """:func:`catdog_sk.models.predict_paths` here (``client`` None) or on the cluster: one call for both.

    Parameters
    ----------
    client : distributed.Client or None
        None predicts in this process with ``n_jobs`` threads.
    clf : CatDogClassifier
        Fitted.
    paths : sequence of str
        Image files.
    n_jobs : int, default=None
        Threads of a local run; ignored on a cluster.
    **kwargs
        ``cache``, ``progress`` (and on a cluster ``partition_size``).

    Yields
    ------
    result : dict
        One per path, in order.
    """
    if client is None:
        from .models.inference import predict_paths

        yield from predict_paths(clf, paths, n_jobs=n_jobs, **kwargs)
    else:
        yield from predict_paths_on_cluster(client, clf, paths, **kwargs)


@contextlib.contextmanager
def joblib_on_cluster(client):
    """Route joblib (and so GridSearchCV's ``n_jobs``) to ``client``'s workers.

    A context manager: inside the ``with`` block, every ``joblib.Parallel``
    (a grid search's cross-validation fits included) runs on the Dask
    cluster instead of local processes.

    Parameters
    ----------
    client : distributed.Client
        The cluster whose workers run the jobs (see :func:`connect`).

    Yields
    ------
    None
        Control returns to the ``with`` block while the Dask backend is active;
        the previous joblib backend is restored on exit.
    """
    import joblib

    with joblib.parallel_config(backend="dask", client=client):
        yield
