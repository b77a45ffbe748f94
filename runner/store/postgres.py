"""The team's store: PostgreSQL, for one incident shared by responders on many machines. Chosen by a URL
(`IR_STORE=postgresql://ir@db.example/ir`, or `[store] url` in ir.toml); psycopg 3 is imported only then.

The queries are `ir.store.sql`'s. What PostgreSQL adds:
- Appends to an incident are serialised by a row lock on its `incidents` row (SELECT ... FOR UPDATE), so any
  number of writers on any number of machines extend one chain, never a fork or a repeated sequence number.
- One process drives an incident: it holds a session advisory lock on a connection of its own, which the server
  lets go when that connection or process dies, and a row in `drivers` naming it. `running(take_over=True)` ends
  the holder's connection and takes the lock; every write transaction of a driver checks that its row is still its
  own (a fence), so a driver that was taken over stops at its next write instead of sending anything.
- Each append notifies channel `ir_events` with the incident's id (delivered on commit): `wait` sleeps on it.
- The events table refuses UPDATE, DELETE and TRUNCATE (a trigger), whoever asks; README.md shows the grants.
- A lost connection (a restart of the server, a dropped network) is said in one line and reconnected; a write
  whose COMMIT was in flight is looked up by the hash of its last event: committed, or done again, never twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors

from ir.errors import IncidentBusy, IrError
from ir.store.records import T
from ir.store.sql import KINDS_INDEX, PAGE, QUEUED, TABLES, SqlStore
from ir.store.sqlite import busy, holder_text
from ir.store.timeline import Event

LOCKS = 0x6972  # the advisory locks' first key ("ir"); the second is hashtext(incident id)
RECONNECT_WAIT = 300.0  # seconds a lost connection is tried again before the command gives up
CHANNEL = "ir_events"
# TCP keepalives, so that a connection whose network dropped is found lost in about 25 s, not the system's 2 hours
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
_APPEND_ONLY = """
    CREATE FUNCTION ir_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the timeline is append-only: % on events is refused', TG_OP
            USING HINT = 'ir records a correction as a new event';
    END $$;
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION ir_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION ir_append_only();
"""
MIGRATIONS = [
    TABLES.format(blob="BYTEA") + f"""
    {KINDS_INDEX};
    CREATE INDEX events_hash ON events (incident, hash);
    CREATE TABLE drivers (incident TEXT PRIMARY KEY REFERENCES incidents(id), holder TEXT NOT NULL,
        token TEXT NOT NULL, backend INTEGER NOT NULL);
    """ + _APPEND_ONLY,
    QUEUED.format(key="(events.data::json ->> 'key')"),
]


def shown(url: str) -> str:
    """The URL as messages name it: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


