"""`ir timeline` on a long incident: only some kinds (`--kind`), only what was recorded since a moment (`--since`),
the first N (`--limit`) with a line saying how many more there are and where to go on; `ir status` reads the
milestones by kind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ir.run.incidents import open_incident
from ir.store.records import Draft
from ir.store.sqlite import SqliteStore
from ir.store.timeline import Event, canonical_json, compact_json, digest_of, seal

from runs import DEMO


@pytest.fixture
def events(isolated: Path) -> list[Event]:
    """An incident of nine events in the store ir uses, each recorded in a millisecond of its own."""
    store = SqliteStore(Path(os.environ["IR_HOME"]) / "ir.db")
    try:
        found = open_incident(store, "demo", "1.0.0", "Demo", "high", {"demo": DEMO.encode()}, "intake",
                              actor="tester", live=False)
        for n, (kind, message) in enumerate([("note", "first call"), ("milestone", "detected"), ("note", "second"),
                                             ("decision", "Contain? -> Yes"), ("milestone", "contained"),
                                             ("note", "third"), ("evidence", "triage.zip"), ("note", "fourth")]):
            time.sleep(0.003)
            data = {"milestone": message} if kind == "milestone" else {}
            store.record(found.id, Draft(kind, "tester", message, data=data,
                                         occurred_at="2026-03-29T14:02:00-07:00" if n == 0 else None))
        return list(store.events(found.id))
    finally:
        store.close()


def line(e: Event) -> str:
    when = e.recorded_at + (f" (happened {e.occurred_at})" if e.occurred_at != e.recorded_at else "")
    return f"{e.seq:>5} {when} tester: {e.kind} {e.message}"


def test_kind_keeps_the_kinds_asked_for_in_order(run_ir, events):
    result = run_ir("timeline", events[0].incident, "--kind", "milestone", "--kind", "evidence")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "".join(f"{line(events[n])}\n" for n in (2, 5, 7))


def test_limit_shows_the_first_n_and_says_how_many_more_and_where_to_go_on(run_ir, events):
    result = run_ir("timeline", events[0].incident, "--kind", "note", "--limit", "2")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"{line(events[1])}\n{line(events[3])}\n"
        f"... 2 more event(s), from event 7 (recorded {events[6].recorded_at}): raise --limit, or go on with "
        f"--since {events[6].recorded_at}\n")


def test_since_goes_on_from_a_moment_and_a_limit_that_shows_everything_says_nothing_more(run_ir, events):
    result = run_ir("timeline", events[0].incident, "--since", events[6].recorded_at, "--limit", "3")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "".join(f"{line(e)}\n" for e in events[6:])


def test_json_keeps_standard_output_json_and_says_more_on_standard_error(run_ir, events):
    result = run_ir("timeline", events[0].incident, "--json", "--limit", "1", "--since", events[4].recorded_at)
    assert result.returncode == 0
    assert [json.loads(text) for text in result.stdout.splitlines()] == [events[4].as_dict()]
    assert result.stderr == (f"... 4 more event(s), from event 6 (recorded {events[5].recorded_at}): raise --limit, "
                             f"or go on with --since {events[5].recorded_at}\n")


def test_an_unknown_kind_or_time_is_a_usage_error(run_ir, events):
    kind = run_ir("timeline", events[0].incident, "--kind", "milestones")
    assert (kind.returncode, kind.stdout) == (2, "")
    assert kind.stderr.startswith("error: --kind: no event kind 'milestones'; the kinds: incident.opened, ")
    since = run_ir("timeline", events[0].incident, "--since", "yesterday")
    assert (since.returncode, since.stdout) == (2, "")
    assert since.stderr.startswith("error: --since: ")


def test_status_lists_the_milestones(run_ir, events):
    result = run_ir("status", events[0].incident)
    assert result.returncode == 0, result.stderr
    shown = [text for text in result.stdout.splitlines() if text.startswith("milestone")]
    assert shown == [f"milestone detected: {events[2].occurred_at}", f"milestone contained: {events[5].occurred_at}"]


def test_the_store_seals_an_event_as_the_chain_is_verified():
    data = {"fields": {"host": "WS-042", "note": "naïve ☃ \"quoted\""}, "line": 2, "source": "edr.csv", "n": [1.5, None]}
    event = Event("IR-1", 7, "imported", "2026-03-29T14:02:00-07:00", "2026-03-29T21:02:00.123Z", "Zoë", "x", None,
                  "a/b", data, "f" * 64)
    digest, text = seal(*event.as_dict(hashed=False).values())
    assert digest == event.sealed().hash and json.loads(text) == data
    # the hash ir 0.1.0 (c4b7491) gave this event: a change to the canonical encoding fails here, not in the field,
    # where every store and export written before it would stop verifying
    assert digest == "ebf6384c33217718be23fc16416405602d292bb2ee5a6ed671684420b845cae5"


@pytest.mark.parametrize("field", [None, "actor", "phase", "seq"])
def test_an_event_hashes_as_its_canonical_json_whatever_a_tampered_store_holds(field):
    """The store hashes its fields written out in key order; a value of another type (SQLite keeps what it is given,
    so an edited store can hold an integer as an actor) is hashed as canonical JSON writes it, as before."""
    fields = {"incident": "IR-1", "seq": 7, "kind": "note", "occurred_at": "2026-03-29T14:02:00-07:00",
              "recorded_at": "2026-03-29T21:02:00.123Z", "actor": "Zoë \"Z\" \\ \n\u2028", "message": "x\ty",
              "phase": "containment", "step": None, "data": {"b": [1.5, None, True], "a": "☃"}, "prev_hash": "f" * 64}
    if field is not None:
        fields[field] = {"actor": 42, "phase": 1.5, "seq": True}[field]
    event = Event(**fields)
    assert digest_of(*(canonical_json(v) if k == "data" else v for k, v in fields.items())) == event.digest()


@pytest.mark.parametrize("value", [
    {"b": [1.5, float("nan"), float("inf"), -0.0, 1e300, True, None], "a": {"z": "☃ \"\\\n\u2028\x00", "y": {}}},
    "Zoë", 5, -2.5, None, [], {3: "int keys", 1: "as text"}])
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected
    assert compact_json(sort_keys=False)(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_canonical_json_refuses_what_json_cannot_write_as_json_dumps_does():
    for value in ({(1, 2): "a key that is not text or a number"}, {"a": object()}):
        with pytest.raises(TypeError):
            canonical_json(value)
