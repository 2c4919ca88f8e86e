"""Output folders that appear whole or not at all."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_dir"]


@contextlib.contextmanager
def atomic_dir(final):
    """Write a folder's files into a hidden sibling, then rename it to ``final`` in one step.

    A crash or an exception part-way leaves no half-written ``final`` (an older
    ``final`` is replaced only when the new one is complete).

    Yields
    ------
    work : pathlib.Path
        Where to write.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        yield work
        os.chmod(work, 0o755)  # mkdtemp makes it private; a report folder is not
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
