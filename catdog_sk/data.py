"""Find labelled cat/dog images, split them reproducibly, and fetch the default dataset.

Supported layouts (the label comes from the layout):

- class folders: ``cat/``, ``cats/``, ``Cat/``, ``dog/``, ``dogs/``, ``Dog/`` (any case),
  possibly under a ``PetImages/`` folder (the Microsoft download);
- Kaggle flat names: ``cat.123.jpg``, ``dog.45.jpg``;
- a CSV manifest with ``path,label`` columns (paths relative to the CSV's folder);
- a split root holding ``train/`` (and ``test/``, ``val/``) folders of any of the above.
"""

import csv
import os
import re
import stat
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._hashing import file_sha256
from .exceptions import DatasetError

__all__ = [
    "CLASSES",
    "Negatives",
    "find_negatives",
    "IMAGE_EXTENSIONS",
    "LabeledImages",
    "find_images",
    "find_splits",
    "walk_images",
    "expand_inputs",
    "special_file_reason",
    "special_files",
    "TrainingData",
    "load_training_data",
    "load_dataset",
    "normalize_label",
    "content_hashes",
    "dataset_sha256",
    "split_dataset",
    "default_data_dir",
    "download_petimages",
    "PETIMAGES_URL",
]

CLASSES = ("cat", "dog")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
_CLASS_DIRS = {"cat": "cat", "cats": "cat", "dog": "dog", "dogs": "dog"}
_KAGGLE_NAME = re.compile(r"^(cat|dog)[._-]\d+", re.IGNORECASE)
_LABEL_ALIASES = {"cat": "cat", "cats": "cat", "0": "cat", "dog": "dog", "dogs": "dog", "1": "dog"}

#: Microsoft's public PetImages archive (12,500 cats + 12,500 dogs, about 787 MiB).
PETIMAGES_URL = ("https://download.microsoft.com/download/3/E/1/"
                 "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip")
#: Files of the PetImages archive known not to decode; reported and skipped.
PETIMAGES_KNOWN_BAD = ("PetImages/Cat/666.jpg", "PetImages/Dog/11702.jpg")


@dataclass
class LabeledImages:
    """Image paths with their labels, as found on disk.

    Attributes
    ----------
    paths : list of str
    labels : ndarray of shape (n_images,), dtype object
        ``'cat'`` or ``'dog'``.
    layout : str
        Which layout was recognised: ``'class-folders'``, ``'petimages'``,
        ``'kaggle-names'`` or ``'csv'``.
    root : str
    ignored : list of (str, str)
        Files passed over, each with the reason (not an image extension,
        unknown label, missing file).
    """

    paths: list
    labels: np.ndarray
    layout: str
    root: str
    ignored: list = field(default_factory=list)

    def __len__(self):
        return len(self.paths)

    def counts(self):
        """Number of images per class, as a dict.

        Returns
        -------
        counts : dict of str to int
            ``{'cat': n, 'dog': n}``.
        """
        return {c: int(np.sum(self.labels == c)) for c in CLASSES}

    def subset(self, indices):
        """The images at ``indices``, with their labels.

        Parameters
        ----------
        indices : array-like of int
            Positions to keep, in the order given.

        Returns
        -------
        images : LabeledImages
            With the same layout, root and ignored files.
        """
        idx = np.asarray(indices, dtype=int)
        return LabeledImages([self.paths[i] for i in idx], self.labels[idx], self.layout, self.root,
                             list(self.ignored))


def normalize_label(value):
    """'Cat', 'cats', 0 -> 'cat'; 'Dog', 'dogs', 1 -> 'dog'; anything else -> None.

    Parameters
    ----------
    value : object
        A label as found in a CSV or given by a user.

    Returns
    -------
    label : {'cat', 'dog'} or None
    """
    return _LABEL_ALIASES.get(str(value).strip().lower())


def _is_image_name(name):
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _class_dirs(root):
    found = {}
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        label = _CLASS_DIRS.get(entry.name.lower())
        if label and entry.is_dir():
            found.setdefault(label, []).append(entry.path)
    return found


