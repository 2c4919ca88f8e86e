"""What the tests and the benchmarks share (like ``sklearn.utils._testing``); not public API."""

import numpy as np

__all__ = ["PEAK_RSS_CODE", "DOWNSCALE_SIDES", "downscaled", "answer_rates", "domain_sets"]

#: Python source that defines ``peak_rss_kb()`` in a child process: the child's own peak resident memory.
#: Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's high-water mark across fork and
#: exec into it, so a child of a 4.7 GB pytest process "peaked" at 4.7 GB whatever it did. ``VmHWM`` in
#: /proc/self/status is the high-water mark of the child's own memory map, which exec starts afresh.
PEAK_RSS_CODE = """
def peak_rss_kb():
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: the best the OS offers
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

#: Short sides (px) of the downscaled copies of the shared test photos (issue 29's table).
DOWNSCALE_SIDES = (32, 48, 64, 96, 128)


def downscaled(path, side):
    """The photo decoded upright, its short side brought down to ``side`` px (bicubic, antialiased).

    Aspect kept; a photo whose short side is already ``side`` or less is returned as it is (never
    upscaled). An array, not a file: no second JPEG compression.

    Parameters
    ----------
    path : str or os.PathLike
    side : int

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8
    """
    from PIL import Image

    from .preprocess import read_image

    image = read_image(path)
    h, w = image.shape[:2]
    if min(h, w) <= side:
        return image
    scale = side / min(h, w)
    size = (side, max(1, round(w * scale))) if h <= w else (max(1, round(h * scale)), side)
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC))


def answer_rates(labels, truth=None):
    """Shares of right, wrong-class and ``'unknown'`` answers (photos of neither: ``truth`` None).

    Parameters
    ----------
    labels : sequence of str
        The model's answers (``'cat'``, ``'dog'``, ``'unknown'``).
    truth : sequence of str, default=None
        The true classes; None for photos of neither cats nor dogs (right = ``'unknown'``).

    Returns
    -------
    rates : dict
        ``n``, ``right``, ``wrong``, ``unknown`` (shares of all photos) and ``answered_right`` (right
        among the photos answered cat or dog; None when none was).
    """
    labels = np.asarray(labels, dtype=object)
    unknown = labels == "unknown"
    if truth is None:
        right, wrong = unknown, ~unknown
    else:
        right = labels == np.asarray(truth, dtype=object)
        wrong = ~right & ~unknown
    n, answered = len(labels), int(np.sum(~unknown))
    return {"n": n, "right": float(np.mean(right)), "wrong": float(np.mean(wrong)),
            "unknown": float(np.mean(unknown)),
            "answered_right": float(np.sum(right & ~unknown) / answered) if answered and truth is not None
            else None}


def _sample(paths, labels, n, seed):
    """``n // 2`` photos of each class, seeded (all of them when ``n`` is None or not smaller)."""
    if n is None or n >= len(paths):
        return list(paths), np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=object)
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), n // 2, replace=False)
                                  for c in ("cat", "dog")]))
    return [paths[i] for i in idx], labels[idx]


def domain_sets(root, *, fitted_negatives=(), sides=DOWNSCALE_SIDES, n_small=300, seed=0, sets=None):
    """Issue 29's photo sets: ``(name, items, truth)`` one set at a time (downscaled copies made lazily).

    - ``test``: the shared ``catsdogs/test/`` photos (Asirra);
    - ``breeds``: ``breeds/`` (stock cat breeds, dog-breed set);
    - ``a10-pets-held``, ``a10-pets``: animals10's ``cat/`` and ``dog/`` photos (never fitted on), the half
      that the negatives' seeded split by content hash (``Negatives.split(0.5, random_state=0)``) holds
      out, and all of them;
    - ``a10-others-held``: animals10's other animals that the model was not fitted on (not in
      ``fitted_negatives``; without it, the held-out half of that split); truth None;
    - ``test-<side>px``: ``n_small`` shared test photos (half cats, half dogs, seeded; None: all) downscaled
      by :func:`downscaled`.

    Parameters
    ----------
    root : str or os.PathLike
        The shared data folder (``catsdogs/``, ``breeds/``, ``animals10/``).
    fitted_negatives : sequence of str, default=()
        Content hashes of the negatives the model was fitted on (``clf.negatives_sha256_``).
    sides : sequence of int, default=DOWNSCALE_SIDES
    n_small : int or None, default=300
    seed : int, default=0
    sets : collection of str, default=None
        Only these names (``'test-<side>px'`` for a downscaled one); None: all.

    Yields
    ------
    name : str
    items : list of str or ndarray
    truth : ndarray of str or None
    """
    from pathlib import Path

    from .data import Negatives, content_hashes, find_images, find_negatives, load_dataset

    root = Path(root)

    def wanted(name):
        return sets is None or name in sets

    test = load_dataset(root / "catsdogs")["test"]
    if wanted("test"):
        yield "test", list(test.paths), test.labels
    if wanted("breeds"):
        breeds = find_images(root / "breeds")
        yield "breeds", list(breeds.paths), breeds.labels
    a10 = root / "animals10"
    if wanted("a10-pets-held") or wanted("a10-pets"):
        pets = find_images(a10)
        groups = [str(c) for c in pets.labels]
        _, held = Negatives(list(pets.paths), groups, content_hashes(pets.paths), str(a10)).split(
            0.5, random_state=0)
        if wanted("a10-pets-held"):
            yield "a10-pets-held", held.paths, np.asarray(held.groups, dtype=object)
        if wanted("a10-pets"):
            yield "a10-pets", list(pets.paths), pets.labels
    if wanted("a10-others-held"):
        negatives = find_negatives(a10)
        if fitted_negatives:
            used = set(fitted_negatives)
            held = [p for p, h in zip(negatives.paths, negatives.sha256) if h not in used]
        else:
            held = negatives.split(0.5, random_state=0)[1].paths
        yield "a10-others-held", held, None
    small_paths, small_truth = _sample(test.paths, test.labels, n_small, seed)
    for side in sides:
        if wanted(f"test-{side}px"):
            yield f"test-{side}px", [downscaled(p, side) for p in small_paths], small_truth
