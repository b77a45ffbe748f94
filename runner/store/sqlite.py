"""The embedded store: one SQLite file (WAL) in IR_HOME, created private (0600), versioned with forward
migrations. Several processes may use it at once (`ir note` from a second terminal during a run): writes take
the lock with BEGIN IMMEDIATE and wait up to `BUSY_MS` for it. The queries are `ir.store.sql`'s."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ir.errors import IncidentBusy, IrError
from ir.paths import home
from ir.store.records import T
from ir.store.sql import KINDS_INDEX, QUEUED, TABLES, SqlStore
from ir.store.timeline import Event, format_recorded, utc_now

BUSY_MS = 10_000
MIGRATIONS = [
    TABLES.format(blob="BLOB"),
    # `ir status` reads the milestones and `ir timeline --kind` its kinds without a pass over every event
    KINDS_INDEX,
    QUEUED.format(key="json_extract(events.data, '$.key')"),
]


def _check_private(path: Path) -> None:
    """A store file that exists must be a regular file of ours that nobody else can read or write: a link, or a file
    another user made (or left open to all), would hand them the incident's notes."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        why = ("a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a regular file"
               if not stat.S_ISREG(found.st_mode) else f"it belongs to another user (uid {found.st_uid})"
               if found.st_uid != os.getuid() else f"others can reach it (mode {stat.S_IMODE(found.st_mode):04o})")
        raise IrError(f"the store file {path} is not used: {why}",
                      hint="move it aside and let ir make a new store (or restore yours from a backup)")


def default_path() -> Path:
    return home() / "ir.db"


class SqliteStore(SqlStore):
    def __init__(self, path: Path | None = None):
        self.path = path or default_path()
        self.where = str(self.path)
        for suffix in ("", "-wal", "-shm"):
            _check_private(self.path.with_name(self.path.name + suffix))
        if not self.path.exists():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
        old_umask = os.umask(0o077)  # the -wal and -shm files, too
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_MS / 1000,
                                      check_same_thread=False)
            self._wal()
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.OperationalError as exc:  # busy for longer than BUSY_MS, unreadable, no space left
            raise IrError(f"the store {self.path} cannot be opened: {exc}",
                          hint="another ir process may hold it: try again in a moment; else check the file's "
                               "permissions and the free disk space") from None
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            raise IrError(f"the store {self.path} cannot be read: {exc}",
                          hint="it is not an ir store, or it is damaged: move it aside and restore it from a "
                               "backup (IR_HOME names another store)") from None
        finally:
            os.umask(old_umask)

    def _wal(self) -> None:
        """Switch the store to write-ahead logging. Switching takes an exclusive lock and SQLite does not wait for
        it (the busy timeout does not apply): when processes open a new store at once, one switches and the others
        find it busy for a moment, so they wait here, up to BUSY_MS."""
        deadline = time.monotonic() + BUSY_MS / 1000
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        version = self._version()
        if version > len(MIGRATIONS):
            raise IrError(f"the store {self.path} was written by a newer ir (schema {version})",
                          hint="upgrade ir (pip install -U ir)")
        if version == len(MIGRATIONS):
            return
        with self._write():  # one process migrates; another one opening the store at once then finds it done
            for number in range(self._version(), len(MIGRATIONS)):
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _write(self) -> _Transaction:
        return _Transaction(self.db)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def _transact(self, work: Callable[[], T], *, replayable: bool = True,
                  committed: Callable[[Event], T] | None = None) -> T:
        with self._write():
            return work()

    def _scan(self, columns: str, where: str, values: Sequence[Any], limit: int | None = None) -> Iterator[Any]:
        # one cursor, read as it goes: SQLite steps through the rows as they are asked for
        return iter(self.db.execute(f"SELECT {columns} FROM events WHERE {where} ORDER BY seq"
                                    + (" LIMIT ?" if limit is not None else ""),
                                    [*values, limit] if limit is not None else values))

    def snapshot(self, read: Callable[[], T]) -> T:
        """A deferred transaction: in write-ahead logging its first read fixes what every later one sees, while
        other connections go on committing."""
        if self.db.in_transaction:
            return read()
        self.db.execute("BEGIN")
        try:
            return read()
        finally:
            self.db.execute("COMMIT")  # nothing was written: this lets the snapshot go

    def reopen(self) -> SqliteStore:
        return SqliteStore(self.path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def running(self, incident_id: str, *, take_over: bool = False) -> Iterator[None]:
        """An exclusive lock on a file beside the store (`locks/<incident>.lock`), taken without waiting. The
        operating system drops it when the process ends, even killed, so nothing is ever left held (and there is
        never an abandoned run to take over: `take_over` changes nothing here)."""
        import fcntl

        folder = self.path.parent / "locks"
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = _open_lock(folder / f"{incident_id}.lock", os.O_RDWR | os.O_CREAT)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                raise busy(incident_id, holder, take_over=False) from None
            os.ftruncate(fd, 0)
            os.write(fd, holder_text().encode())
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # nobody drives it now (a killed driver's line stays, under no lock)
        finally:
            os.close(fd)

    def wait(self, incident_id: str, count: int, timeout: float) -> bool:
        """Until the incident has more than `count` events (True) or `timeout` seconds pass (False): the file is
        on this machine, so looking at its head ten times a second costs nothing."""
        deadline = time.monotonic() + timeout
        while self.incident(incident_id).event_count <= count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.1, left))
        return True

    def drivers(self) -> dict[str, str]:
        """Who drives each incident being run: the line a driver writes in its lock file, while its process lives.
        Read, never locked: a probe of the lock would, for its instant, make a run starting then find it busy."""
        found = {}
        folder = self.path.parent / "locks"
        for lock in sorted(folder.glob("*.lock")) if folder.is_dir() else ():
            fd = _open_lock(lock, os.O_RDONLY)
            try:
                holder = os.read(fd, 200).decode(errors="replace").strip()
            finally:
                os.close(fd)
            named = _HOLDER.search(holder)
            if named and _alive(int(named[1]), named[2]):  # a killed driver's line stays: its process is gone
                found[lock.stem] = holder
        return found


def _open_lock(path: Path, flags: int) -> int:
    """A lock file, never through a link: one planted in its place is refused, naming it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise IrError(f"the lock file {path} is not used: a symbolic link",
                      hint="remove it: ir makes its lock files itself, and a link there would point them elsewhere") \
            from None


_HOLDER = re.compile(r"\(pid (\d+) on (\S+), since ")


def _alive(pid: int, host: str) -> bool:
    """Whether the process `pid` on `host` runs (another host's, sharing the file: taken as running)."""
    import socket

    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    return True


def holder_text() -> str:
    """Who drives an incident, as a second `ir resume` names them."""
    import getpass
    import socket

    return f"{getpass.getuser()} (pid {os.getpid()} on {socket.gethostname()}, since {format_recorded(utc_now())})"


def busy(incident_id: str, holder: str, *, take_over: bool) -> IncidentBusy:
    hint = (f"one process drives an incident at a time: continue there, or stop it and `ir resume {incident_id}`"
            + (f"; if that run was abandoned, `ir resume {incident_id} --take-over`" if take_over else "")
            + "; `ir note`, `ir step` and `ir status` work meanwhile")
    return IncidentBusy(f"{incident_id} is being run by {holder}", hint=hint)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


