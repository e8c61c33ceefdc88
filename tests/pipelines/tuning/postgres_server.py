"""A throwaway PostgreSQL server: Debian's ``postgresql`` binaries (``initdb`` and ``pg_ctl`` in
a temporary folder, on a loopback port, trust authentication, nothing made durable).

Used by the ``postgres`` fixture of ``test_postgres.py`` and by the two-driver repeat script
(``python -m tests.pipelines.tuning.two_drivers``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg


def _server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, from pg_config, or Debian's layout."""
    candidates = [shutil.which("initdb")]
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(str(Path(bindir.stdout.strip()) / "initdb"))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for initdb in filter(None, candidates):
        folder = Path(initdb).parent
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NoServer(Exception):
    """PostgreSQL's server binaries are not installed here."""


@contextlib.contextmanager
def postgres_server() -> Iterator[Callable[[str], str]]:
    """A PostgreSQL server of its own; yields a function that makes a database, its URL.

    Shared by the ``postgres`` fixture and the two-driver repeat script (``two_drivers``).
    """
    binaries = _server_binaries()
    if binaries is None:
        raise NoServer(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: "
            "apt-get install postgresql (.ci/run does)"
        )
    # The server refuses to run as root: as root, its folder belongs to `postgres`, who runs
    # it. A folder under /tmp, not pytest's: root's pytest folders are closed to others.
    folder = Path(tempfile.mkdtemp(prefix="neural-net-lab-postgres-"))
    as_server: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_server = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def server(*args: str) -> None:
        subprocess.run([*as_server, *args], check=True, capture_output=True, timeout=120)

    server(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
           "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
    settings = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
        # A throwaway server: nothing to make durable.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        server(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
               "-o", settings, "-w", "-t", "60", "start")  # fmt: skip
    except subprocess.CalledProcessError:
        log = folder / "server.log"
        raise RuntimeError(
            f"PostgreSQL did not start: {log.read_text() if log.exists() else ''}"
        ) from None

    def database(name: str) -> str:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        server(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
