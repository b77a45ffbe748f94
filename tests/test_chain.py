"""The hash chain, field by field (issue 14): every field of an event is in what is hashed, so an edit to any one of
them in the SQLite file makes `ir verify` name that event; the head is checked by its hash, not only by its count;
and the canonical encoding is the one verification recomputes. The in-process tests drive ir.store.timeline and
ir.store.sqlite directly (fast enough to run for each mutant, see docs/testing.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_tamper import db, paused  # noqa: F401 - the store as an attacker edits it (both kinds), an incident

from ir.store.records import Draft, Incident
from ir.store.sqlite import SqliteStore
from ir.store.timeline import GENESIS, Broken, Event, ends_at, verify

ALTERED = "was altered after it was recorded (its hash does not match its content)"

# Event 5 of the paused incident is `step.started` of `log`: it has a message, a phase, a step and data.
# (column, SQL expression it is set to, what verify says about event 5)
EDITS = [
    ("kind", "'note'", ALTERED),
    ("occurred_at", "'2026-01-01T00:00:00.000Z'", ALTERED),
    ("recorded_at", "'2026-01-01T00:00:00.000Z'", ALTERED),
    ("actor", "'mallory'", ALTERED),
    ("message", "'Nothing to see'", ALTERED),
    ("phase", "'recovery'", ALTERED),
    ("phase", "NULL", ALTERED),
    ("step", "'look'", ALTERED),
    ("data", "'{}'", ALTERED),
    ("prev_hash", "'" + "1" * 64 + "'", "does not follow the event before it: an event was inserted or removed here"),
    ("hash", "'" + "2" * 64 + "'", ALTERED),
    ("seq", "99", "missing (found event 6 next): events were removed or renumbered"),
    ("incident", "'IR-00000000-OTHER0'", "missing (found event 6 next): events were removed or renumbered"),
]


@pytest.mark.parametrize(("column", "value", "said"), EDITS, ids=[f"{c}={v[:8]}" for c, v, _ in EDITS])
def test_an_edit_to_any_field_of_an_event_is_named_by_verify(run_ir, paused, db, column, value, said):  # noqa: F811
    db.sql(f"UPDATE events SET {column} = {value} WHERE incident = ? AND seq = 5", paused)
    result = run_ir("verify", paused)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"{paused}: timeline does NOT verify: event 5: {said}\n")


def test_data_stored_in_another_encoding_of_the_same_content_still_verifies(run_ir, paused, db):  # noqa: F811
    """What is hashed is the data, not its text: data written by an older ir (with spaces) verifies."""
    [(data,)] = db.query("SELECT data FROM events WHERE incident = ? AND seq = 5", paused)
    spaced = json.dumps(json.loads(data), indent=1)
    assert spaced != data
    db.sql("UPDATE events SET data = ? WHERE incident = ? AND seq = 5", spaced, paused)
    result = run_ir("verify", paused)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{paused}: timeline verifies: ")


@pytest.mark.parametrize(("edit", "said"), [
    ("head_hash = (SELECT hash FROM events WHERE incident = incidents.id AND seq = 8)",
     "event 9: the incident recorded 9 events ending in {head}…, the timeline has 9 ending in {last}…"),
    ("head_hash = '" + "3" * 64 + "'", "event 9: the incident recorded 9 events ending in 333333333333…, the "
                                       "timeline has 9 ending in {last}…"),
    ("event_count = 8", "event 9: the incident recorded 8 events ending in {last}…, the timeline has 9 ending in "
                        "{last}…"),
    ("event_count = 10", "event 10: the incident recorded 10 events ending in {last}…, the timeline has 9 ending "
                         "in {last}…"),
])
def test_the_head_is_checked_by_its_hash_and_its_count(run_ir, paused, db, edit, said):  # noqa: F811
    last, eighth = (h for (h,) in db.query("SELECT hash FROM events WHERE incident = ? AND seq IN (9, 8) "
                                           "ORDER BY seq DESC", paused))
    db.sql(f"UPDATE incidents SET {edit} WHERE id = ?", paused)
    result = run_ir("verify", paused)
    assert result.returncode == 1
    assert result.stderr == (f"{paused}: timeline does NOT verify: "
                             + said.format(head=eighth[:12], last=last[:12])
                             + ": events were removed from the end or the head was changed\n")


def test_removing_the_newest_event_and_moving_the_head_back_by_count_only_is_caught(run_ir, paused, db):  # noqa: F811
    db.sql("DELETE FROM events WHERE incident = ? AND seq = 9", paused)
    db.sql("UPDATE incidents SET event_count = 8 WHERE id = ?", paused)
    result = run_ir("verify", paused)
    assert result.returncode == 1
    assert "the incident recorded 8 events ending in" in result.stderr
    assert result.stderr.endswith(": events were removed from the end or the head was changed\n")


@pytest.mark.parametrize(("column", "value"), [("playbook_id", "other"), ("playbook_version", "9.9.9")])
def test_verify_catches_an_edited_playbook_name_or_version_in_the_header(run_ir, paused, db, column, value):  # noqa: F811
    db.sql(f"UPDATE incidents SET {column} = ? WHERE id = ?", value, paused)
    result = run_ir("verify", paused)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{paused}: timeline does NOT verify: the incident's header was edited: "
                                    f"{column} is {value!r}, the events say ")


# In process -------------------------------------------------------------------------------------------------------
FIELDS = {"incident": "IR-2", "seq": 9, "kind": "decision", "occurred_at": "2026-03-29T14:03:00-07:00",
          "recorded_at": "2026-03-29T21:03:00.000Z", "actor": "mallory", "message": "y", "phase": "recovery",
          "step": "a/c", "data": {"line": 3}, "prev_hash": "e" * 64}


def chain(count: int = 3) -> list[Event]:
    events, prev = [], GENESIS
    for seq in range(1, count + 1):
        event = Event("IR-1", seq, "note", f"2026-03-29T14:0{seq}:00-07:00", f"2026-03-29T21:0{seq}:00.000Z",
                      "dana", f"note {seq}", "containment", "a/b", {"n": seq, "s": "naïve"}, prev).sealed()
        events.append(event)
        prev = event.hash
    return events


def test_an_untouched_chain_verifies_up_to_its_head():
    events = chain()
    assert verify(events) is None
    assert verify(events, (events[-1].hash, 3)) is None
    assert verify([]) is None and verify([], (GENESIS, 0)) is None


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_field_of_an_event_is_hashed(name):
    events = chain()
    events[1] = replace(events[1], **{name: FIELDS[name]})
    broken = verify(events, (events[-1].hash, 3))
    assert broken is not None and broken.seq == 2, broken


def test_each_way_a_chain_breaks_names_the_event_and_why():
    a, b, c = chain()
    assert verify([a, c]) == Broken(2, "missing (found event 3 next): events were removed or renumbered")
    assert str(verify([a, c])) == "event 2: missing (found event 3 next): events were removed or renumbered"
    forged = replace(b, prev_hash="1" * 64).sealed()  # resealed: only the link is wrong
    assert verify([a, forged, c]) == Broken(2, "does not follow the event before it: an event was inserted or "
                                               "removed here")
    assert verify([a, replace(b, hash="2" * 64), c]) == Broken(2, "was altered after it was recorded (its hash "
                                                                  "does not match its content)")
    assert verify([replace(a, seq=2).sealed()]) == Broken(1, "missing (found event 2 next): events were removed or "
                                                             "renumbered")


def test_the_head_must_match_in_hash_and_count():
    events = chain()
    last = events[-1].hash
    assert ends_at((last, 3), last, 3) is None
    assert verify(events, (events[1].hash, 3)) == Broken(3, f"the incident recorded 3 events ending in "
                                                            f"{events[1].hash[:12]}…, the timeline has 3 ending in "
                                                            f"{last[:12]}…: events were removed from the end or "
                                                            "the head was changed")
    assert verify(events[:2], (last, 3)).seq == 3  # the newest removed: the first one missing
    assert verify(events, (last, 2)).seq == 3  # one more than recorded: the last one
    assert verify(events[:2], (events[1].hash, 3)).seq == 3  # the count alone differs


def store_with_events(path: Path | Any) -> tuple[SqliteStore, str]:
    """IR-1 with three events, in an SQLite file at `path` or in the store given."""
    store = SqliteStore(path) if isinstance(path, Path) else path
    incident = Incident("IR-1", "demo", "1.0.0", "h" * 64, "Beacon", "high", "dry-run", False,
                        "2026-03-29T21:00:00.000Z", "dana")
    store.create(incident, {"demo": b"id: demo"}, Draft("incident.opened", "dana", "opened", data={"hash": "h" * 64}))
    store.record("IR-1", [Draft("note", "dana", "first", "2026-03-29T14:02:00-07:00", "containment", "a/b",
                                {"host": "WS-042", "n": [1.5, None]}),
                          Draft("note", "dana", "second")])
    return store, "IR-1"


def test_the_store_chains_what_it_appends_and_links_read_it_back(make_store):
    store, incident = store_with_events(make_store())
    events = list(store.events(incident))
    header = store.incident(incident)
    assert [e.seq for e in events] == [1, 2, 3] and events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert all(e.hash == e.digest() for e in events)
    assert (header.head_hash, header.event_count) == (events[-1].hash, 3)
    assert verify(events, (header.head_hash, header.event_count)) is None
    assert list(store.links(incident)) == [(e.seq, e.prev_hash, e.hash, e.hash) for e in events]
    assert events[1].occurred_at == "2026-03-29T14:02:00-07:00" and events[2].occurred_at == events[2].recorded_at
    assert events[1].data == {"host": "WS-042", "n": [1.5, None]}
    store.close()


@pytest.mark.parametrize(("column", "value"), [
    ("kind", "'decision'"), ("occurred_at", "'x'"), ("recorded_at", "'x'"), ("actor", "'mallory'"),
    ("message", "'other'"), ("phase", "NULL"), ("step", "'c'"), ("data", "'{\"host\":\"WS-043\",\"n\":[1.5,null]}'"),
    ("prev_hash", "'" + "1" * 64 + "'"),
])
def test_the_store_reads_each_field_into_the_hash(make_store, store_kind, column, value):
    store, incident = store_with_events(make_store())
    if store_kind == "postgresql":  # a superuser may switch the append-only trigger off for the session
        store.db.execute("SET session_replication_role = replica")
    store.db.execute(f"UPDATE events SET {column} = {value} WHERE seq = 2")
    links = list(store.links(incident))
    seq, _prev, recorded, actual = links[1]
    assert seq == 2
    assert actual != recorded
    header = store.incident(incident)
    broken = verify(store.events(incident), (header.head_hash, header.event_count))
    assert broken is not None and broken.seq == 2
    store.close()


def test_an_event_and_a_break_cannot_be_changed_once_made_and_the_chain_starts_at_64_zeros():
    """Events are handed to hooks, exports and verify as they were read: none of them can alter one in memory. The
    first event follows 64 zeros, as every store and export since ir 0.1.0 has it."""
    from dataclasses import FrozenInstanceError

    first, *_ = chain()
    with pytest.raises(FrozenInstanceError):
        first.message = "edited"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        Broken(1, "x").seq = 2  # type: ignore[misc]
    assert GENESIS == "0" * 64 and first.prev_hash == GENESIS
    assert verify([replace(first, prev_hash="0" * 63).sealed()]) is not None


def test_the_store_verifies_data_stored_in_another_encoding_and_makes_its_folders(isolated):
    store, incident = store_with_events(isolated / "a" / "b" / "ir.db")  # folders made as needed
    (data,) = store.db.execute("SELECT data FROM events WHERE seq = 2").fetchone()
    canonical = list(store.stored(incident, 3))
    store.db.execute("UPDATE events SET data = ? WHERE seq = 2", (json.dumps(json.loads(data), indent=1),))
    links = list(store.links(incident))
    assert [(seq, recorded == actual) for seq, _, recorded, actual in links] == [(1, True), (2, True), (3, True)]
    assert list(store.stored(incident, 3)) == canonical  # what an export holds: the data in canonical JSON again
    store.close()
