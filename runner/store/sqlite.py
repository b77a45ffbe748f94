"""The embedded store: one SQLite file (WAL) in IR_HOME, created private (0600), versioned with forward
migrations. Several processes may use it at once (`ir note` from a second terminal during a run): writes take
the lock with BEGIN IMMEDIATE and wait up to `BUSY_MS` for it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from ir.errors import IncidentBusy, IrError
from ir.paths import home
from ir.store import state
from ir.store.records import UNDELIVERED, Change, Draft, Incident, OutboxItem, StepState
from ir.store.timeline import GENESIS, Event, Stored, canonical_json, digest_of, format_recorded, seal, utc_now

BUSY_MS = 10_000
MAX_MESSAGE = 100_000  # characters in one event's message
_UNDELIVERED = f"({', '.join(repr(status) for status in UNDELIVERED)})"  # for SQL: ('pending', 'sending', ...)
MIGRATIONS = [
    """
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY, playbook_id TEXT NOT NULL, playbook_version TEXT NOT NULL,
        playbook_hash TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL, mode TEXT NOT NULL,
        exercise INTEGER NOT NULL, opened_at TEXT NOT NULL, opened_by TEXT NOT NULL, status TEXT NOT NULL,
        closed_at TEXT, cursor TEXT, channel TEXT, ticket TEXT, head_hash TEXT NOT NULL,
        event_count INTEGER NOT NULL);
    CREATE TABLE bundles (incident TEXT NOT NULL REFERENCES incidents(id), playbook_id TEXT NOT NULL,
        text BLOB NOT NULL, PRIMARY KEY (incident, playbook_id));
    CREATE TABLE events (incident TEXT NOT NULL REFERENCES incidents(id), seq INTEGER NOT NULL,
        kind TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL,
        message TEXT NOT NULL, phase TEXT, step TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL, PRIMARY KEY (incident, seq));
    CREATE TABLE steps (incident TEXT NOT NULL REFERENCES incidents(id), path TEXT NOT NULL,
        status TEXT NOT NULL, started_at TEXT, finished_at TEXT, decision TEXT, note TEXT,
        checked TEXT NOT NULL, PRIMARY KEY (incident, path));
    CREATE TABLE variables (incident TEXT NOT NULL REFERENCES incidents(id), scope TEXT NOT NULL,
        name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (incident, scope, name));
    CREATE TABLE outbox (key TEXT PRIMARY KEY, incident TEXT NOT NULL REFERENCES incidents(id),
        integration TEXT NOT NULL, action TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, error TEXT, ref TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE INDEX outbox_incident ON outbox (incident, status);
    """,
    # `ir status` reads the milestones and `ir timeline --kind` its kinds without a pass over every event
    "CREATE INDEX events_kind ON events (incident, kind, seq)",
]
_INCIDENT_FIELDS = [f.name for f in fields(Incident)]


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


class SqliteStore:
    def __init__(self, path: Path | None = None):
        self.path = path or default_path()
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

    def reopen(self) -> SqliteStore:
        return SqliteStore(self.path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def running(self, incident_id: str) -> Iterator[None]:
        """An exclusive lock on a file beside the store (`locks/<incident>.lock`), taken without waiting. The
        operating system drops it when the process ends, even killed, so nothing is ever left held."""
        import fcntl
        import socket

        folder = self.path.parent / "locks"
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / f"{incident_id}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                hint = (f"one process runs an incident at a time: continue there, or stop it and `ir resume "
                        f"{incident_id}`; `ir note` and `ir status` work meanwhile")
                raise IncidentBusy(f"{incident_id} is being run by {holder}", hint=hint) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"ir (pid {os.getpid()} on {socket.gethostname()})".encode())
            yield
        finally:
            os.close(fd)

    # incidents ---------------------------------------------------------------------------------------
    def create(self, incident: Incident, bundle: dict[str, bytes], opened: Draft) -> Event:
        with self._write():
            row = asdict(incident) | {"head_hash": GENESIS, "event_count": 0}
            self.db.execute(f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            list(row.values()))
            self.db.executemany("INSERT INTO bundles VALUES (?, ?, ?)",
                                [(incident.id, pid, text) for pid, text in bundle.items()])
            return self._append(incident.id, opened, state.of_incident(incident))

    def incident(self, incident_id: str) -> Incident:
        row = self.db.execute(f"SELECT {', '.join(_INCIDENT_FIELDS)} FROM incidents WHERE id = ?",
                              (incident_id,)).fetchone()
        if row is None:
            raise IrError(f"no incident {incident_id!r} in {self.path}", hint="run `ir incidents` to list them")
        return _incident(row)

    def incidents(self) -> list[Incident]:
        rows = self.db.execute(f"SELECT {', '.join(_INCIDENT_FIELDS)} FROM incidents ORDER BY opened_at, id")
        return [_incident(r) for r in rows]

    def bundle(self, incident_id: str) -> dict[str, bytes]:
        rows = self.db.execute("SELECT playbook_id, text FROM bundles WHERE incident = ?", (incident_id,))
        return {pid: bytes(text) for pid, text in rows}

    # events and state --------------------------------------------------------------------------------
    def record(self, incident_id: str, drafts: Draft | Iterable[Draft], change: Change | None = None) -> Event:
        with self._write():
            return self._apply(incident_id, [drafts] if isinstance(drafts, Draft) else drafts, change)

    def _apply(self, incident_id: str, drafts: Iterable[Draft], change: Change | None,
               outbox: dict[str, str] | None = None) -> Event:
        change = change or Change()
        event = self._append(incident_id, drafts, state.merged(state.of_change(change),
                                                               {"outbox": outbox} if outbox else {}))
        if change.incident:
            self.db.execute(f"UPDATE incidents SET {', '.join(f'{k} = ?' for k in change.incident)} WHERE id = ?",
                            [*change.incident.values(), incident_id])
        self.db.executemany("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [(incident_id, s.path, s.status, s.started_at, s.finished_at, s.decision, s.note,
                              json.dumps(list(s.checked))) for s in change.steps])
        self.db.executemany("INSERT OR REPLACE INTO variables VALUES (?, ?, ?, ?)",
                            [(incident_id, scope, name, _dumps(value))
                             for (scope, name), value in change.variables.items()])
        return event

    def _append(self, incident_id: str, drafts: Draft | Iterable[Draft], seals: dict[str, dict[str, str]]) -> Event:
        """Chain the drafts onto the incident's head, insert them together and move the head once; the last one
        carries the seals of the state rows written with them (ir.store.state). Without seals (an import) the
        drafts are taken one at a time as they are inserted, so a large import never holds them all."""
        head, count = self.db.execute("SELECT head_hash, event_count FROM incidents WHERE id = ?",
                                      (incident_id,)).fetchone()
        recorded = format_recorded(utc_now())
        last: list[Event] = []
        given: Iterable[Draft] = [drafts] if isinstance(drafts, Draft) else drafts
        sealed = -1  # the draft that carries the seals
        if seals:
            listed = list(given)
            listed[-1] = replace(listed[-1], data={**listed[-1].data, state.KEY: seals})
            given, sealed = listed, len(listed) - 1

        def rows() -> Iterator[tuple[Any, ...]]:
            nonlocal head, count
            draft = None
            for number, draft in enumerate(given):
                if len(draft.message) > MAX_MESSAGE:  # a pasted log file belongs in `ir evidence`, not the chain
                    raise IrError(f"a {draft.kind} message of {len(draft.message)} characters; at most "
                                  f"{MAX_MESSAGE} are recorded",
                                  hint="shorten it, or record the text as a file with `ir evidence`")
                if state.KEY in draft.data and number != sealed:
                    raise AssertionError(f"only the store writes an event's data[{state.KEY!r}]")
                count += 1
                occurred = draft.occurred_at or recorded
                digest, data = seal(incident_id, count, draft.kind, occurred, recorded, draft.actor, draft.message,
                                    draft.phase, draft.step, draft.data, head)
                yield (incident_id, count, draft.kind, occurred, recorded, draft.actor, draft.message, draft.phase,
                       draft.step, data, head, digest)
                prev, head = head, digest
            if draft is not None:
                last.append(Event(incident_id, count, draft.kind, occurred, recorded, draft.actor, draft.message,
                                  draft.phase, draft.step, draft.data, prev, head))

        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        if not last:
            raise ValueError("no events to record")
        self.db.execute("UPDATE incidents SET head_hash = ?, event_count = ? WHERE id = ?", (head, count, incident_id))
        return last[0]

    def events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None,
               limit: int | None = None) -> Iterator[Event]:
        where, values = self._where(incident_id, kinds, since)
        cursor = self.db.execute(f"SELECT * FROM events WHERE {where} ORDER BY seq"
                                 + (" LIMIT ?" if limit is not None else ""),
                                 [*values, limit] if limit is not None else values)
        loads = json.loads
        for row in cursor:
            yield Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], loads(row[9]),
                        row[10], row[11])

    def links(self, incident_id: str) -> Iterator[tuple[int, str, str, str]]:
        cursor = self.db.execute("SELECT * FROM events WHERE incident = ? ORDER BY seq", (incident_id,))
        for incident, seq, kind, occurred, recorded, actor, message, phase, step, data, prev, sealed in cursor:
            # the data as stored: canonical JSON since issue 18
            actual = digest_of(incident, seq, kind, occurred, recorded, actor, message, phase, step, data, prev)
            if actual != sealed:  # stored in another form before, or altered: hash the data as read
                actual = Event(incident, seq, kind, occurred, recorded, actor, message, phase, step, json.loads(data),
                               prev, sealed).digest()
            yield seq, prev, sealed, actual

    def seals(self, incident_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        cursor = self.db.execute("SELECT seq, data FROM events WHERE incident = ? AND instr(data, ?) > 0 ORDER BY seq",
                                 (incident_id, f'"{state.KEY}":{{'))
        for seq, data in cursor:  # the text may also be inside a value: the member itself is what counts
            found = json.loads(data).get(state.KEY)
            if isinstance(found, dict):
                yield seq, found

    def stored(self, incident_id: str, last: int) -> Iterator[Stored]:
        cursor = self.db.execute("SELECT * FROM events WHERE incident = ? AND seq <= ? ORDER BY seq",
                                 (incident_id, last))
        for row in cursor:
            # Stored before issue 18 with the separators ", " and ": ", which canonical JSON has only inside strings
            # (where encoding it again changes nothing).
            yield row if '": ' not in row[9] else (*row[:9], canonical_json(json.loads(row[9])), row[10], row[11])

    def count_events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None) -> int:
        where, values = self._where(incident_id, kinds, since)
        return int(self.db.execute(f"SELECT count(*) FROM events WHERE {where}", values).fetchone()[0])

    @staticmethod
    def _where(incident_id: str, kinds: Sequence[str], since: str | None) -> tuple[str, list[Any]]:
        where, values = ["incident = ?"], [incident_id]
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            values += kinds
        if since is not None:  # recorded_at is UTC text of one width (format_recorded): it sorts as time does
            where.append("recorded_at >= ?")
            values.append(since)
        return " AND ".join(where), values

    def steps(self, incident_id: str) -> dict[str, StepState]:
        rows = self.db.execute("SELECT path, status, started_at, finished_at, decision, note, checked FROM steps "
                               "WHERE incident = ?", (incident_id,))
        return {r[0]: StepState(r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6]))) for r in rows}

    def variables(self, incident_id: str) -> dict[tuple[str, str], Any]:
        rows = self.db.execute("SELECT scope, name, value FROM variables WHERE incident = ?", (incident_id,))
        return {(scope, name): json.loads(value) for scope, name, value in rows}

    # outbox -------------------------------------------------------------------------------------------
    def enqueue(self, item: OutboxItem, requested: Draft) -> OutboxItem:
        now = format_recorded(utc_now())
        with self._write():
            added = self.db.execute("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                    (item.key, item.incident, item.integration, item.action, _dumps(item.payload),
                                     item.status, item.attempts, item.error, _dumps(item.ref), now, now)).rowcount
            if added:
                self._append(item.incident, requested, {"outbox": {item.key: state.outbox_digest(item)}})
        queued = self.outbox_item(item.key)
        assert queued is not None
        return queued

    def outbox(self, incident_id: str | None = None) -> list[OutboxItem]:
        query = "SELECT * FROM outbox" + (" WHERE incident = ?" if incident_id else "") + " ORDER BY created_at, key"
        return [_outbox(r) for r in self.db.execute(query, (incident_id,) if incident_id else ())]

    def outbox_item(self, key: str) -> OutboxItem | None:
        row = self.db.execute("SELECT * FROM outbox WHERE key = ?", (key,)).fetchone()
        return _outbox(row) if row else None

    def begin(self, key: str) -> bool:
        with self._write():
            return self.db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE key = ? AND "
                f"status IN {_UNDELIVERED} RETURNING key",
                (format_recorded(utc_now()), key)).fetchone() is not None

    def amend(self, key: str, payload: dict[str, Any], amended: Draft) -> bool:
        with self._write():
            row = self.db.execute(
                "UPDATE outbox SET payload = ?, updated_at = ? WHERE key = ? AND status IN "
                f"{tuple(s for s in UNDELIVERED if s != 'sending')} RETURNING *",
                (_dumps(payload), format_recorded(utc_now()), key)).fetchone()
            if row:
                item = _outbox(row)
                self._append(item.incident, amended, {"outbox": {key: state.outbox_digest(item)}})
            return row is not None

    def settle(self, key: str, outcome: Draft, *, status: str, ref: dict[str, Any] | None = None,
               error: str | None = None, incident: dict[str, Any] | None = None) -> bool:
        with self._write():
            settled = self.db.execute(
                f"UPDATE outbox SET status = ?, ref = ?, error = ?, updated_at = ? WHERE key = ? AND status IN "
                f"{_UNDELIVERED} RETURNING *",
                (status, _dumps(ref or {}), error, format_recorded(utc_now()), key)).fetchone()
            if settled:  # an action already settled (by another path) is not recorded twice
                row = _outbox(settled)
                self._apply(row.incident, [outcome], Change(incident=incident or {}),
                            {key: state.outbox_digest(row)})
            return settled is not None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode  # one encoder, made once


def _incident(row: tuple[Any, ...]) -> Incident:
    incident = Incident(*row)
    return replace(incident, exercise=bool(incident.exercise))


def _outbox(row: tuple[Any, ...]) -> OutboxItem:
    key, incident, integration, action, payload, status, attempts, error, ref, created, updated = row
    return OutboxItem(key, incident, integration, action, json.loads(payload), status, attempts, error,
                      json.loads(ref), created, updated)
