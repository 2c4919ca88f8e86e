"""A throwaway PostgreSQL cluster for the tests and the benchmarks (not public API).

``initdb`` + ``pg_ctl`` in a temporary folder, on a free 127.0.0.1 port, with trust authentication for
one user; as root, the cluster runs as the unprivileged ``postgres`` user (PostgreSQL refuses root). It can
be stopped and started again in the middle of a run, to test a database outage.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["find_postgres", "ThrowawayPostgres"]


def find_postgres():
    """The folder holding ``initdb`` and ``pg_ctl``, or None (Debian keeps them in /usr/lib/postgresql/N/bin).

    ``$CATDOG_PG_BINDIR`` names the folder instead (the tests of the skip rule point it at a missing one).
    """
    chosen = os.environ.get("CATDOG_PG_BINDIR")
    if chosen:
        return Path(chosen) if (Path(chosen) / "initdb").is_file() else None
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
                   if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own, removed on :meth:`close`.

    Parameters
    ----------
    bindir : str or os.PathLike, default=None
        Where ``initdb`` and ``pg_ctl`` are (default: :func:`find_postgres`).
    durable : bool, default=False
        Keep PostgreSQL's defaults (``fsync`` on), as a production server runs: the benchmarks' choice.
        False turns ``fsync`` and ``full_page_writes`` off, for the tests (a process crash loses nothing,
        only a power cut would).

    Attributes
    ----------
    url : str
        ``postgresql://catdog@127.0.0.1:PORT/postgres``.
    """

    USER = "catdog"

    def __init__(self, bindir=None, *, durable=False):
        self.durable = durable
        self.bindir = Path(bindir) if bindir else find_postgres()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL's initdb was not found (Debian: apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="catdog-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://{self.USER}@127.0.0.1:{self.port}/postgres"
        self._as = []
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            self._as = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "-A", "trust", "-E", "UTF8",
                  *([] if durable else ["--no-sync"]))
        self.start()

    def _run(self, tool, *args):
        out = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True,
                             timeout=120, cwd=self.root)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {(out.stderr or out.stdout).strip()[-500:]}")
        return out

    def create_database(self, name):
        """A new, empty database on this cluster; returns its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, name)
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{name}"

    def start(self):
        """Start (or start again) the server; returns when it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not listen on port {self.port}")

    def stop(self):
        """Stop the server at once (``-m immediate``: as if it went away)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def close(self):
        """Stop the server and remove its folder."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
