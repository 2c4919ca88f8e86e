"""Where the prediction log lives: its URL, its tables, its schema version and their migration.

SQLAlchemy Core speaks both dialects (SQLite, the embedded default, and PostgreSQL through psycopg 3) and
holds the connection pool, so there is one SQL layer, not two hand-written ones. Imported only when a log
is opened: ``import catdog_sk`` stays free of it.

Schema versions:

- 0: ``predictions`` and ``feedback`` (logs of the first servers);
- 1: + ``predictions.presence`` (the presence score of 'unknown');
- 2: + ``predictions.server`` (which process answered), ``images`` (each upload once, by SHA-256, for
  retraining on feedback from any server) and ``log_meta`` (this version number).

A writer migrates an older log on open; a reader (``monitor``, ``fit --extra-data``) never writes and
reads any version.
"""

import os
import re
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "log_url", "is_log_url", "display_url", "tables", "open_engine", "migrate",
           "schema_version"]

#: The schema this code writes (see the module docstring).
SCHEMA_VERSION = 2

_SCHEMES = ("sqlite", "postgresql", "postgres")


def is_log_url(spec):
    """True when ``spec`` is a database URL (``sqlite:///...``, ``postgresql://...``), not a file path."""
    return isinstance(spec, str) and re.match(r"^(sqlite|postgres(ql)?)(\+\w+)?://", spec) is not None


def log_url(spec):
    """The SQLAlchemy URL of a prediction log given as a path or a URL.

    Parameters
    ----------
    spec : str or os.PathLike
        A file path (SQLite), ``sqlite:///path`` or ``postgresql://user[:password]@host[:port]/db``
        (``postgresql+psycopg://`` also accepted).

    Returns
    -------
    url : sqlalchemy.engine.URL
        PostgreSQL URLs get the psycopg 3 driver.

    Raises
    ------
    InvalidParameterError
        A URL of another database, or one SQLAlchemy cannot parse.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = os.fspath(spec)
    if "://" not in text:
        return make_url("sqlite://").set(database=str(Path(text)))
    from ..exceptions import InvalidParameterError

    expected = "The 'log_db' parameter must be a file path, sqlite:///path or postgresql://user@host:port/db."
    try:
        url = make_url(text)
    except ArgumentError:
        raise InvalidParameterError(f"{expected} Got {display_url(text)!r} instead.") from None
    backend = url.get_backend_name()
    if backend not in _SCHEMES:
        raise InvalidParameterError(f"{expected} Got a {backend!r} URL instead.")
    if backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def display_url(spec):
    """The log's URL or path with any password hidden, for messages and ``/ready``."""
    text = str(spec)
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", text)


def tables(metadata=None):
    """The log's tables, as SQLAlchemy Core ``Table`` objects of ``metadata``."""
    import sqlalchemy as sa

    md = metadata if metadata is not None else sa.MetaData()
    text, real = sa.Text, sa.Float(precision=53)
    predictions = sa.Table(
        "predictions", md,
        sa.Column("request_id", text, primary_key=True), sa.Column("item", sa.Integer, primary_key=True),
        sa.Column("time", real), sa.Column("sha256", text), sa.Column("label", text),
        sa.Column("probabilities", text), sa.Column("model_version", text), sa.Column("latency_ms", real),
        sa.Column("embedding", sa.LargeBinary), sa.Column("presence", real), sa.Column("server", text))
    feedback = sa.Table(
        "feedback", md,
        sa.Column("request_id", text, primary_key=True), sa.Column("item", sa.Integer, primary_key=True),
        sa.Column("time", real), sa.Column("true_label", text))
    images = sa.Table("images", md, sa.Column("sha256", text, primary_key=True), sa.Column("time", real),
                      sa.Column("data", sa.LargeBinary))
    meta = sa.Table("log_meta", md, sa.Column("key", text, primary_key=True), sa.Column("value", text))
    return {"predictions": predictions, "feedback": feedback, "images": images, "log_meta": meta}


def open_engine(url, *, timeout=0.5, read_only=False):
    """An engine for the log: a small pool for PostgreSQL, short timeouts, SQLite read-only for readers.

    Parameters
    ----------
    url : sqlalchemy.engine.URL
        From :func:`log_url`.
    timeout : float, default=0.5
        SQLite: seconds to wait for a locked file. PostgreSQL: the connect timeout is at least 2 s.
    read_only : bool, default=False
        Open a SQLite file read-only (a reader never creates or changes it).

    Returns
    -------
    engine : sqlalchemy.engine.Engine
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if url.get_backend_name() == "sqlite":
        import sqlite3

        if read_only:
            uri = "file:" + Path(url.database).resolve().as_uri()[len("file://"):] + "?mode=ro"
            return sa.create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
                uri, timeout=timeout, uri=True, check_same_thread=False))
        # NullPool: one connection per write, as before (a file replaced or deleted under the server is
        # noticed at once, and no connection is shared between threads).
        return sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})
    return sa.create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True, pool_timeout=max(2.0, timeout),
                            connect_args={"connect_timeout": max(2, int(timeout + 0.999))})


def schema_version(conn):
    """The log's schema version (0, 1 or 2; None when it has no ``predictions`` table)."""
    import sqlalchemy as sa

    names = set(sa.inspect(conn).get_table_names())
    if "predictions" not in names:
        return None
    if "log_meta" in names:
        row = conn.execute(sa.text("SELECT value FROM log_meta WHERE key = 'schema_version'")).fetchone()
        if row is not None and str(row[0]).isdigit():
            return int(row[0])
    columns = {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
    return 1 if "presence" in columns else 0


def migrate(engine):
    """Create the tables, or bring an older log to :data:`SCHEMA_VERSION`, in one transaction.

    Several servers opening one PostgreSQL log at once take an advisory lock first, so that only one
    creates or alters the tables.

    Returns
    -------
    before : int or None
        The version found (None: a new log).
    """
    import sqlalchemy as sa

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(4242001)"))
        before = schema_version(conn)
        md = sa.MetaData()
        t = tables(md)
        if before is not None and before < SCHEMA_VERSION:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
            for name, kind in (("presence", "REAL"), ("server", "TEXT")):
                if name not in columns:
                    conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} {kind}"))
        md.create_all(conn, checkfirst=True)
        if before != SCHEMA_VERSION:
            conn.execute(t["log_meta"].delete().where(t["log_meta"].c.key == "schema_version"))
            conn.execute(t["log_meta"].insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    return before
