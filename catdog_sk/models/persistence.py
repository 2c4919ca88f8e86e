"""Save and load fitted classifiers without executing code from the file, with a model card.

Models are written with ``skops.io``, which stores an object tree and, on
load, builds only types it has been told to trust: a tampered file naming a
foreign type is refused instead of running it (pickle would run it). The
card beside the model records the file's SHA-256 and the library versions;
a mismatching file is refused, mismatching versions warn.
"""

import contextlib
import copy
import platform
import warnings
from pathlib import Path

from .._hashing import file_sha256
from .._version import __version__
from ..exceptions import ModelLoadError, ModelVersionWarning  # ModelLoadError re-exported here
from .card import CARD_FILE, ModelCard, read_card

__all__ = ["MODEL_FILE", "CARD_FILE", "PROMOTED_FILE", "save_model", "load_model", "library_versions",
           "ModelLoadError", "promote", "promoted_model_dir", "promotion_lock", "valid_run_name", "read_card",
           "ModelCard"]

MODEL_FILE = "model.skops"
#: Types outside skops' default trusted set that catdog_sk itself writes: its own
#: classes, and scikit-learn's private calibration helpers inside a calibrated SVM.
_OWN_TYPES_PREFIX = "catdog_sk."
TRUSTED_TYPES = frozenset({
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
})


def library_versions():
    """Versions that decide whether a saved model still predicts the same.

    Returns
    -------
    versions : dict of str to str
        catdog_sk, scikit-learn, numpy and the other libraries a model's predictions depend on.
    """
    import numpy
    import sklearn

    out = {"catdog_sk": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
           "python": platform.python_version()}
    try:
        from importlib.metadata import version

        for name in ("torch", "timm", "skops"):
            out[name] = version(name)
    except Exception:  # noqa: BLE001 - metadata is best effort
        pass
    return out


def save_model(classifier, directory, *, card=None):
    """Write ``model.skops``, ``model_card.json`` and ``model_card.md`` into ``directory``.

    Parameters
    ----------
    classifier : CatDogClassifier
        Fitted.
    directory : str or os.PathLike
        Created if missing. Files are written to temporary names and moved into
        place, so a crash never leaves a half-written model.
    card : dict, default=None
        Extra model-card fields (data, metrics, grid results ...); see :class:`ModelCard`.

    Returns
    -------
    directory : pathlib.Path
    """
    import os

    import skops.io as sio

    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(classifier)
    cache = classifier.cache
    if (cache is not None and not isinstance(cache, str)) or hasattr(classifier, "card_"):
        classifier = copy.copy(classifier)  # keep the file free of foreign types; the card lives beside it
        classifier.cache = cache if cache is None or isinstance(cache, str) else str(getattr(cache, "location", cache))
        classifier.__dict__.pop("card_", None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (MODEL_FILE + ".tmp")
    sio.dump(classifier, tmp)
    digest = file_sha256(tmp)
    os.replace(tmp, directory / MODEL_FILE)
    ModelCard.for_model(classifier, model_sha256=digest, model_file=MODEL_FILE, versions=library_versions(),
                        extra=card).save(directory)
    return directory


#: In a models root, names the promoted (champion) run directory.
PROMOTED_FILE = "PROMOTED"


def promoted_model_dir(path):
    """The model directory ``path`` stands for: a models root's promoted run, or ``path`` itself.

    Parameters
    ----------
    path : str or os.PathLike
        A model folder, or a models root holding run folders and a ``PROMOTED`` pointer.

    Returns
    -------
    model_dir : pathlib.Path

    Raises
    ------
    ModelLoadError
        ``PROMOTED`` is unreadable, not UTF-8, or does not name one run folder inside the root.
    """
    path = Path(path)
    pointer = path / PROMOTED_FILE
    if not pointer.is_file():
        return path
    try:
        name = pointer.read_bytes()[:4096].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"Refusing {pointer}: not a readable UTF-8 run name ({type(exc).__name__}); "
                             f"write the promoted run's folder name into it.") from None
    if not valid_run_name(name):
        raise ModelLoadError(f"Refusing {pointer}: {name[:80]!r} is not a run folder name inside {path}.")
    return path / name


def valid_run_name(name):
    """Whether ``name`` can be a run folder: one path component of letters, digits, '.', '_' and '-'.

    It must not start with '.' (so '.', '..' and hidden folders are out) and is at most 100 characters.

    Parameters
    ----------
    name : str

    Returns
    -------
    valid : bool
    """
    import re

    return isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name) is not None