#: Why a file whose name is not an image name was left out.
NOT_AN_IMAGE_NAME = "not an image file extension"
_SPECIAL_FILE = ", not a regular file: not opened"


def special_file_reason(path):
    """Why ``path`` must not be opened as an image, or None for a regular file (or a missing one).

    FIFOs, sockets and devices would block or never end when opened for reading, so every
    folder walk and every path given by a user is checked with ``stat`` first (symbolic links
    followed); a missing or broken path is left to the decoder, which reports it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    reason : str or None
        For example ``'a FIFO (named pipe), not a regular file: not opened'``.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return f"{kind}{_SPECIAL_FILE}"
    return None


def special_files(ignored):
    """The ``(path, reason)`` pairs of ``ignored`` that are special files (see :func:`special_file_reason`).

    Parameters
    ----------
    ignored : list of (str, str)
        As :func:`walk_images` and :attr:`LabeledImages.ignored` give them.

    Returns
    -------
    special : list of (str, str)
    """
    return [(path, why) for path, why in ignored if why.endswith(_SPECIAL_FILE)]


def walk_images(folder, *, skip_dirs=(), keep_special=False):
    """The one folder walk: image files under ``folder``, recursively, in sorted order.

    Every command that reads a folder (``fit``, ``evaluate``, ``predict``, ``--negatives``,
    ``extract``) walks it here, so all of them skip the same files for the same reasons.

    Parameters
    ----------
    folder : str or os.PathLike
    skip_dirs : collection of str, default=()
        Sub-folder names (compared in lower case) not to enter, e.g. the class folders when
        walking photos of neither.
    keep_special : bool, default=False
        Keep special files with image names in ``paths``, in walk order, for a caller that answers
        each one itself without opening it (``predict`` prints an error line per file); they are
        listed in ``ignored`` too.

    Returns
    -------
    paths : list of str
        Regular files (or links to them) with an image extension (:data:`IMAGE_EXTENSIONS`).
    ignored : list of (str, str)
        ``(path, reason)`` of every other file: special files (see :func:`special_file_reason`)
        and names without an image extension (reason :data:`NOT_AN_IMAGE_NAME`).
    """
    skip = {d.lower() for d in skip_dirs}
    paths, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in skip)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            reason = special_file_reason(path)
            if reason is None and not _is_image_name(name):
                reason = NOT_AN_IMAGE_NAME
            if reason is None or (keep_special and reason != NOT_AN_IMAGE_NAME):
                paths.append(path)
            if reason is not None:
                ignored.append((path, reason))
    return paths, ignored


def expand_inputs(inputs):
    """Files as given and folders replaced by their image files (:func:`walk_images`), for ``predict``.

    Special files (FIFOs, sockets, devices) given or found stay in the list, in order, so that the
    caller answers each one (see :func:`special_file_reason`); nothing is opened here.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike

    Returns
    -------
    paths : list of str
        In input order; a folder's files in walk order (sorted, recursive).
    ignored : list of (str, str)
        ``(path, reason)`` of the files inside folders left out for their name (no image extension).
    """
    paths, ignored = [], []
    for item in map(os.fspath, inputs):
        if os.path.isdir(item):
            found, skipped = walk_images(item, keep_special=True)
            paths += found
            ignored += [(p, why) for p, why in skipped if why == NOT_AN_IMAGE_NAME]
        else:
            paths.append(item)
    return paths, ignored


def _from_class_dirs(root, dirs, layout):
    paths, labels, ignored = [], [], []
    for label in CLASSES:
        for folder in dirs.get(label, []):
            found, skipped = walk_images(folder)
            paths += found
            labels += [label] * len(found)
            ignored += skipped
    return LabeledImages(paths, np.array(labels, dtype=object), layout, str(root), ignored)


def _from_csv(csv_path):
    base = os.path.dirname(os.path.abspath(csv_path))
    paths, labels, ignored = [], [], []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = {c.lower().strip(): c for c in (reader.fieldnames or [])}
        if "path" not in cols or "label" not in cols:
            raise DatasetError(
                f"{csv_path}: a manifest needs a header with 'path' and 'label' columns; "
                f"found {reader.fieldnames}."
            )
        for row in reader:
            raw = row[cols["path"]].strip()
            path = raw if os.path.isabs(raw) else os.path.join(base, raw)
            label = normalize_label(row[cols["label"]])
            if label is None:
                ignored.append((path, f"unknown label {row[cols['label']]!r}"))
            elif not os.path.lexists(path):
                ignored.append((path, "listed in the manifest but missing"))
            elif (reason := special_file_reason(path)) is not None:
                ignored.append((path, reason))
            else:
                paths.append(path)
                labels.append(label)
    return LabeledImages(paths, np.array(labels, dtype=object), "csv", str(csv_path), ignored)


def find_images(source):
    """Find labelled images under ``source``, whatever the supported layout.

    Parameters
    ----------
    source : str or os.PathLike
        A folder (class folders, PetImages, or Kaggle-named files) or a CSV manifest.

    Returns
    -------
    images : LabeledImages

    Raises
    ------
    DatasetError
        If ``source`` does not exist or holds no labelled image.
    """
    source = os.fspath(source)
    if not os.path.exists(source):
        raise DatasetError(f"Data path {source!r} does not exist.")
    if (reason := special_file_reason(source)) is not None:
        raise DatasetError(f"Data path {source!r} is {reason}; give a folder or a CSV manifest.")
    if os.path.isfile(source):
        if source.lower().endswith(".csv"):
            found = _from_csv(source)
        else:
            raise DatasetError(f"Data path {source!r} is a file but not a CSV manifest (path,label).")
    else:
        dirs = _class_dirs(source)
        pet = os.path.join(source, "PetImages")
        if dirs:
            found = _from_class_dirs(source, dirs, "class-folders")
        elif os.path.isdir(pet) and _class_dirs(pet):
            found = _from_class_dirs(source, _class_dirs(pet), "petimages")
        else:
            manifests = sorted(p for p in os.listdir(source) if p.lower().endswith(".csv"))
            paths, labels = [], []
            found, skipped = walk_images(source)
            ignored = [(p, why) for p, why in skipped if why != NOT_AN_IMAGE_NAME]
            for path in found:
                match = _KAGGLE_NAME.match(os.path.basename(path))
                if match:
                    paths.append(path)
                    labels.append(match.group(1).lower())
                else:
                    ignored.append((path, "name does not start with cat. or dog."))
            if not paths and len(manifests) == 1:
                found = _from_csv(os.path.join(source, manifests[0]))
            else:
                found = LabeledImages(paths, np.array(labels, dtype=object), "kaggle-names", source, ignored)
    if len(found) == 0:
        raise DatasetError(
            f"No labelled images found in {source!r}. Expected cat/ and dog/ folders, "
            f"PetImages/Cat and PetImages/Dog, files named cat.N.jpg / dog.N.jpg, or a path,label CSV."
        )
    return found


def find_splits(root):
    """Return ``{'train': dir, 'test': dir, ...}`` for a root holding split folders, else ``{}``.

    Parameters
    ----------
    root : str or os.PathLike

    Returns
    -------
    splits : dict of str to str
    """
    root = os.fspath(root)
    out = {}
    for name in ("train", "val", "test"):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            out[name] = path
    return out if "train" in out else {}


def load_dataset(source):
    """Labelled images under ``source``, per split when it holds train/val/test folders.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of class folders (``cats/``, ``dogs/``), or a split root holding ``train/`` and ``test/``
        (and optionally ``val/``) of them.

    Returns
    -------
    splits : dict of str to LabeledImages
        ``{'train': ..., 'test': ...}`` for a split root, else ``{'all': ...}``.
    """
    splits = find_splits(source)
    if splits:
        return {name: find_images(path) for name, path in splits.items()}
    return {"all": find_images(source)}


def content_hashes(paths):
    """SHA-256 of each file's bytes (unreadable files hash to their path, marked).

    Parameters
    ----------
    paths : sequence of str or os.PathLike

    Returns
    -------
    hashes : list of str
        Hex digests, in the order of ``paths``.
    """
    out = []
    for path in paths:
        try:
            out.append(file_sha256(path))
        except OSError:
            out.append("unreadable:" + os.fspath(path))
    return out


def dataset_sha256(paths, labels):
    """One SHA-256 for a labelled set: independent of file names and order, changed by any byte or label.

    Parameters
    ----------
    paths : sequence of str
    labels : array-like
        One label per path.

    Returns
    -------
    sha256 : str
    """
    import hashlib

    lines = sorted(f"{h} {y}" for h, y in zip(content_hashes(paths), labels))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass
class Negatives:
    """Photos that show neither a cat nor a dog, grouped by what they show.

    Attributes
    ----------
    paths : list of str
    groups : list of str
        The sub-folder of each photo relative to the root (``'cow'``,
        ``'sheep'``, ...; ``'.'`` for photos directly in the root).
    sha256 : list of str
        Content hash of each file.
    root : str
    ignored : list of (str, str)
        Files passed over, each with the reason (special files, see :func:`walk_images`).
    """

    paths: list
    groups: list
    sha256: list
    root: str
    ignored: list = field(default_factory=list)

    def __len__(self):
        return len(self.paths)

    def subset(self, mask):
        """The photos where ``mask`` is True, with their groups and hashes.

        Parameters
        ----------
        mask : array-like of bool
            Which photos to keep.

        Returns
        -------
        negatives : Negatives
        """
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        return Negatives([self.paths[i] for i in idx], [self.groups[i] for i in idx],
                         [self.sha256[i] for i in idx], self.root, list(self.ignored))

    def split(self, fraction, *, random_state=0):
        """Seeded split by content hash, within each group: ``(used, held_out)``.

        A photo's side depends only on its bytes, the seed and its group's
        size, so the same folder always splits the same way, on any machine,
        whatever the file names; byte-identical copies stay on one side.

        Parameters
        ----------
        fraction : float
            Share of each group used for fitting, in [0, 1].
        random_state : int, default=0

        Returns
        -------
        used, held_out : Negatives
        """
        import hashlib

        if not 0 <= fraction <= 1:
            raise DatasetError(f"The negatives fraction must be between 0 and 1; got {fraction}.")
        keys = [hashlib.sha256(f"{random_state}:{h}".encode()).hexdigest() for h in self.sha256]
        used = np.zeros(len(self), dtype=bool)
        for group in sorted(set(self.groups)):
            order = sorted((i for i, g in enumerate(self.groups) if g == group), key=keys.__getitem__)
            used[order[:int(round(fraction * len(order)))]] = True
        first_side = {}  # byte-identical copies follow the first one
        for i in np.argsort(keys):
            used[i] = first_side.setdefault(self.sha256[i], used[i])
        return self.subset(used), self.subset(~used)

    def join(self, other):
        """These photos followed by ``other``'s, as one set (photos of neither from several sources).

        Parameters
        ----------
        other : Negatives

        Returns
        -------
        negatives : Negatives
            Its ``root`` names both sources (``'<root> + <other root>'``).
        """
        return Negatives(self.paths + other.paths, self.groups + other.groups, self.sha256 + other.sha256,
                         f"{self.root} + {other.root}", self.ignored + other.ignored)

    def counts(self):
        """Number of photos per group, as a dict.

        Returns
        -------
        counts : dict of str to int
        """
        return {g: self.groups.count(g) for g in sorted(set(self.groups))}


def find_negatives(source):
    """Photos of neither cats nor dogs under ``source``: every image file, recursively, minus class folders.

    Sub-folders named like a class (``cat/``, ``dogs/`` ...) are skipped, so a
    folder of many animals such as animals10 can be passed as it is.

    Parameters
    ----------
    source : str or os.PathLike
        A folder; special files (FIFOs, sockets, devices) are listed in ``ignored``, never opened.

    Returns
    -------
    negatives : Negatives

    Raises
    ------
    DatasetError
        If ``source`` is not a folder or holds no image files.
    """
    root = Path(source)
    if not root.is_dir():
        raise DatasetError(f"Negatives {os.fspath(source)!r} is not a folder.")
    paths, ignored = walk_images(root, skip_dirs=_CLASS_DIRS)
    groups = [os.path.relpath(os.path.dirname(p), root) for p in paths]
    if not paths:
        raise DatasetError(f"No image files under {os.fspath(source)!r} (class folders cat/ and dog/ are skipped).")
    return Negatives(paths, groups, content_hashes(paths), str(root), special_files(ignored))


def split_dataset(labels, *, hashes, val_size=0.1, test_size=0.2, random_state=0):
    """Stratified, seeded train/val/test split that keeps identical files together.

    Files with the same content hash form one group and always land in the
    same split, so a duplicated photo cannot leak from train into test. The
    result depends only on the (hash, label) pairs and the seed, not on the
    order in which files were found.

    Parameters
    ----------
    labels : array-like of shape (n_images,)
    hashes : sequence of str of length n_images
        Content hashes (see :func:`content_hashes`).
    val_size, test_size : float, default=0.1, 0.2
        Fractions of each class's groups.
    random_state : int, default=0

    Returns
    -------
    splits : dict of str to ndarray of int
        Indices for ``'train'``, ``'val'`` and ``'test'``, each sorted.
    """
    labels = np.asarray(labels, dtype=object)
    if len(hashes) != len(labels):
        raise DatasetError(f"Got {len(labels)} labels but {len(hashes)} hashes.")
    if not (0 <= val_size < 1 and 0 <= test_size < 1 and val_size + test_size < 1):
        raise DatasetError(
            f"val_size and test_size must be fractions in [0, 1) that sum to less than 1; "
            f"got val_size={val_size!r}, test_size={test_size!r}."
        )
    groups = {}
    for i, (h, y) in enumerate(zip(hashes, labels)):
        groups.setdefault(h, []).append(i)
    rng = np.random.RandomState(random_state)
    out = {"train": [], "val": [], "test": []}
    for cls in sorted(set(labels)):
        # A group takes the label of its first file; sorting the keys before the
        # seeded permutation makes the split independent of discovery order.
        keys = sorted(h for h, idx in groups.items() if labels[idx[0]] == cls)
        order = rng.permutation(len(keys))
        n_test = int(round(test_size * len(keys)))
        n_val = int(round(val_size * len(keys)))
        for rank, k in enumerate(order):
            split = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            out[split].extend(groups[keys[k]])
    return {k: np.array(sorted(v), dtype=int) for k, v in out.items()}


@dataclass
class TrainingData:
    """What a training run reads: train and test images, and the photos of neither.

    Attributes
    ----------
    train, test : LabeledImages
    train_source, test_source : str
        Where they came from, as the model card and the report name them (``'<root> (seeded 80%)'``
        when the test set was split off the training folder, ``' + <extra> (n images)'`` per extra set).
    negatives, held_out : Negatives or None
        The part of the photos of neither used for fitting and the part held out for the report
        (see :meth:`Negatives.split`); None without photos of neither.
    negatives_fraction : float
    random_state : int
    """

    train: LabeledImages
    test: LabeledImages
    train_source: str
    test_source: str
    negatives: "Negatives | None" = None
    held_out: "Negatives | None" = None
    negatives_fraction: float = 0.5
    random_state: int = 0

    def check_trainable(self, cv):
        """Raise a :class:`DatasetError` unless both classes have at least ``cv`` training images.

        Parameters
        ----------
        cv : int
            The cross-validation folds the search will use.
        """
        counts = self.train.counts()
        present = [c for c, n in counts.items() if n]
        if len(present) < 2:
            raise DatasetError(f"Training data has a single class ({', '.join(present) or 'none'}: "
                               f"{sum(counts.values())} images); fitting needs both cats and dogs.")
        if min(counts.values()) < cv:
            raise DatasetError(f"Training data has too few images for {cv}-fold CV: {counts}; "
                               f"need at least {cv} of each class (or lower --cv).")


def _concat(images, extra):
    return LabeledImages(images.paths + extra.paths, np.concatenate([images.labels, extra.labels]),
                         images.layout, images.root, images.ignored + extra.ignored)


def load_training_data(source=None, *, test=None, extra=(), negatives=None, negatives_fraction=0.5,
                       extra_negatives=(), random_state=0, log=None):
    """Find a training run's images: the first step of ``fit``, as one call.

    Parameters
    ----------
    source : str or os.PathLike, default=None
        Training images in any layout :func:`find_images` reads, or a split root holding
        ``train/`` (and ``test/``). None: :func:`default_data_dir` (downloads PetImages once).
    test : str or os.PathLike, default=None
        Held-out test images. Default: the split root's ``test/``, else a seeded 20% of ``source``
        split by content hash (:func:`split_dataset`), so copies never straddle the split.
    extra : sequence of LabeledImages, str or os.PathLike, default=()
        More training images: found sets (for example :func:`catdog_sk.training.feedback_dataset`)
        or folders / CSV manifests.
    negatives : str or os.PathLike, default=None
        A folder of photos of neither (see :func:`find_negatives`), split by
        ``negatives_fraction`` into a fitting part and a held-out part.
    negatives_fraction : float, default=0.5
    extra_negatives : sequence of Negatives, default=()
        More photos of neither, all used for fitting, none held out (for example
        :func:`catdog_sk.training.feedback_negatives`: photos users said show neither).
    random_state : int, default=0
        Seeds the 80/20 split and the negatives split.
    log : callable(str), default=None
        Receives one line per step (counts found).

    Returns
    -------
    data : TrainingData

    Raises
    ------
    DatasetError
        A path does not exist or holds no labelled image, or a class is missing.
    """
    log = log or (lambda message: None)
    neg = held = None
    if negatives is not None:
        neg, held = find_negatives(negatives).split(negatives_fraction, random_state=random_state)
        log(f"negatives: {len(neg)} photos for fitting, {len(held)} held out ({os.fspath(negatives)})")
        for path, why in neg.ignored:
            log(f"skipped negative {path}: {why}")
    for more in extra_negatives:
        log(f"extra negatives {more.root}: {len(more)} photos for fitting")
        neg = more if neg is None else neg.join(more)
    source = os.fspath(source) if source is not None else str(default_data_dir())
    splits = find_splits(source)
    train = find_images(splits["train"] if splits else source)
    test_source = os.fspath(test) if test is not None else splits.get("test")
    if test_source:
        test_set, train_src = find_images(test_source), str(splits.get("train", source))
    else:
        idx = split_dataset(train.labels, hashes=content_hashes(train.paths), val_size=0.0, test_size=0.2,
                            random_state=random_state)
        train, test_set = train.subset(idx["train"]), train.subset(idx["test"])
        train_src, test_source = f"{source} (seeded 80%)", f"{source} (seeded 20%)"
    for item in extra:
        found = item if isinstance(item, LabeledImages) else find_images(item)
        name = found.root if isinstance(item, LabeledImages) else os.fspath(item)
        log(f"extra training data {name}: {len(found)} images {found.counts()}")
        train, train_src = _concat(train, found), f"{train_src} + {name} ({len(found)} images)"
    for path, why in special_files(train.ignored + test_set.ignored):
        log(f"skipped {path}: {why}")
    log(f"train: {len(train)} images {train.counts()}; test: {len(test_set)} images {test_set.counts()}")
    return TrainingData(train, test_set, train_src, str(test_source), neg, held, negatives_fraction, random_state)


def default_data_dir():
    """Where the main job's data is: ``$CATDOG_DATA`` if set, else the downloaded PetImages.

    Downloads PetImages into the user cache (``$XDG_CACHE_HOME/catdog_sk``) on first use.

    Returns
    -------
    folder : pathlib.Path
    """
    env = os.environ.get("CATDOG_DATA")
    if env:
        return Path(env)
    return download_petimages()


def _user_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catdog_sk"


def download_petimages(dest=None, *, url=PETIMAGES_URL, sha256=None, progress=None, timeout=30,
                       known_bad=PETIMAGES_KNOWN_BAD):
    """Download and unpack the PetImages archive once; resume an interrupted download.

    Parameters
    ----------
    dest : str or os.PathLike, default=None
        Folder to unpack into (default: the user cache dir). The archive is
        unpacked to ``dest/PetImages``; a finished unpack is never repeated.
    url : str, default=PETIMAGES_URL
    sha256 : str, default=None
        Expected SHA-256 of the archive. When None, the size announced by the
        server is checked and the digest of the first complete download is
        recorded beside it and enforced on every later use.
    progress : bool, default=None
        Progress bar on stderr (None: only when stderr is a terminal).
    timeout : float, default=30
        Seconds to wait for the server before giving up.
    known_bad : sequence of str
        Archive members known to be corrupt: not unpacked, reported on stderr.

    Returns
    -------
    path : pathlib.Path
        The folder holding ``PetImages/``.

    Raises
    ------
    DatasetError
        Network failure (with the fix: set ``CATDOG_DATA``), size or checksum mismatch.
    """
    dest = Path(dest) if dest is not None else _user_cache_dir() / "petimages"
    done_marker = dest / ".complete"
    if done_marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / os.path.basename(url.split("?")[0])
    part = archive.with_name(archive.name + ".part")
    recorded = archive.with_name(archive.name + ".sha256")
    if not archive.exists():
        _fetch(url, part, timeout=timeout, progress=sys.stderr.isatty() if progress is None else progress)
        digest = file_sha256(part)
        expected = sha256 or (recorded.read_text().strip() if recorded.exists() else None)
        if expected and digest != expected:
            part.unlink()
            raise DatasetError(f"Checksum mismatch for {url}: got sha256 {digest}, expected {expected}. "
                               f"The partial file was removed; run again to download afresh.")
        recorded.write_text(digest + "\n")
        os.replace(part, archive)
    for name, why in _unpack(archive, dest, known_bad):
        print(f"skipped {name}: {why}", file=sys.stderr)
    done_marker.write_text("ok\n")
    return dest


def _fetch(url, part, *, timeout, progress):
    """Download ``url`` into ``part``, resuming from its current size when the server allows (HTTP 206)."""
    import urllib.error
    import urllib.request

    from ._progress import progress_bar

    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch
            return
        raise DatasetError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}. "
                           f"Set CATDOG_DATA to a local folder of images instead.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"Cannot download {url} ({reason}). This machine may be offline: "
                           f"set CATDOG_DATA to a local folder of cat/dog images.") from None
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if resumed else "wb") as fh, progress_bar(
                total, "PetImages", "B", initial=have, unit_scale=True, enabled=progress) as bar:
            while True:
                try:
                    block = response.read(1 << 20)
                except OSError as exc:
                    raise DatasetError(f"Download of {url} interrupted ({exc}); run again to "
                                       f"resume from {fh.tell():,} bytes.") from None
                if not block:
                    break
                fh.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise DatasetError(f"Download of {url} stopped at {part.stat().st_size:,} of {total:,} bytes; "
                           f"run again to resume.")


def _unpack(archive, dest, known_bad):
    """Extract ``PetImages/`` members into ``dest``; returns the (member, reason) pairs left out."""
    skipped = []
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = member.filename
            if member.is_dir() or not name.startswith("PetImages/"):
                continue
            if ".." in Path(name).parts:
                skipped.append((name, "unsafe path in archive"))
            elif name in known_bad:
                skipped.append((name, "known corrupt file in the public archive"))
            elif member.file_size == 0:
                skipped.append((name, "empty file"))
            else:
                zf.extract(member, dest)
    return skipped
