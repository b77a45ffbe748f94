"""The team store's own code, in process against the test cluster (tests/postgres_server.py): who drives an incident
(the advisory lock, the `drivers` rows, a take-over and the fence it trips), following on LISTEN/NOTIFY, the schema
migration and what it refuses, and what a lost connection does (said once, reconnected, a write whose COMMIT was
lost neither lost nor done twice). Nothing of ir is patched: connections are cut from the server's side
(pg_terminate_backend) or by a relay in front of its socket (`Relay`), and refusals come from the server itself
(a role without CREATE, a lock timeout, a trigger). Fast, so that they run for every mutant of ir.store.postgres."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ir.errors import IncidentBusy, IrError
from ir.store.postgres import PostgresStore, shown
from ir.store.records import Draft, Incident

from runs import store_with_incident

LOCK_KEY = 0x6972  # the advisory locks' first key ("ir"): every version of ir must agree on it
TAKEN_OVER_HINT = ("this run stopped before its next write, so it sent nothing more; what it recorded before is "
                   "kept: `ir timeline IR-1`")


def busy_hint(take_over: bool) -> str:
    return ("one process drives an incident at a time: continue there, or stop it and `ir resume IR-1`"
            + ("; if that run was abandoned, `ir resume IR-1 --take-over`" if take_over else "")
            + "; `ir note`, `ir step` and `ir status` work meanwhile")


@pytest.fixture
def url(postgres: Any) -> str:
    return str(postgres.database())


@pytest.fixture
def opened(url: str) -> Iterator[Callable[..., PostgresStore]]:
    """`opened()`: a store on the test's database (`opened(other_url, say=...)`), closed after the test."""
    made: list[PostgresStore] = []

    def make(where: str | None = None, **options: Any) -> PostgresStore:
        store = PostgresStore(where or url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def note(message: str) -> Draft:
    return Draft("note", "dana", message)


def messages(store: PostgresStore, incident: str = "IR-1") -> list[str]:
    return [e.message for e in store.events(incident)]


def open_incident(store: PostgresStore, incident: str) -> None:
    store.create(Incident(incident, "demo", "1.0.0", "h" * 64, "Other", "low", "live", False,
                          "2026-03-29T21:00:00.000Z", "dana"), {}, Draft("incident.opened", "dana", "opened"))


def advisory_locks(postgres: Any, url: str) -> list[tuple[Any, ...]]:
    """The advisory locks granted in the test's database: (first key, second key is hashtext('IR-1'), pid)."""
    return postgres.sql(url, "SELECT classid::int, objid = hashtext('IR-1')::oid, pid FROM pg_locks WHERE "
                             "locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database "
                             "WHERE datname = current_database()) ORDER BY pid")


def alive(postgres: Any, pid: int) -> bool:
    return bool(postgres.sql(postgres.url(), f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}"))


def terminate(postgres: Any, pid: int) -> None:
    postgres.sql(postgres.url(), f"SELECT pg_terminate_backend({pid}, 5000)")  # returns once it has gone


def drivers_rows(postgres: Any, url: str) -> list[tuple[Any, ...]]:
    return postgres.sql(url, "SELECT incident, holder, token, backend FROM drivers ORDER BY incident")


# the URL -----------------------------------------------------------------------------------------------------------
def test_a_url_is_named_without_its_password():
    assert shown("postgresql://ir:s3cret@db.example:5433/ir?sslmode=require") == \
        "postgresql://ir@db.example:5433/ir?sslmode=require"
    assert shown("postgresql://:s3cret@db.example/ir") == "postgresql://db.example/ir"
    assert shown("postgresql://ir:@db.example/ir") == "postgresql://ir@db.example/ir"
    assert shown("postgresql://ir@db.example/ir") == "postgresql://ir@db.example/ir"
    assert shown("postgresql:///ir?host=/run/postgresql") == "postgresql:///ir?host=/run/postgresql"


def test_a_store_is_named_without_its_password_and_one_that_cannot_be_reached_says_so_in_one_line(
        postgres, tmp_path):
    reached = PostgresStore(postgres.database().replace("postgresql://postgres@", "postgresql://postgres:s3cret@"))
    assert reached.where == reached.url.replace(":s3cret@", "@") and "s3cret" not in reached.where
    reached.close()

    nowhere = f"postgresql://ir:s3cret@/ir?host={tmp_path}&port=5432"
    with pytest.raises(IrError) as raised:
        PostgresStore(nowhere)
    assert raised.value.message == (f"the store postgresql://ir@/ir?host={tmp_path}&port=5432 cannot be reached: "
                                    f'connection is bad: connection to server on socket "{tmp_path}/.s.PGSQL.5432" '
                                    "failed: No such file or directory")
    assert raised.value.hint == ("check IR_STORE (or [store] url in ir.toml) and that the server is up; a password "
                                 "comes from PGPASSWORD or ~/.pgpass")


def test_a_second_process_is_told_who_drives_and_a_take_over_fences_the_first(opened, postgres, url):
    first = store_with_incident(opened(), "live")
    second = opened()
    with first.running("IR-1"):
        first.record("IR-1", note("while driving"))  # its own fence passes
        ((incident, holder, token, backend),) = drivers_rows(postgres, url)
        assert incident == "IR-1" and backend != first.db.info.backend_pid
        assert advisory_locks(postgres, url) == [(LOCK_KEY, True, backend)]
        with pytest.raises(IncidentBusy) as raised, second.running("IR-1"):
            pass
        assert raised.value.message == f"IR-1 is being run by {holder}"
        assert raised.value.hint == busy_hint(take_over=True)
        assert drivers_rows(postgres, url) == [(incident, holder, token, backend)]  # the refused one changed nothing

        with second.running("IR-1", take_over=True):
            ((_, taker, taken, now),) = drivers_rows(postgres, url)
            assert taken != token and now != backend and not alive(postgres, backend)
            assert advisory_locks(postgres, url) == [(LOCK_KEY, True, now)]
            assert second.drivers() == first.drivers() == {"IR-1": taker}
            with pytest.raises(IncidentBusy) as fenced:
                first.record("IR-1", note("too late"))
            assert fenced.value.message == f"IR-1 was taken over: {taker} drives it now"
            assert fenced.value.hint == TAKEN_OVER_HINT
            with pytest.raises(IncidentBusy, match="was taken over"):
                first.reopen().record("IR-1", note("from its courier"))  # the courier is fenced like its run
            second.record("IR-1", note("taken over"))
        with pytest.raises(IncidentBusy) as gone:
            first.record("IR-1", note("later still"))
        assert gone.value.message == "IR-1 was taken over: another run drove it, and has let go since"
    assert messages(first) == ["opened", "while driving", "taken over"]
    assert first.incident("IR-1").event_count == 3
    assert drivers_rows(postgres, url) == [] and advisory_locks(postgres, url) == []
    first.record("IR-1", note("nobody drives it"))  # not driving: no fence


# the schema --------------------------------------------------------------------------------------------------------
def test_a_new_database_gets_the_schema_once_and_a_newer_one_is_refused(opened, postgres, url):
    postgres.sql(url, "CREATE TABLE ir_schema (version INTEGER NOT NULL)")  # made, but nothing in it: schema 0
    first = store_with_incident(opened(), "live")
    second = opened()  # at the schema already: nothing is made again
    assert messages(second) == ["opened"]
    assert postgres.sql(url, "SELECT version FROM ir_schema") == [(2,)]
    assert {name for (name,) in postgres.sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")} \
        == {"ir_schema", "incidents", "bundles", "events", "steps", "variables", "outbox", "drivers"}
    with pytest.raises(Exception, match="the timeline is append-only: DELETE on events is refused"):
        postgres.sql(url, "DELETE FROM events")
    with pytest.raises(Exception, match="the timeline is append-only: TRUNCATE on events is refused"):
        postgres.sql(url, "TRUNCATE events CASCADE")
    assert messages(first) == ["opened"]

    postgres.sql(url, "UPDATE ir_schema SET version = 3")
    with pytest.raises(IrError) as raised:
        opened()
    assert raised.value.message == f"the store {first.where} was written by a newer ir (schema 3)"
    assert raised.value.hint == "upgrade ir (pip install -U 'ir[postgres]')"


def test_a_role_that_may_not_create_the_schema_is_told_to_open_it_once_as_its_owner(opened, postgres, url):
    import psycopg

    with contextlib.suppress(psycopg.errors.DuplicateObject):  # made by an earlier test of this session
        postgres.sql(postgres.url(), "CREATE ROLE ir_reader LOGIN")
    reader = url.replace("postgresql://postgres@", "postgresql://ir_reader@")
    with pytest.raises(IrError) as raised:
        opened(reader)
    assert raised.value.message == (f"the store {shown(reader)} is at schema 0 and this ir needs 2, which its user "
                                    "may not create: permission denied for schema public")
    assert raised.value.hint == ("open it once as the role that owns the schema (see README.md, Team mode), then "
                                 "again as yourself")
    assert postgres.sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []  # none of it
    opened()  # the owner makes it
    postgres.sql(url, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO ir_reader")
    assert opened(reader).incidents() == []  # and the reader needs to create nothing


# one driver --------------------------------------------------------------------------------------------------------
def test_a_take_over_finds_the_holder_by_its_lock_when_its_row_is_gone(opened, postgres, url):
    first = store_with_incident(opened(), "live")
    with first.running("IR-1"):
        ((_, _, _, backend),) = drivers_rows(postgres, url)
        postgres.sql(url, "DELETE FROM drivers")
        assert first.drivers() == {}
        began = time.monotonic()
        with pytest.raises(IncidentBusy) as raised, opened().running("IR-1"):
            pass
        assert raised.value.message == "IR-1 is being run by another process"
        began = time.monotonic()
        with opened().running("IR-1", take_over=True):
            assert time.monotonic() - began < 1  # found at its first look at the locks
            ((_, taker, _, now),) = drivers_rows(postgres, url)
            assert not alive(postgres, backend) and advisory_locks(postgres, url) == [(LOCK_KEY, True, now)]
            with pytest.raises(IncidentBusy) as fenced:
                first.record("IR-1", note("too late"))
            assert fenced.value.message == f"IR-1 was taken over: {taker} drives it now"
    assert messages(first) == ["opened"]


def test_an_incident_this_process_drives_is_refused_to_its_other_stores_even_to_take_over(opened, postgres, url):
    first = store_with_incident(opened(), "live")
    with first.running("IR-1"):
        ((_, holder, token, backend),) = drivers_rows(postgres, url)
        courier = first.reopen()
        courier.record("IR-1", note("from the courier"))
        for take_over in (False, True):
            with pytest.raises(IncidentBusy) as raised, courier.running("IR-1", take_over=take_over):
                pass
            assert raised.value.message == f"IR-1 is being run by {holder}"
            assert raised.value.hint == busy_hint(take_over=False)
        assert drivers_rows(postgres, url) == [("IR-1", holder, token, backend)] and alive(postgres, backend)
        courier.close()
    assert messages(first) == ["opened", "from the courier"]


def test_the_lock_is_let_go_at_the_end_of_a_run_so_the_next_one_takes_it_at_once(opened, postgres, url):
    import gc
    import warnings

    import psycopg

    first = store_with_incident(opened(), "live")
    open_incident(first, "IR-2")
    with psycopg.connect(url, autocommit=True) as other, warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for _ in range(10):  # unlocked before its connection closes: free as soon as running() returns
            with first.running("IR-1"):
                pass
            taken = other.execute("SELECT pg_try_advisory_lock(%s, hashtext('IR-1'))", (LOCK_KEY,)).fetchone()
            assert taken == (True,)
            other.execute("SELECT pg_advisory_unlock_all()")
        gc.collect()
    assert [w for w in warned if issubclass(w.category, ResourceWarning)] == []  # each connection closed by ir
    for _ in range(3):
        with first.running("IR-1"):
            with first.running("IR-2"):  # two incidents at once, each with its own lock
                assert set(first.drivers()) == {"IR-1", "IR-2"}
                assert len({pid for (_, _, pid) in advisory_locks(postgres, url)}) == 2
            assert set(first.drivers()) == {"IR-1"}
            ((_, _, _, backend),) = drivers_rows(postgres, url)
        assert drivers_rows(postgres, url) == [] and advisory_locks(postgres, url) == [] and first.driving == {}
        assert not alive(postgres, backend)  # its connection closed too
        with opened().running("IR-1"):  # another process, at once
            assert len(advisory_locks(postgres, url)) == 1
        with pytest.raises(RuntimeError), first.running("IR-1"):
            raise RuntimeError("the run failed")
        assert drivers_rows(postgres, url) == [] and advisory_locks(postgres, url) == []


def test_only_a_row_whose_connection_holds_the_lock_is_a_driver(opened, postgres, url):
    store = store_with_incident(opened(), "live")
    open_incident(store, "IR-2")
    open_incident(store, "IR-3")
    # IR-2's driver is gone (its backend, this store's own connection, holds no advisory lock); IR-3's never was
    postgres.sql(url, f"INSERT INTO drivers VALUES ('IR-2', 'gone', 't', {store.db.info.backend_pid}), "
                      "('IR-3', 'ghost', 't', 0)")
    assert store.drivers() == {}
    with store.running("IR-1"):
        ((_, holder, _, _), *_) = drivers_rows(postgres, url)
        assert store.drivers() == {"IR-1": holder}
    with store.running("IR-2"):  # a row left behind is taken over as the lock is free
        assert store.drivers() == {"IR-2": drivers_rows(postgres, url)[0][1]}
    assert [row[0] for row in drivers_rows(postgres, url)] == ["IR-3"]


# following ---------------------------------------------------------------------------------------------------------
def test_a_follower_wakes_on_its_incidents_notification_and_not_on_anothers(opened):
    store = store_with_incident(opened(), "live")
    open_incident(store, "IR-2")
    other = opened()
    count = store.incident("IR-1").event_count
    assert store.wait("IR-1", count - 1, timeout=0)  # more than it was told of already

    later = threading.Timer(0.1, lambda: other.record("IR-2", note("elsewhere")))
    later.start()
    began = time.monotonic()
    assert not store.wait("IR-1", count, timeout=0.5)
    assert 0.5 <= time.monotonic() - began < 1.2
    later.join()

    later = threading.Timer(0.2, lambda: other.record("IR-1", note("here")))
    began = time.monotonic()
    later.start()
    assert store.wait("IR-1", count, timeout=20)
    assert 0.2 <= time.monotonic() - began < 5  # woken by the notification, not at the timeout
    later.join()
    began = time.monotonic()
    assert not store.wait("IR-1", count + 1, timeout=0.2) and time.monotonic() - began >= 0.2  # listening still
    later = threading.Timer(0.1, other.db.execute, ("UPDATE incidents SET event_count = event_count + 1",))
    later.start()  # a count moved without a notification (none of ir's writes does that) is read at the end
    began = time.monotonic()
    assert store.wait("IR-1", count + 1, timeout=0.4) and time.monotonic() - began >= 0.4
    later.join()


# a lost connection -------------------------------------------------------------------------------------------------
CUT = "terminating connection due to administrator command"


def test_a_read_whose_connection_was_ended_says_so_once_and_is_read_again(opened, postgres):
    said: list[str] = []
    store = opened(say=said.append)
    terminate(postgres, store.db.info.backend_pid)
    assert store.incidents() == [] and len(said) == 2  # before any write too
    said.clear()
    store_with_incident(store, "live")
    terminate(postgres, store.db.info.backend_pid)
    assert messages(store) == ["opened"]
    assert said == [f"the store {store.where} is unreachable ({CUT}): reconnecting; nothing committed is lost",
                    f"reconnected to {store.where}"]
    said.clear()
    terminate(postgres, store.db.info.backend_pid)
    assert store.drivers() == {} and store.incident("IR-1").event_count == 1
    assert len(said) == 2
    terminate(postgres, store.db.info.backend_pid)
    store.record("IR-1", note("after the cut"))
    assert messages(store) == ["opened", "after the cut"] and len(said) == 4
    reads: list[int] = []

    def read() -> list[str]:  # a snapshot whose connection is ended between its queries is read again whole
        reads.append(store.incident("IR-1").event_count)
        if len(reads) == 1:
            terminate(postgres, store.db.info.backend_pid)
        return messages(store)

    assert store.snapshot(read) == ["opened", "after the cut"] and reads == [2, 2] and len(said) == 6
    terminate(postgres, store.db.info.backend_pid)
    assert messages(store) == ["opened", "after the cut"] and len(said) == 8  # and a read after it, again


def test_a_statement_the_server_refuses_is_said_and_not_tried_again(opened, postgres, url):
    import psycopg

    postgres.sql(url, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = 200', current_database()); "
                      "END $$")  # 200 ms, for the store's connections to come
    said: list[str] = []
    store = store_with_incident(opened(say=said.append), "live")
    with psycopg.connect(url) as other:  # holds the incident's row, then the events table
        other.execute("SELECT 1 FROM incidents WHERE id = 'IR-1' FOR UPDATE")
        with pytest.raises(IrError) as raised:
            store.record("IR-1", note("blocked"))
        assert raised.value.message == f"the store {store.where} refused a write: canceling statement due to lock " \
                                       "timeout"
        other.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(IrError) as raised:
            list(store.events("IR-1"))
        assert raised.value.message == f"the store {store.where} refused a query: canceling statement due to lock " \
                                       "timeout"
    assert said == [] and messages(store) == ["opened"]


class Relay:
    """A relay in front of the test server's socket that can lose the next COMMIT it is sent (or the statement
    `at` begins): `cut = "before"` drops it (nothing is committed), `cut = "after"` passes it on and drops the
    answer (it is committed, and the client cannot know). Either way the connection is gone, as in a network failure at that moment."""

    def __init__(self, server: Any, *, tcp: bool = False):
        self.root, self.target = server.root, str(server.root / ".s.PGSQL.5432")
        self.folder: Path | None = None
        if tcp:  # on 127.0.0.1, as a server elsewhere is reached
            self.listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listening.bind(("127.0.0.1", 0))
            self.where = f"host=127.0.0.1&port={self.listening.getsockname()[1]}"
        else:
            # a short folder of its own: a socket's path has at most 107 bytes, which a test's tmp_path can pass
            self.folder = Path(tempfile.mkdtemp(prefix="ir-relay-"))
            self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listening.bind(str(self.folder / ".s.PGSQL.5432"))
            self.where = f"host={self.folder}&port=5432"
        self.listening.listen()
        self.cut: str | None = None
        self.at = b"COMMIT\x00"  # the statement whose sending is cut (the start of its text)
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        return url.replace(f"host={self.root}&port=5432", self.where)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listening.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            swallow = threading.Event()
            threading.Thread(target=self._pump, args=(client, upstream, swallow, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, swallow, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, swallow: threading.Event, up: bool) -> None:
        try:
            while data := source.recv(65536):
                if up and self.cut and self.at in data:
                    cut, self.cut = self.cut, None
                    self.cuts += 1
                    if cut == "before":
                        break
                    swallow.set()
                elif not up and swallow.is_set():
                    break  # the server's answer to the COMMIT: lost
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listening.close()
        if self.folder is not None:
            shutil.rmtree(self.folder)


@pytest.fixture
def relayed(postgres: Any, url: str, opened: Callable[..., PostgresStore]) -> Iterator[tuple[Relay, PostgresStore,
                                                                                             list[str]]]:
    relay = Relay(postgres)
    said: list[str] = []
    store = store_with_incident(opened(relay.url(url), say=said.append), "live")
    yield relay, store, said
    relay.close()


@pytest.mark.parametrize("cut", ["before", "after"])
def test_a_write_whose_commit_was_lost_is_recorded_once(relayed, cut, postgres, url):
    relay, store, said = relayed
    relay.cut = cut
    event = store.record("IR-1", [note("first"), note("second")])
    assert relay.cuts == 1
    assert (event.seq, event.message) == (3, "second")
    assert messages(store) == ["opened", "first", "second"] and store.incident("IR-1").event_count == 3
    assert said[1:] == [f"reconnected to {store.where}"] and said[0].startswith(f"the store {store.where} is "
                                                                                 "unreachable (")
    assert list(store.events("IR-1"))[-1] == event
    assert postgres.sql(url, "SELECT seq, message FROM events ORDER BY seq") == [(1, "opened"), (2, "first"),
                                                                                (3, "second")]
    store.record("IR-1", note("committed on the new connection"))
    assert postgres.sql(url, "SELECT event_count FROM incidents") == [(4,)]


def test_a_streamed_write_whose_commit_was_lost_is_not_done_again_but_found_when_committed(relayed):
    relay, store, said = relayed
    relay.cut = "before"
    with pytest.raises(IrError) as raised:
        store.record("IR-1", iter([note("streamed")]))
    assert raised.value.message == (f"the connection to {store.where} was lost during a write that cannot be done "
                                    "again from here; nothing of it was committed")
    assert raised.value.hint == "run the command again"
    assert messages(store) == ["opened"] and len(said) == 2
    relay.cut = "after"
    event = store.record("IR-1", iter([note("streamed")]))
    assert (event.seq, event.message) == (2, "streamed") and messages(store) == ["opened", "streamed"]
    assert len(said) == 4 and relay.cuts == 2


def test_a_write_that_lost_its_connection_before_it_appended_is_done_again(relayed, postgres):
    relay, store, said = relayed
    post_key = "IR-1/tell/notify.post"
    from ir.store.records import OutboxItem

    item = OutboxItem(post_key, "IR-1", "slack", "notify.post", {"message": "hello"})
    store.enqueue(item, Draft("integration.requested", "dana", "queued", data={"key": post_key}))
    relay.cut = "after"  # an amend, and below a settle, whose COMMIT went through: found committed, not done again
    assert store.amend(post_key, {"message": "hello again"}, Draft("integration.amended", "dana", "amended",
                                                                    data={"key": post_key}))
    assert store.outbox_item(post_key).payload == {"message": "hello again"} and len(said) == 2
    relay.cut = "after"
    assert store.begin(post_key)  # begin appends no event: nothing to look up, done again
    assert store.outbox_item(post_key).status == "sending" and len(said) == 4
    relay.cut = "after"
    assert store.settle(post_key, Draft("integration.done", "dana", "sent", data={"key": post_key}), status="done")
    assert store.outbox_item(post_key).status == "done" and relay.cuts == 3
    assert [e.kind for e in store.events("IR-1")] == ["incident.opened", "integration.requested",
                                                       "integration.amended", "integration.done"]


@pytest.mark.parametrize("code", ["serialization_failure", "deadlock_detected"])
def test_a_write_rolled_back_by_a_serialization_failure_or_a_deadlock_is_done_again(opened, postgres, url, code):
    store = store_with_incident(opened(), "live")
    # the server refuses the first two tries (a sequence: not rolled back with them), as in a deadlock
    postgres.sql(url, "CREATE SEQUENCE tries; CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                      "BEGIN IF nextval('tries') <= 2 THEN RAISE EXCEPTION 'could not serialize' USING ERRCODE = "
                      f"'{code}'; END IF; RETURN NEW; END $$; CREATE TRIGGER refuse BEFORE INSERT ON "
                      "events FOR EACH ROW EXECUTE FUNCTION refuse()")
    assert store.record("IR-1", [note("once")]).seq == 2
    assert messages(store) == ["opened", "once"] and postgres.sql(url, "SELECT last_value FROM tries") == [(3,)]
    postgres.sql(url, "SELECT setval('tries', 1, false)")
    import psycopg

    with pytest.raises((psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)):
        store.record("IR-1", iter([note("streamed")]))  # not replayable: the failure is the caller's
    assert messages(store) == ["opened", "once"]


def test_a_long_timeline_is_read_in_pages_as_far_as_asked(opened):
    store = store_with_incident(opened(), "live")
    store.record("IR-1", [note(str(n)) for n in range(2_002)])
    assert [e.seq for e in store.events("IR-1")] == list(range(1, 2_004))
    assert [e.seq for e in store.events("IR-1", limit=2_001)] == list(range(1, 2_002))
    assert [e.seq for e in store.events("IR-1", limit=3)] == [1, 2, 3]
    assert [e.seq for e in store.events("IR-1", after=2_000, limit=2_000)] == [2_001, 2_002, 2_003]


def test_a_write_whose_connection_was_lost_before_its_commit_is_done_again_whole(relayed):
    relay, store, said = relayed
    relay.cut, relay.at = "before", b"UPDATE incidents SET head_hash"
    event = store.record("IR-1", [note("first"), note("second")])
    assert relay.cuts == 1 and len(said) == 2 and (event.seq, event.message) == (3, "second")
    assert messages(store) == ["opened", "first", "second"] and store.incident("IR-1").event_count == 3


def test_an_incident_copied_in_whose_commit_was_lost_is_not_copied_again(relayed, opened, postgres):
    relay, store, said = relayed
    source = opened(postgres.database())
    open_incident(source, "IR-9")
    source.record("IR-9", note("there"))
    incident = source.incident("IR-9")
    relay.cut = "before"
    with pytest.raises(IrError) as raised:
        store.adopt(incident, {}, source.stored("IR-9", 2), [], {}, [])
    assert raised.value.message == (f"the connection to {store.where} was lost during a write that cannot be done "
                                    "again from here; nothing of it was committed")
    assert [i.id for i in store.incidents()] == ["IR-1"] and len(said) == 2
    store.adopt(incident, {}, source.stored("IR-9", 2), [], {}, [])
    assert messages(store, "IR-9") == ["opened", "there"]


def test_a_lock_connection_that_was_closed_is_opened_again_at_the_next_write(opened, postgres, url):
    store = store_with_incident(opened(), "live")
    with store.running("IR-1"):
        ((_, _, token, backend),) = drivers_rows(postgres, url)
        held = store.driving["IR-1"][1]
        held.close()  # as psycopg marks a connection it found lost
        assert advisory_locks(postgres, url) == [] or not alive(postgres, backend)
        store.record("IR-1", note("with the lock again"))
        again = store.driving["IR-1"]
        assert again[0] == token and again[1] is not held and not again[1].closed
        assert advisory_locks(postgres, url) == [(LOCK_KEY, True, again[1].info.backend_pid)]
        with pytest.raises(IncidentBusy), opened().running("IR-1"):
            pass
    assert advisory_locks(postgres, url) == [] and drivers_rows(postgres, url) == []
    assert messages(store) == ["opened", "with the lock again"]


def test_a_store_dropped_without_close_lets_its_connections_go(opened, postgres):
    import gc

    store = store_with_incident(opened(), "live")
    other = store.reopen()
    assert other.wait("IR-1", 0, timeout=0)  # it listens too
    pids = [other.db.info.backend_pid, other._listener.info.backend_pid]
    del other
    gc.collect()
    deadline = time.monotonic() + 5
    while any(alive(postgres, pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(postgres, pid) for pid in pids)


def test_the_stores_connections_to_a_server_over_tcp_notice_a_dead_peer(opened, postgres, url):
    relay = Relay(postgres, tcp=True)

    def keepalive(conn: Any) -> tuple[int, int, int, int]:
        import os

        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            return (int(bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))
        finally:
            sock.close()

    store = store_with_incident(opened(relay.url(url)), "live")
    assert store.wait("IR-1", 0, timeout=0)
    with store.running("IR-1"):
        assert [keepalive(c) for c in (store.db, store._listener, store.driving["IR-1"][1])] == [(1, 10, 5, 3)] * 3
    relay.close()


def test_the_stores_connections_give_up_connecting_after_some_seconds_and_name_themselves(opened, postgres):
    said: list[str] = []
    store = store_with_incident(opened(say=said.append), "live")
    options = {"application_name": "ir", "connect_timeout": "10", "keepalives": "1", "keepalives_idle": "10",
               "keepalives_interval": "5", "keepalives_count": "3"}
    with store.running("IR-1"):
        assert store.wait("IR-1", 0, timeout=0)
        for conn in (store.db, store._listener, store.driving["IR-1"][1]):
            assert conn.info.get_parameters().items() >= options.items()
    terminate(postgres, store.db.info.backend_pid)
    assert store.incidents() and len(said) == 2
    again = store.db.info.get_parameters()  # reconnecting: 5 s a try, tried again for RECONNECT_WAIT
    assert again.items() >= {**options, "connect_timeout": "5"}.items()


def test_a_follower_told_of_fewer_events_than_there_are_returns_at_once_and_of_more_waits(opened):
    store = store_with_incident(opened(), "live")
    began = time.monotonic()
    assert store.wait("IR-1", 0, timeout=5) and time.monotonic() - began < 1
    began = time.monotonic()
    assert not store.wait("IR-1", 3, timeout=0.2) and time.monotonic() - began >= 0.2


def test_a_driver_whose_lock_connection_was_ended_unseen_takes_the_lock_again_at_its_next_write(opened, postgres,
                                                                                                  url):
    store = store_with_incident(opened(), "live")
    with store.running("IR-1"):
        ((_, holder, token, backend),) = drivers_rows(postgres, url)
        terminate(postgres, backend)  # as a server restart or a dropped network ends it: psycopg has not seen it
        store.record("IR-1", note("with the lock again"))
        ((_, _, still, now),) = drivers_rows(postgres, url)
        assert still == token and now != backend
        assert advisory_locks(postgres, url) == [(LOCK_KEY, True, now)] and store.drivers() == {"IR-1": holder}
        with pytest.raises(IncidentBusy) as raised, opened().running("IR-1"):
            pass
        assert raised.value.message == f"IR-1 is being run by {holder}"
        store.record("IR-1", note("still driving"))
    assert advisory_locks(postgres, url) == [] and drivers_rows(postgres, url) == []
    assert messages(store) == ["opened", "with the lock again", "still driving"]
