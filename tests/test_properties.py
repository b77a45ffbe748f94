"""Properties over wide input spaces (issue 14), with hypothesis, bounded so the file runs in seconds: any event
round-trips through the canonical encoding and the store and verifies, and any one-character change to it breaks
verification; any CSV or JSON-lines file of valid rows imports every row as written, and one bad row imports none;
any answers file of well-typed values is accepted, and a value of the wrong type is reported at its line."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ir.errors import InvalidPlaybook, IrError
from ir.export.timeline_import import import_file
from ir.format.model import Playbook
from ir.run.answers import Answers, check
from ir.store.sqlite import SqliteStore
from ir.store.timeline import GENESIS, Event, canonical_json, seal, verify

from runs import store_with_incident

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | TEXT
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
EVENTS = st.builds(Event, incident=TEXT, seq=st.integers(1, 10**6), kind=TEXT, occurred_at=TEXT, recorded_at=TEXT,
                   actor=TEXT, message=TEXT, phase=st.none() | TEXT, step=st.none() | TEXT,
                   data=st.dictionaries(TEXT, JSON, max_size=4), prev_hash=st.text("0123456789abcdef", min_size=64,
                                                                                   max_size=64))
STRINGS = ("incident", "kind", "occurred_at", "recorded_at", "actor", "message", "phase", "step", "prev_hash")


@BOUNDED
@given(EVENTS)
def test_any_event_round_trips_through_its_canonical_encoding_and_verifies(event):
    sealed = event.sealed()
    digest, text = seal(*event.as_dict(hashed=False).values())
    assert digest == sealed.hash and json.loads(text) == event.data and text == canonical_json(event.data)
    again = Event(**json.loads(canonical_json(sealed.as_dict())))
    assert again == sealed and again.digest() == sealed.hash
    first = replace(sealed, seq=1, prev_hash=GENESIS).sealed()
    assert verify([first], (first.hash, 1)) is None


@BOUNDED
@given(EVENTS, st.sampled_from(STRINGS), st.integers(0, 10**6), st.characters(blacklist_categories=("Cs",)))
def test_any_one_character_change_to_an_event_breaks_verification(event, name, where, char):
    first = replace(event, seq=1, prev_hash=GENESIS).sealed()
    old = getattr(first, name) or ""
    at = where % (len(old) + 1)
    changed = old[:at] + char + old[at + 1:]
    assume(changed != old)
    assert verify([replace(first, **{name: changed})], (first.hash, 1)) is not None


@BOUNDED
@given(EVENTS, TEXT, JSON)
def test_any_change_to_an_events_data_breaks_verification(event, key, value):
    first = replace(event, seq=1, prev_hash=GENESIS).sealed()
    data = {**first.data, key: value}
    assume(canonical_json(data) != canonical_json(first.data))
    assert verify([replace(first, data=data)], (first.hash, 1)) is not None


# Import ------------------------------------------------------------------------------------------------------------
CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=15)
MESSAGE = CELL.filter(lambda t: t.strip())
MOMENT = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 1, 1),
                      timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-840, 840)))
ROWS = st.lists(st.tuples(MOMENT, MESSAGE, st.dictionaries(st.sampled_from(["host", "user", "process", "ip"]), CELL,
                                                           max_size=3)), min_size=1, max_size=6)


@pytest.fixture
def store(isolated: Path) -> SqliteStore:
    opened = store_with_incident(isolated / "ir.db", "dry-run")
    yield opened
    opened.close()


def write(isolated: Path, kind: str, rows: list[tuple[datetime, str, dict[str, str]]], n: int) -> Path:
    path = isolated / f"rows-{n}.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps({"datetime": at.isoformat(), "message": message, **fields}) + "\n"
                                for at, message, fields in rows), encoding="utf-8")
        return path
    columns = ["datetime", "message", "host", "user", "process", "ip"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for at, message, fields in rows:
        writer.writerow([at.isoformat(), message, *(fields.get(c, "") for c in columns[2:])])
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    return path


@BOUNDED
@given(st.sampled_from(["csv", "jsonl"]), ROWS)
def test_any_file_of_valid_rows_imports_every_row_as_written(store, isolated, kind, rows):
    before = store.count_events("IR-1")
    path = write(isolated, kind, rows, before)
    assert import_file(store, "IR-1", path, source="edr", tz=None, actor="dana") == (len(rows), before + 1,
                                                                                      before + len(rows))
    added = list(store.events("IR-1"))[before:]
    for event, (at, message, fields), line in zip(added, rows, range(2 if kind == "csv" else 1, 99)):
        assert (event.kind, event.message, event.actor) == ("imported", message, "dana")
        assert datetime.fromisoformat(event.occurred_at) == at
        assert datetime.fromisoformat(event.occurred_at).utcoffset() == at.utcoffset()
        expected = fields if kind == "jsonl" else {c: fields.get(c, "") for c in ("host", "user", "process", "ip")}
        assert event.data == {"source": "edr", "line": line, "fields": expected}
    header = store.incident("IR-1")
    assert verify(store.events("IR-1"), (header.head_hash, header.event_count)) is None


@BOUNDED
@given(st.sampled_from(["csv", "jsonl"]), ROWS, st.data())
def test_one_bad_row_anywhere_imports_nothing_and_is_named_by_its_line(store, isolated, kind, rows, data):
    bad = data.draw(st.integers(0, len(rows) - 1))
    rows[bad] = (rows[bad][0], " ", rows[bad][2])  # an empty message
    before = store.count_events("IR-1")
    path = write(isolated, kind, rows, before)
    with pytest.raises(IrError) as raised:
        import_file(store, "IR-1", path, source="edr", tz=None, actor="dana")
    line = bad + (2 if kind == "csv" else 1)
    assert str(raised.value).startswith(f"{path}: 1 bad row(s), nothing was imported:\n"
                                        f"{path}:{line}: `message` is missing or empty")
    assert store.count_events("IR-1") == before


# Answers files -----------------------------------------------------------------------------------------------------
PLAYBOOK = Playbook.model_validate({
    "id": "p", "title": "P", "version": "1.0.0",
    "inputs": [{"id": "vendor", "type": "string"}, {"id": "hosts", "type": "integer"},
               {"id": "contained", "type": "boolean"}, {"id": "seen", "type": "datetime"}],
    "steps": [{"id": "n", "kind": "note", "title": "N", "phase": "containment", "message": "x"}]})
PRINTABLE = st.text(st.characters(whitelist_categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=20)
GOOD = st.fixed_dictionaries({}, optional={  # control characters: YAML refuses them raw (docs/testing.md)
    "vendor": PRINTABLE.filter(lambda t: t.strip()), "hosts": st.integers(-10**9, 10**9), "contained": st.booleans(),
    "seen": MOMENT.map(lambda m: m.replace(microsecond=0).isoformat())})


@BOUNDED
@given(GOOD, st.sampled_from(["yaml", "json", "json-ascii"]))
def test_any_answers_file_of_well_typed_values_is_accepted_as_written(isolated, inputs, kind):
    path = isolated / f"answers.{kind.removesuffix('-ascii')}"
    # json.dumps's default (ensure_ascii) escapes a character past U+FFFF as a surrogate pair: "\ud83d\udcde"
    text = yaml.safe_dump({"inputs": inputs}, allow_unicode=True) if kind == "yaml" else json.dumps(
        {"inputs": inputs}, ensure_ascii=kind == "json-ascii")
    path.write_text(text, encoding="utf-8")
    answers = Answers.load(path)
    assert answers.inputs == inputs
    assert check(answers, {"p": PLAYBOOK}, "p", complete=False, examples=False) == []


def test_a_json_answers_file_with_an_escaped_astral_character_is_read_and_its_lines_kept(isolated):
    # found by the property above: libyaml refused JSON's surrogate-pair escapes ("found invalid Unicode
    # character escape code"), which json.dumps writes for any character past U+FFFF (an emoji in a vendor name)
    path = isolated / "answers.json"
    path.write_text('{"inputs": {"vendor": "3CX \\ud83d\\udcde",\n  "hosts": "twelve \\ud83d\\udcbb"}}\n',
                    encoding="utf-8")
    answers = Answers.load(path)
    assert answers.inputs == {"vendor": "3CX \U0001F4DE", "hosts": "twelve \U0001F4BB"}
    assert [(p.line, p.column, p.message) for p in check(answers, {"p": PLAYBOOK}, "p", complete=False,
                                                          examples=False)] == [
        (2, 12, "'twelve \U0001F4BB' is not a valid integer: a whole number is needed")]


@pytest.mark.parametrize(("text", "said"), [
    ('{"inputs": {"vendor": "3CX",\n  "hosts": "\\ud83d 12"}}', "2:12: a lone surrogate ('\\ud83d') is "
     "not text: half of a pair escaped alone\n  fix: escape a character past U+FFFF as both halves of its pair "
     "(\\ud83d\\udcde) or write it as it is"),
    ('{"inputs": {\n  "\\udcde\\ud83d": 1}}', "2:3: a lone surrogate ('\\udcde') is not text: half of a "
     "pair escaped alone"),
    ('{"inputs": {"hosts":\n  "\\U00110000"}}', "2:6: invalid YAML: while parsing a quoted scalar "
     "found invalid Unicode character escape code\n  fix: check the indentation and quoting on this line and the one "
     "before it"),
    ('{"inputs": {"vendor": "3CX \\ud83d\\udcde",\n  "hosts": 12 "contained": true}}', "2:26: invalid "
     "YAML: while parsing a flow mapping expected ',' or '}', but got ':'"),
])
def test_a_truly_bad_answers_file_among_such_escapes_is_refused_at_its_line(isolated, text, said):
    path = isolated / "answers.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidPlaybook) as raised:
        Answers.load(path)
    assert str(raised.value).startswith(f"{path}:{said}")


@BOUNDED
@given(st.sampled_from(["hosts", "contained", "seen"]), PRINTABLE.filter(lambda t: t.strip() and not t.strip().lstrip(
    "+-").isdigit() and t.strip().lower() not in {"y", "yes", "true", "on", "n", "no", "false", "off"}))
def test_a_value_of_the_wrong_type_is_reported_at_its_line(isolated, name, wrong):
    path = isolated / "answers.json"
    path.write_text('{"inputs": {\n"vendor": "3CX",\n' + json.dumps(name) + ": " + json.dumps(wrong) + "}}\n",
                    encoding="utf-8")
    try:
        answers = Answers.load(path)
    except InvalidPlaybook:  # not even a valid file
        return
    problems = check(answers, {"p": PLAYBOOK}, "p", complete=False, examples=False)
    if name == "seen":
        try:
            datetime.fromisoformat(wrong.strip())
            assume(False)
        except ValueError:
            pass
    assert [(p.line, p.message.startswith(f"{wrong!r} is not a valid ")) for p in problems] == [(3, True)]
    assert UTC  # the zone the moments above are compared in
