"""What the two stores share: the tables, and every query on them, written once in the SQL that SQLite and
PostgreSQL both speak (`?` parameters, `ON CONFLICT`, `RETURNING`). A store says how it runs a statement, how it
holds a transaction and how it reads a long result (`ir.store.sqlite`, `ir.store.postgres`).

Appends to one incident are serialised by its `incidents` row: `_append` reads the head and moves it in the
transaction that inserts the events (SQLite holds the whole file from BEGIN IMMEDIATE; PostgreSQL locks the row
with FOR UPDATE), so the chain never forks, whatever the number of writers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, fields, replace
from typing import Any

from ir.errors import IrError, StepAlreadyDone
from ir.store import state
from ir.store.records import UNDELIVERED, Change, Draft, Incident, OutboxItem, StepState, T
from ir.store.timeline import GENESIS, Event, Stored, canonical_json, digest_of, format_recorded, seal, utc_now

MAX_MESSAGE = 100_000  # characters in one event's message
PAGE = 2_000  # rows read at a time where a store reads a long result in pages
_UNDELIVERED = f"({', '.join(repr(status) for status in UNDELIVERED)})"  # for SQL: ('pending', 'sending', ...)
_UNSENT = f"({', '.join(repr(status) for status in UNDELIVERED if status != 'sending')})"
INCIDENT_FIELDS = [f.name for f in fields(Incident)]
EVENT_COLUMNS = "incident, seq, kind, occurred_at, recorded_at, actor, message, phase, step, data, prev_hash, hash"
# The tables, as both stores create them ({blob}: the type of the stored playbooks' bytes), and the index on kinds
# (the embedded store's second migration).
TABLES = """
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY, playbook_id TEXT NOT NULL, playbook_version TEXT NOT NULL,
        playbook_hash TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL, mode TEXT NOT NULL,
        exercise INTEGER NOT NULL, opened_at TEXT NOT NULL, opened_by TEXT NOT NULL, status TEXT NOT NULL,
        closed_at TEXT, cursor TEXT, channel TEXT, ticket TEXT, head_hash TEXT NOT NULL,
        event_count INTEGER NOT NULL);
    CREATE TABLE bundles (incident TEXT NOT NULL REFERENCES incidents(id), playbook_id TEXT NOT NULL,
        text {blob} NOT NULL, PRIMARY KEY (incident, playbook_id));
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
    """
KINDS_INDEX = "CREATE INDEX events_kind ON events (incident, kind, seq)"
# The order actions were queued in (the embedded store's third migration, the team store's second): the seq of each
# one's integration.requested event, which the incident's lock hands out one at a time, where the clock's
# milliseconds tie and differ between machines. Rows from before take it from their event ({key}: the event data's
# key, in the store's SQL).
QUEUED = """
    ALTER TABLE outbox ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET queued = coalesce((SELECT min(seq) FROM events WHERE events.incident = outbox.incident
        AND events.kind = 'integration.requested' AND {key} = outbox.key), 0)
    """


class SqlStore:
    """The queries; a subclass supplies `_run`, `_many`, `_transact` and `_scan`, and names itself in `where`."""

    where: str  # the store as named in messages: its file, or its URL without a password
    _pending: Event | None = None  # the last event the write in progress appends
    CONTAINS = "instr({}, ?) > 0"  # SQL for "the column holds this text"
    FOR_UPDATE = ""  # how a transaction locks the incident row it reads the head from

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute one statement; a cursor to read its rows from."""
        raise NotImplementedError

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _transact(self, work: Callable[[], T], *, replayable: bool = True,
                  committed: Callable[[Event], T] | None = None) -> T:
        """Run `work` in one write transaction: all of it is committed, or none. A store that can lose its
        connection mid-write may run `work` again when `replayable` (its input is not a stream that was partly
        read), unless the last event it appended is found committed: then `committed(that event)` is the result."""
        raise NotImplementedError

    def _scan(self, columns: str, where: str, values: Sequence[Any], limit: int | None = None) -> Iterator[Any]:
        """The incident's events that match, in seq order (`where` has the incident's condition)."""
        raise NotImplementedError

    def snapshot(self, read: Callable[[], T]) -> T:
        raise NotImplementedError

    def running(self, incident_id: str, *, take_over: bool = False) -> AbstractContextManager[None]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # incidents ---------------------------------------------------------------------------------------
    def create(self, incident: Incident, bundle: dict[str, bytes], opened: Draft) -> Event:
        def work() -> Event:
            self._insert(replace(incident, head_hash=GENESIS, event_count=0), bundle)
            return self._append(incident.id, opened, state.of_incident(incident))

        return self._transact(work, committed=lambda event: event)

    def _insert(self, incident: Incident, bundle: dict[str, bytes]) -> None:
        row = asdict(incident) | {"exercise": int(incident.exercise)}
        self._run(f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        self._many("INSERT INTO bundles VALUES (?, ?, ?)", [(incident.id, pid, text) for pid, text in bundle.items()])

    def incident(self, incident_id: str) -> Incident:
        row = self._run(f"SELECT {', '.join(INCIDENT_FIELDS)} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise IrError(f"no incident {incident_id!r} in {self.where}", hint="run `ir incidents` to list them")
        return _incident(row)

    def incidents(self) -> list[Incident]:
        rows = self._run(f"SELECT {', '.join(INCIDENT_FIELDS)} FROM incidents ORDER BY opened_at, id").fetchall()
        return [_incident(r) for r in rows]

    def bundle(self, incident_id: str) -> dict[str, bytes]:
        rows = self._run("SELECT playbook_id, text FROM bundles WHERE incident = ?", (incident_id,)).fetchall()
        return {pid: bytes(text) for pid, text in rows}

    # events and state --------------------------------------------------------------------------------
    def record(self, incident_id: str, drafts: Draft | Iterable[Draft], change: Change | None = None) -> Event:
        given = [drafts] if isinstance(drafts, Draft) else drafts
        return self._transact(lambda: self._apply(incident_id, given, change),
                              replayable=isinstance(given, (list, tuple)), committed=lambda event: event)

    def _apply(self, incident_id: str, drafts: Iterable[Draft], change: Change | None,
               outbox: dict[str, str] | None = None) -> Event:
        change = change or Change()
        event = self._append(incident_id, drafts, state.merged(state.of_change(change),
                                                               {"outbox": outbox} if outbox else {}))
        if change.open_steps:  # after _append: the incident's writers are serialised from there to the commit
            done = self._run(f"SELECT path, status FROM steps WHERE incident = ? AND path IN "
                             f"({', '.join('?' * len(change.open_steps))}) AND status IN ('completed', 'skipped')",
                             [incident_id, *change.open_steps]).fetchone()
            if done:
                raise StepAlreadyDone(done[0], done[1])
        if change.incident:
            self._run(f"UPDATE incidents SET {', '.join(f'{k} = ?' for k in change.incident)} WHERE id = ?",
                      [*change.incident.values(), incident_id])
        if change.steps:  # (a note changes no state: no statement, no round trip to a server)
            self._many("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident, path) DO UPDATE SET "
                       "status = excluded.status, started_at = excluded.started_at, finished_at = "
                       "excluded.finished_at, decision = excluded.decision, note = excluded.note, "
                       "checked = excluded.checked",
                       [(incident_id, s.path, s.status, s.started_at, s.finished_at, s.decision, s.note,
                         json.dumps(list(s.checked))) for s in change.steps])
        if change.variables:
            self._many("INSERT INTO variables VALUES (?, ?, ?, ?) ON CONFLICT (incident, scope, name) DO UPDATE SET "
                       "value = excluded.value",
                       [(incident_id, scope, name, _dumps(value)) for (scope, name), value in change.variables.items()])
        return event

    def _append(self, incident_id: str, drafts: Draft | Iterable[Draft], seals: dict[str, dict[str, str]]) -> Event:
        """Chain the drafts onto the incident's head, insert them together and move the head once; the last one
        carries the seals of the state rows written with them (ir.store.state). Without seals (an import) the
        drafts are taken one at a time as they are inserted, so a large import never holds them all."""
        found = self._run(f"SELECT head_hash, event_count FROM incidents WHERE id = ?{self.FOR_UPDATE}",
                          (incident_id,)).fetchone()
        if found is None:
            raise IrError(f"no incident {incident_id!r} in {self.where}", hint="run `ir incidents` to list them")
        head, count = found
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
                self._pending = last[0]

        self._many("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        if not last:
            raise ValueError("no events to record")
        self._run("UPDATE incidents SET head_hash = ?, event_count = ? WHERE id = ?", (head, count, incident_id))
        self._appended(incident_id, count)
        return last[0]

    def _appended(self, incident_id: str, count: int) -> None:
        """Events up to `count` are being committed (PostgreSQL tells those who follow the incident)."""

    def events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None,
               limit: int | None = None, after: int = 0) -> Iterator[Event]:
        where, values = self._where(incident_id, kinds, since, after)
        loads = json.loads
        for row in self._scan(EVENT_COLUMNS, where, values, limit):
            yield Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], loads(row[9]),
                        row[10], row[11])

    def links(self, incident_id: str) -> Iterator[tuple[int, str, str, str]]:
        for incident, seq, kind, occurred, recorded, actor, message, phase, step, data, prev, sealed in self._scan(
                EVENT_COLUMNS, "incident = ?", (incident_id,)):
            # the data as stored: canonical JSON since issue 18
            actual = digest_of(incident, seq, kind, occurred, recorded, actor, message, phase, step, data, prev)
            if actual != sealed:  # stored in another form before, or altered: hash the data as read
                actual = Event(incident, seq, kind, occurred, recorded, actor, message, phase, step, json.loads(data),
                               prev, sealed).digest()
            yield seq, prev, sealed, actual

    def seals(self, incident_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for seq, data in self._scan("seq, data", f"incident = ? AND {self.CONTAINS.format('data')}",
                                    (incident_id, f'"{state.KEY}":{{')):
            found = json.loads(data).get(state.KEY)  # the text may also be inside a value: the member is what counts
            if isinstance(found, dict):
                yield seq, found

    def stored(self, incident_id: str, last: int) -> Iterator[Stored]:
        for row in self._scan(EVENT_COLUMNS, "incident = ? AND seq <= ?", (incident_id, last)):
            # Stored before issue 18 with the separators ", " and ": ", which canonical JSON has only inside strings
            # (where encoding it again changes nothing).
            yield tuple(row) if '": ' not in row[9] else (*row[:9], canonical_json(json.loads(row[9])), row[10],
                                                          row[11])

    def count_events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None) -> int:
        where, values = self._where(incident_id, kinds, since)
        return int(self._run(f"SELECT count(*) FROM events WHERE {where}", values).fetchone()[0])

    @staticmethod
    def _where(incident_id: str, kinds: Sequence[str], since: str | None, after: int = 0) -> tuple[str, list[Any]]:
        where, values = ["incident = ?"], list[Any]([incident_id])
        if after:
            where.append("seq > ?")
            values.append(after)
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            values += kinds
        if since is not None:  # recorded_at is UTC text of one width (format_recorded): it sorts as time does
            where.append("recorded_at >= ?")
            values.append(since)
        return " AND ".join(where), values

    def steps(self, incident_id: str) -> dict[str, StepState]:
        rows = self._run("SELECT path, status, started_at, finished_at, decision, note, checked FROM steps "
                         "WHERE incident = ?", (incident_id,)).fetchall()
        return {r[0]: StepState(r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6]))) for r in rows}

    def variables(self, incident_id: str) -> dict[tuple[str, str], Any]:
        rows = self._run("SELECT scope, name, value FROM variables WHERE incident = ?", (incident_id,)).fetchall()
        return {(scope, name): json.loads(value) for scope, name, value in rows}

    # outbox -------------------------------------------------------------------------------------------
    def enqueue(self, item: OutboxItem, requested: Draft) -> OutboxItem:
        now = format_recorded(utc_now())

        def work() -> None:
            added = self._run("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
                              "ON CONFLICT (key) DO NOTHING RETURNING key",
                              (item.key, item.incident, item.integration, item.action, _dumps(item.payload),
                               item.status, item.attempts, item.error, _dumps(item.ref), now, now)).fetchone()
            if added:
                event = self._append(item.incident, requested, {"outbox": {item.key: state.outbox_digest(item)}})
                self._run("UPDATE outbox SET queued = ? WHERE key = ?", (event.seq, item.key))

        self._transact(work, committed=lambda event: None)
        queued = self.outbox_item(item.key)
        assert queued is not None
        return queued

    def outbox(self, incident_id: str | None = None) -> list[OutboxItem]:
        query = "SELECT * FROM outbox" + (" WHERE incident = ?" if incident_id else "") + " ORDER BY incident, queued"
        return [_outbox(r) for r in self._run(query, (incident_id,) if incident_id else ()).fetchall()]

    def outbox_item(self, key: str) -> OutboxItem | None:
        row = self._run("SELECT * FROM outbox WHERE key = ?", (key,)).fetchone()
        return _outbox(row) if row else None

    def begin(self, key: str) -> bool:
        return self._transact(lambda: self._run(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE key = ? AND "
            f"status IN {_UNDELIVERED} RETURNING key", (format_recorded(utc_now()), key)).fetchone() is not None)

    def amend(self, key: str, payload: dict[str, Any], amended: Draft) -> bool:
        def work() -> bool:
            row = self._run(f"UPDATE outbox SET payload = ?, updated_at = ? WHERE key = ? AND status IN {_UNSENT} "
                            "RETURNING *", (_dumps(payload), format_recorded(utc_now()), key)).fetchone()
            if row:
                item = _outbox(row)
                self._append(item.incident, amended, {"outbox": {key: state.outbox_digest(item)}})
            return row is not None

        return self._transact(work, committed=lambda event: True)

    def settle(self, key: str, outcome: Draft, *, status: str, ref: dict[str, Any] | None = None,
               error: str | None = None, incident: dict[str, Any] | None = None) -> bool:
        def work() -> bool:
            settled = self._run(
                f"UPDATE outbox SET status = ?, ref = ?, error = ?, updated_at = ? WHERE key = ? AND status IN "
                f"{_UNDELIVERED} RETURNING *",
                (status, _dumps(ref or {}), error, format_recorded(utc_now()), key)).fetchone()
            if settled:  # an action already settled (by another path) is not recorded twice
                row = _outbox(settled)
                self._apply(row.incident, [outcome], Change(incident=incident or {}),
                            {key: state.outbox_digest(row)})
            return settled is not None

        return self._transact(work, committed=lambda event: True)

    # moving an incident between stores ----------------------------------------------------------------
    def adopt(self, incident: Incident, bundle: dict[str, bytes], events: Iterable[Stored],
              steps: Iterable[StepState], variables: dict[tuple[str, str], Any], outbox: Iterable[OutboxItem]) -> None:
        """Take in an incident from another store as it is there: its events as stored (so their hashes, and the
        head, are the same), its state rows and its outbox, in one transaction."""
        def work() -> None:
            if self._run("SELECT 1 FROM incidents WHERE id = ?", (incident.id,)).fetchone():
                raise IrError(f"{self.where} already holds an incident {incident.id!r}",
                              hint="nothing was copied; `ir incidents` there shows it")
            self._insert(incident, bundle)
            self._many("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
            self._many("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [(incident.id, s.path, s.status, s.started_at, s.finished_at, s.decision, s.note,
                         json.dumps(list(s.checked))) for s in steps])
            self._many("INSERT INTO variables VALUES (?, ?, ?, ?)",
                       [(incident.id, scope, name, _dumps(value)) for (scope, name), value in variables.items()])
            self._many("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(i.key, i.incident, i.integration, i.action, _dumps(i.payload), i.status, i.attempts, i.error,
                         _dumps(i.ref), i.created_at, i.updated_at, i.queued) for i in outbox])
            self._appended(incident.id, incident.event_count)

        self._transact(work, replayable=False)


_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode  # one encoder, made once


def _incident(row: Sequence[Any]) -> Incident:
    incident = Incident(*row)
    return replace(incident, exercise=bool(incident.exercise))


def _outbox(row: Sequence[Any]) -> OutboxItem:
    key, incident, integration, action, payload, status, attempts, error, ref, created, updated, queued = row
    return OutboxItem(key, incident, integration, action, json.loads(payload), status, attempts, error,
                      json.loads(ref), created, updated, queued)
