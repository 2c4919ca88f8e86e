"""Output folders that appear whole or not at all, and never replace someone else's."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_dir", "atomic_write", "check_new_dir"]


def check_new_dir(final, what="output folder"):
    """CacheError now, before any work, if ``final`` already exists (it would never be overwritten).

    Parameters
    ----------
    final : str or os.PathLike
        The folder or file a run is about to create (a dangling symlink counts as existing).
    what : str, default='output folder'
        What ``final`` is, as the message names it.

    Raises
    ------
    CacheError
        ``final`` exists; nothing was changed.
    """
    from .exceptions import CacheError

    final = Path(final)
    if final.exists() or final.is_symlink():
        raise CacheError(f"The {what} {final} exists already; nothing was changed. Choose another name "
                         f"(or move it away first).")


@contextlib.contextmanager
def atomic_dir(final):
    """Write a folder's files into a hidden sibling, then rename it to ``final`` in one step.

    A crash or an exception part-way leaves no half-written ``final``; only the
    hidden folder this call created is ever removed. An existing ``final``
    is never replaced: the rename refuses a non-empty folder, so even a
    folder that appeared while the work ran is kept, and CacheError says so.

    Parameters
    ----------
    final : str or os.PathLike
        The folder to create; its parent is created if needed.

    Yields
    ------
    work : pathlib.Path
        Where to write.
    """
    from .exceptions import CacheError

    final = Path(final)
    check_new_dir(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        yield work
        os.chmod(work, 0o755)  # mkdtemp makes it private; a report folder is not
        if final.exists() or final.is_symlink():
            raise CacheError(f"The output folder {final} appeared while this run worked; it was kept as it is "
                             f"and this run's output was discarded.")
        try:
            os.rename(work, final)  # refuses a non-empty folder that appeared in between
        except OSError as exc:
            raise CacheError(f"The output folder {final} could not be created ({exc.strerror}); it was kept "
                             f"as it is and this run's output was discarded.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def atomic_write(final, data):
    """Write ``data`` (bytes) to the new file ``final`` in one step; an existing file is never replaced.

    The bytes go to a hidden sibling first, which is then hard-linked to ``final`` (a link refuses an
    existing name, even one that appeared while the data was written) and removed.

    Parameters
    ----------
    final : str or os.PathLike
        The file to create; its folder must exist.
    data : bytes
        The file's whole content.

    Raises
    ------
    CacheError
        ``final`` existed before the call or appeared during it; it is kept as it is.
    """
    from .exceptions import CacheError

    final = Path(final)
    check_new_dir(final, what="output file")
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise CacheError(f"The output file {final} appeared while this run worked; it was kept as it is "
                             f"and this run's output was discarded.") from None
    finally:
        os.unlink(tmp)


def unique_name(prefix=""):
    """A run or report name no other run can have: UTC time to the second plus 8 random hex digits.

    Parameters
    ----------
    prefix : str, default=''
        Put before the name, e.g. ``'report-'``.

    Returns
    -------
    name : str
        ``prefix + 'YYYYmmdd-HHMMSS-' + 8 hex digits``; sorts by time.
    """
    import datetime as dt
    import secrets

    return f"{prefix}{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