@contextlib.contextmanager
def promotion_lock(models_root):
    """Hold an exclusive lock on a models root (``fcntl.flock``): compare-and-promote happens inside it.

    Two ``fit`` runs finishing together then decide one after the other, each against the
    model promoted *now*, never against what was promoted when it started.

    Parameters
    ----------
    models_root : str or os.PathLike

    Yields
    ------
    None
        While the lock is held.
    """
    import fcntl

    models_root = Path(models_root)
    models_root.mkdir(parents=True, exist_ok=True)
    with open(models_root / ".promote.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def promote(models_root, run_dir):
    """Make ``run_dir`` the models root's promoted model (atomic: a serving process sees old or new).

    Parameters
    ----------
    models_root : str or os.PathLike
    run_dir : str or os.PathLike
        A model folder inside ``models_root``.
    """
    import os

    models_root = Path(models_root)
    tmp = models_root / (PROMOTED_FILE + ".tmp")
    tmp.write_text(os.path.relpath(run_dir, models_root) + "\n")
    os.replace(tmp, models_root / PROMOTED_FILE)


def well_formed_sha256(value):
    """Whether ``value`` is a SHA-256 as :func:`save_model` records it.

    Parameters
    ----------
    value : object
        The card's ``model_sha256`` field (any JSON value, or None when absent).

    Returns
    -------
    bool
        True only for a string of exactly 64 lowercase hexadecimal digits.
    """
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _resolve(path):
    path = promoted_model_dir(path)
    if path.is_dir():
        return path / MODEL_FILE, path / CARD_FILE
    return path, path.with_name(CARD_FILE)


def load_model(path, *, unsafe=False):
    """Load a classifier saved by :func:`save_model`, refusing anything it did not write.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory, its ``model.skops`` file, or a models root with a
        ``PROMOTED`` pointer (the promoted model is loaded).
    unsafe : bool, default=False
        Trust every type named in the file (only for files you made yourself).

    Returns
    -------
    classifier : CatDogClassifier

    Raises
    ------
    ModelLoadError
        The file is missing, does not match the SHA-256 in its card, is not a
        skops file, or names types that catdog_sk does not trust (listed).

    Warns
    -----
    ModelVersionWarning
        The model was saved with other catdog_sk or scikit-learn versions.
    """
    model_path, card_path = _resolve(path)
    if not model_path.is_file():
        raise ModelLoadError(f"No model file at {model_path}.")
    card = read_card(card_path) if card_path.is_file() else None
    untrusted = _check_file(model_path, card_path, card, unsafe)
    model = _rebuild(model_path, untrusted)
    if card is not None:
        _warn_on_other_versions(model_path, card)
    model.card_ = card
    return model


def _check_file(model_path, card_path, card, unsafe):
    """The checksum against the card, then the types the file names; returns them for skops."""
    import skops.io as sio

    recorded = card.get("model_sha256") if card is not None else None
    if card is not None and well_formed_sha256(recorded) and file_sha256(model_path) != recorded:
        raise ModelLoadError(
            f"Refusing {model_path}: its SHA-256 does not match the one recorded in {card_path.name}; "
            f"the file was changed after it was saved."
        )
    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not our model"
        raise ModelLoadError(f"Refusing {model_path}: not a skops model file ({type(exc).__name__}: {exc}).") from None
    foreign = [t for t in untrusted if not (t.startswith(_OWN_TYPES_PREFIX) or t in TRUSTED_TYPES)]
    if foreign and not unsafe:
        raise ModelLoadError(
            f"Refusing {model_path}: it names types catdog_sk does not trust: {', '.join(foreign)}. "
            f"Load it with unsafe=True (--unsafe) only if you made the file yourself."
        )
    if card is None and not unsafe:
        raise ModelLoadError(f"Refusing {model_path}: no {CARD_FILE} beside it, so its SHA-256 cannot be "
                             f"checked. Load it with unsafe=True (--unsafe) only if you made the file yourself.")
    if not well_formed_sha256(recorded) and not unsafe:
        raise ModelLoadError(f"Refusing {model_path}: {card_path.name} records no well-formed model_sha256 "
                             f"(64 lowercase hex digits), so its SHA-256 cannot be checked. Load it with "
                             f"unsafe=True (--unsafe) only if you made the file yourself.")
    return untrusted


def _rebuild(model_path, trusted):
    """The fitted CatDogClassifier in the file, or a ModelLoadError."""
    import skops.io as sio

    from .classifier import CatDogClassifier

    try:
        model = sio.load(model_path, trusted=trusted)
    except Exception as exc:  # noqa: BLE001 - a file skops cannot rebuild is not a model
        raise ModelLoadError(f"Refusing {model_path}: skops could not load it ({type(exc).__name__}: {exc}).") from None
    if not isinstance(model, CatDogClassifier) or not hasattr(model, "pipeline_"):
        raise ModelLoadError(f"Refusing {model_path}: it holds a {type(model).__name__}, not a fitted "
                             f"CatDogClassifier.")
    return model


def _warn_on_other_versions(model_path, card):
    saved, now = card.get("versions", {}), library_versions()
    diff = [f"{k} {saved[k]} -> {now[k]}" for k in ("catdog_sk", "scikit-learn")
            if k in saved and saved[k] != now.get(k)]
    if diff:
        warnings.warn(f"{model_path} was saved with other library versions ({'; '.join(diff)}); "
                      f"predictions may differ. Refit to silence this.", ModelVersionWarning, stacklevel=3)
