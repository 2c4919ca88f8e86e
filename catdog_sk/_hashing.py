"""SHA-256 of files and arrays: the identity of data, weights and model files."""

import hashlib

__all__ = ["file_sha256", "array_sha256"]


def file_sha256(path, *, chunk_size=1 << 20):
    """Hex SHA-256 of a file's bytes, read in chunks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def array_sha256(arr):
    """Hex SHA-256 of an array's shape and bytes (C order)."""
    h = hashlib.sha256(f"array:{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()
