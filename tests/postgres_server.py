"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, pg_ctl on a Unix socket there (no
TCP port, nothing else on the machine sees it), trust authentication, a fresh database per test. Root may not run
the server: as root (CI), the cluster belongs to the `postgres` user and its commands run as that user.

Where PostgreSQL is not installed, the tests that need it skip saying so, except under CI=true, where they fail
(.ci/run installs it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PORT = 5432  # the socket's name (.s.PGSQL.5432) in a directory of this cluster's own: no TCP port is opened


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def unavailable(reason: str) -> None:
    import pytest  # the tests' skip or failure (bench/store.py uses the same cluster, outside pytest)

    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed under CI: {reason} (.ci/run installs the postgresql package)")
    pytest.skip(f"PostgreSQL is not installed here: {reason}")


class Server:
    def __init__(self) -> None:
        folder = binaries()
        if folder is None:
            unavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin")
        assert folder is not None
        self.bin = folder
        self.root = Path(tempfile.mkdtemp(prefix="ir-pg-"))
        self.data = self.root / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._do("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.root}'\nport = {PORT}\n"
                       "fsync = off\nmax_connections = 200\n")
        self.start()
        self.count = 0

    def _do(self, command: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / command), *args], capture_output=True, text=True,
                              timeout=120, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{command} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._do("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def restart(self) -> None:
        self._do("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-m", "fast", "-w", "-t", "60",
                 "restart")

    def down_for(self, seconds: float) -> threading.Thread:
        """Stop the server now (every connection cut) and start it again `seconds` later, from a thread: join it."""
        self._do("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        back = threading.Timer(seconds, self.start)
        back.start()
        return back

    def stop(self) -> None:
        self._do("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.root}&port={PORT}"

    def database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        self.count += 1
        name = f"t{os.getpid()}_{self.count}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, url: str, statement: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []
