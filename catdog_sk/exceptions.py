"""Exceptions and warnings raised by catdog_sk.

Every class subclasses a builtin, so callers can catch ``ValueError`` or
``RuntimeError`` without knowing catdog_sk, and carries structured fields so
reports and HTTP errors never have to parse message strings.
"""

__all__ = [
    "CatDogError",
    "InvalidParameterError",
    "ImageDecodeError",
    "BackboneUnavailableError",
    "DatasetError",
    "ModelVersionWarning",
    "CacheError",
    "ModelLoadError",
    "ExportError",
]


class CatDogError(Exception):
    """Base class of the runtime errors a command reports in one line (exit 1)."""


class InvalidParameterError(CatDogError, ValueError, TypeError):
    """A parameter has a value outside its documented choices or range."""


class ImageDecodeError(CatDogError, ValueError):
    """An image could not be turned into pixels.

    Parameters
    ----------
    path : str or None
        The file that failed, or None for in-memory input.
    reason : str
        A stable reason code: one of ``REASONS``.
    detail : str, default=""
        Human-readable detail (the decoder's own words, the pixel count, ...).
    """

    #: Stable reason codes, documented in the user guide's "Preprocessing" page (docs/user_guide/preprocessing.rst).
    REASONS = (
        "empty",  # zero bytes
        "unreadable",  # the OS refused to read it (permissions, a loop, a directory)
        "not_an_image",  # no decoder recognises the content
        "truncated",  # the decoder ran out of data
        "too_large",  # pixel count above the cap, rejected from the header
        "corrupt",  # the decoder failed for another reason
        "bad_array",  # an in-memory array of the wrong shape or dtype
    )

    def __init__(self, path, reason, detail=""):
        self.path = None if path is None else str(path)
        self.reason = reason
        self.detail = detail
        where = self.path if self.path is not None else "<array>"
        msg = f"{where}: {reason}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)

    def __reduce__(self):  # keep fields when crossing process boundaries
        return (type(self), (self.path, self.reason, self.detail))

    def as_dict(self):
        """How reports and ``--json`` list a skipped file.

        Returns
        -------
        record : dict
            ``{'path', 'reason', 'detail'}``.
        """
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


class BackboneUnavailableError(CatDogError, RuntimeError):
    """A CNN backbone's pretrained weights cannot be had (offline, unknown name)."""


class DatasetError(CatDogError, ValueError):
    """A dataset is empty, has one class, or cannot be found or downloaded."""


class ModelVersionWarning(UserWarning):
    """A saved model was written by other library versions than the ones loading it."""


class CacheError(CatDogError, OSError):
    """The feature cache (or another output folder) cannot be used: not a folder, read-only, full."""


class ModelLoadError(CatDogError, ValueError):
    """A model file was refused: unknown types, checksum mismatch, or not a model."""


class ExportError(CatDogError, ValueError):
    """The model cannot be exported to the requested format (the message says why)."""