class PostgresStore(SqlStore):
    CONTAINS = "strpos({}, ?) > 0"
    FOR_UPDATE = " FOR UPDATE"

    def __init__(self, url: str, *, say: Callable[[str], None] | None = None,
                 driving: dict[str, tuple[str, psycopg.Connection[Any]]] | None = None):
        self.url, self.where = url, shown(url)
        self.say = say or (lambda text: None)
        # incident -> (this process's token in `drivers`, the connection that holds its advisory lock); shared with
        # the connections `reopen` makes, so a courier thread is fenced like the run
        self.driving = {} if driving is None else driving
        self._sql: dict[str, str] = {}
        self._listener: psycopg.Connection[Any] | None = None
        self._in_transaction = False
        self._pending: Event | None = None  # the last event of the write in flight
        self.db = self._connect()
        self._migrate()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="ir", **KEEPALIVES)
        except psycopg.Error as exc:
            raise IrError(f"the store {self.where} cannot be reached: {_said(exc)}",
                          hint="check IR_STORE (or [store] url in ir.toml) and that the server is up; a password "
                               "comes from PGPASSWORD or ~/.pgpass") from None

    def _migrate(self) -> None:
        version = self._version()
        if version > len(MIGRATIONS):
            raise IrError(f"the store {self.where} was written by a newer ir (schema {version})",
                          hint="upgrade ir (pip install -U 'ir[postgres]')")
        if version == len(MIGRATIONS):
            return
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCKS,))  # one process migrates at a time
                for number in range(self._version(), len(MIGRATIONS)):
                    self.db.execute(MIGRATIONS[number].encode())  # several statements: no parameters
                    self.db.execute("CREATE TABLE IF NOT EXISTS ir_schema (version INTEGER NOT NULL)")
                    self.db.execute("DELETE FROM ir_schema")
                    self.db.execute("INSERT INTO ir_schema VALUES (%s)", (number + 1,))
        except errors.InsufficientPrivilege as exc:
            raise IrError(f"the store {self.where} is at schema {version} and this ir needs "
                          f"{len(MIGRATIONS)}, which its user may not create: {_said(exc)}",
                          hint="open it once as the role that owns the schema (see README.md, Team mode), "
                               "then again as yourself") from None

    def _version(self) -> int:
        # pg_tables, read with the statement's snapshot: to_regclass would answer from this session's catalog cache,
        # which still says "no such table" after another process's migration committed while this one waited for
        # the migration lock (seen: 1 in 30 processes opening a new database at once failed on "already exists")
        if self.db.execute("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND "
                           "tablename = 'ir_schema'").fetchone() is None:
            return 0
        row = self.db.execute("SELECT version FROM ir_schema").fetchone()
        return int(row[0]) if row else 0

    def reopen(self) -> PostgresStore:
        return PostgresStore(self.url, say=self.say, driving=self.driving)

    def close(self) -> None:
        for conn in (self.db, self._listener):
            if conn is not None:
                conn.close()

    def __del__(self) -> None:  # a store dropped without close() (a thread's reopen) lets its connections go
        if "db" in vars(self):
            self.close()

    # running statements ------------------------------------------------------------------------------
    def _text(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = sql.replace("?", "%s")  # the shared queries' parameters, as psycopg writes them
        return found

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._in_transaction:
            return self.db.execute(self._text(sql), params)
        return self._again(lambda: self.db.execute(self._text(sql), params))  # a read: read again once back

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.db.cursor() as cursor:
            cursor.executemany(self._text(sql), rows)

    def _scan(self, columns: str, where: str, values: Sequence[Any], limit: int | None = None) -> Iterator[Any]:
        """In pages of PAGE rows by seq, each its own query: no cursor held open between them, so other queries
        may run on the connection meanwhile (and a lost connection loses one page, read again)."""
        at = columns.split(", ").index("seq")
        after, left = 0, limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            rows = self._run(f"SELECT {columns} FROM events WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
                             [*values, after, size]).fetchall()
            yield from rows
            if len(rows) < size:
                return
            after, left = rows[-1][at], None if left is None else left - len(rows)

    def _transact(self, work: Callable[[], T], *, replayable: bool = True,
                  committed: Callable[[Event], T] | None = None) -> T:
        while True:
            self._pending = None
            try:
                with self.db.transaction():
                    self._in_transaction = True
                    try:
                        self._fence()
                        return work()
                    finally:
                        self._in_transaction = False
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if not replayable:
                    raise
                continue  # rolled back whole: done again
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not self.db.broken:
                    raise IrError(f"the store {self.where} refused a write: {_said(exc)}") from None
                pending = self._in_flight()
                self._back(exc)
                if pending is not None and committed is not None and self._committed(pending):
                    return committed(pending)  # the COMMIT had gone through: not done twice
                if not replayable:
                    raise IrError(f"the connection to {self.where} was lost during a write that cannot be done "
                                  "again from here; nothing of it was committed", hint="run the command again") \
                        from None

    def snapshot(self, read: Callable[[], T]) -> T:
        """A REPEATABLE READ, READ ONLY transaction: its first query fixes what every later one sees. A lost
        connection reads the whole of it again once back."""
        if self._in_transaction:
            return read()

        def whole() -> T:
            with self.db.transaction():
                self._in_transaction = True
                try:
                    self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return read()
                finally:
                    self._in_transaction = False

        return self._again(whole)

    def _in_flight(self) -> Event | None:
        """The last event of the write that was lost, once `_append` made it (a call: work() sets it)."""
        return self._pending

    def _committed(self, event: Event) -> bool:
        return self._run("SELECT 1 FROM events WHERE incident = ? AND hash = ?",
                         (event.incident, event.hash)).fetchone() is not None

    def _again(self, read: Callable[[], T]) -> T:
        while True:
            try:
                return read()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not self.db.broken:
                    raise IrError(f"the store {self.where} refused a query: {_said(exc)}") from None
                self._back(exc)

    def _back(self, lost: Exception) -> None:
        """Connect again after `lost`, saying so once, for up to RECONNECT_WAIT seconds."""
        self.say(f"the store {self.where} is unreachable ({_said(lost)}): reconnecting; nothing committed is lost")
        deadline, pause = time.monotonic() + RECONNECT_WAIT, 0.2
        while True:
            try:
                self.db = psycopg.connect(self.url, autocommit=True, connect_timeout=5, application_name="ir",
                                          **KEEPALIVES)
                self.say(f"reconnected to {self.where}")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise IrError(f"the store {self.where} is still unreachable after {RECONNECT_WAIT:.0f} s: "
                                  f"{_said(exc)}", hint="what was committed is kept: run the command again once "
                                                        "the server is back (`ir resume` goes on where it was)") \
                        from None
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _appended(self, incident_id: str, count: int) -> None:
        self.db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, incident_id))

    # one driver per incident ---------------------------------------------------------------------------
    def _fence(self) -> None:
        """While this process drives incidents, each write checks that it still does (nobody took over)."""
        for incident_id, (token, lock) in list(self.driving.items()):
            # whether the row's backend still holds the lock: psycopg finds a connection broken only once it uses
            # it, and the lock's connection is idle (a server restart, a dropped network, a terminated backend)
            row = self.db.execute("SELECT d.token, d.holder, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = d.backend "
                                  "AND l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = "
                                  "hashtext(d.incident)::oid) FROM drivers d WHERE d.incident = %s",
                                  (LOCKS, incident_id)).fetchone()
            if row is None or row[0] != token:
                raise IncidentBusy(f"{incident_id} was taken over: " + (f"{row[1]} drives it now" if row else
                                                                        "another run drove it, and has let go since"),
                                   hint="this run stopped before its next write, so it sent nothing more; what it "
                                        f"recorded before is kept: `ir timeline {incident_id}`")
            if lock.broken or lock.closed or not row[2]:  # the lock went with its connection: take it again
                _let_go(lock, incident_id)
                lock = self._lock(incident_id)
                # named at once (autocommit), whatever becomes of this write: `drivers` and a take-over find it
                lock.execute("UPDATE drivers SET backend = pg_backend_pid() WHERE incident = %s AND token = %s",
                             (incident_id, token))
                self.driving[incident_id] = (token, lock)

    def _lock(self, incident_id: str) -> psycopg.Connection[Any]:
        """A connection holding the incident's advisory lock, or IncidentBusy naming who holds it."""
        lock = self._connect()
        taken = lock.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCKS, incident_id)).fetchone()
        if not taken or not taken[0]:
            lock.close()
            raise busy(incident_id, self._holder(incident_id), take_over=True)
        return lock

    def _holder(self, incident_id: str) -> str:
        row = self.db.execute("SELECT holder FROM drivers WHERE incident = %s", (incident_id,)).fetchone()
        return str(row[0]) if row else "another process"

    @contextmanager
    def running(self, incident_id: str, *, take_over: bool = False) -> Iterator[None]:
        if incident_id in self.driving:  # this process drives it already (a flush from its own run)
            raise busy(incident_id, self._holder(incident_id), take_over=False)
        try:
            lock = self._lock(incident_id)
        except IncidentBusy:
            if not take_over:
                raise
            lock = self._take(incident_id)
        token = uuid.uuid4().hex
        try:
            # the row names the lock connection's backend, for `drivers` and a take-over
            self.db.execute("INSERT INTO drivers VALUES (%s, %s, %s, %s) ON CONFLICT (incident) DO UPDATE SET "
                            "holder = excluded.holder, token = excluded.token, backend = excluded.backend",
                            (incident_id, holder_text(), token, lock.info.backend_pid))
            self.driving[incident_id] = (token, lock)
            yield
        finally:
            held = self.driving.pop(incident_id, (token, lock))[1]  # taken again after a lost connection, maybe
            try:
                self._again(lambda: self.db.execute("DELETE FROM drivers WHERE incident = %s AND token = %s",
                                                    (incident_id, token)))
            finally:
                for conn in {id(c): c for c in (lock, held)}.values():
                    _let_go(conn, incident_id)

    def _take(self, incident_id: str) -> psycopg.Connection[Any]:
        """End the connection that holds the incident's lock (its process may be gone, or hung), then hold it."""
        row = self.db.execute("SELECT backend FROM drivers WHERE incident = %s", (incident_id,)).fetchone()
        deadline = time.monotonic() + 10
        while True:
            if row:
                self.db.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            try:
                return self._lock(incident_id)
            except IncidentBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                row = self.db.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND "
                                      "objid = hashtext(%s)::oid AND granted", (LOCKS, incident_id)).fetchone()

    def drivers(self) -> dict[str, str]:
        """Who drives each incident being run: the `drivers` rows whose lock connection still holds the lock."""
        rows = self._run("SELECT d.incident, d.holder FROM drivers d JOIN pg_locks l ON l.pid = d.backend AND "
                         "l.locktype = 'advisory' AND l.granted").fetchall()
        return {incident: holder for incident, holder in rows}

    # following ----------------------------------------------------------------------------------------
    def wait(self, incident_id: str, count: int, timeout: float) -> bool:
        """Sleep until the incident has more than `count` events (True) or `timeout` seconds pass (False): on the
        server's notifications, not by asking it again and again."""
        if self._listener is None:
            self._listener = self._connect()
            self._listener.execute(f"LISTEN {CHANNEL}")
        if self.incident(incident_id).event_count > count:
            return True
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for note in self._listener.notifies(timeout=left, stop_after=1):
                if note.payload == incident_id:
                    return True
        return self.incident(incident_id).event_count > count


def _let_go(lock: psycopg.Connection[Any], incident_id: str) -> None:
    """Unlock, then close. Only closing would let go too, but the server ends the session after the client has
    gone on: a run that another command follows at once (`ir flush` after `ir run`) found it still held."""
    try:
        if not lock.broken and not lock.closed:
            lock.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCKS, incident_id))
    except psycopg.Error:
        pass  # the connection went meanwhile: so did its lock
    finally:
        lock.close()


def _said(exc: Exception) -> str:
    """A driver error in one line (the server's message, without its context lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

