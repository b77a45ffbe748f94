"""Tampering with the store outside ir, as an attacker with the SQLite file would (issue 13): `ir verify` catches an
edited incident header and an edited stored playbook, `ir resume` refuses to run an edited playbook, and
`ir verify --file` refuses an export with a member twice (which a last-wins JSON reader would read otherwise)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runs import incident_id

PLAYBOOK = """\
id: tamper
title: Tamper test
version: "1.0.0"
incident_title: "Beacon on {{ inputs.host }}"
inputs:
  - {id: host, type: string, default: web01}
  - {id: severity, type: choice, choices: [low, medium, high, critical], default: high}
steps:
  - {id: log, kind: note, title: Log it, phase: detection-analysis, message: "seen on {{ inputs.host }}"}
  - {id: look, kind: manual, title: Look, phase: detection-analysis, instructions: "Check the host."}
"""


@pytest.fixture
def paused(run_ir, write_playbook, db) -> str:
    """An incident paused at its manual step (end of input at the prompt)."""
    write_playbook("playbooks/tamper.yaml", PLAYBOOK)
    result = run_ir("run", "tamper", "--var", "host=web01", "--var", "severity=high", input="")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Paused" in result.stdout
    return incident_id(result)


class Store:
    """The store as someone with its file or its database (and no ir) edits it."""

    def __init__(self, kind: str, isolated: Path, url: str | None):
        self.kind, self.path, self.url = kind, isolated.parent / "home" / ".ir" / "ir.db", url

    def query(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        """As the store's owner: on PostgreSQL a superuser, with triggers (append-only, foreign keys) off."""
        if self.url is None:
            with sqlite3.connect(self.path) as db:
                db.execute("PRAGMA foreign_keys=OFF")
                return db.execute(statement, args).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            cursor = conn.execute(statement.replace("?", "%s"), args)
            return cursor.fetchall()

    def sql(self, statement: str, *args: object) -> None:
        """Change exactly one row."""
        assert len(self.query(statement + " RETURNING 1", *args)) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, isolated, monkeypatch) -> Store:
    """Each test runs on both stores: the embedded file, and PostgreSQL (IR_STORE) edited by its superuser."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").database()
        monkeypatch.setenv("IR_STORE", url)
    return Store(request.param, isolated, url)


def test_an_untouched_incident_verifies(run_ir, paused):
    result = run_ir("verify", paused)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{paused}: timeline verifies: ")


@pytest.mark.parametrize(("column", "value", "said"), [
    ("title", "Nothing happened", "title is 'Nothing happened', the events say 'Beacon on web01'"),
    ("severity", "low", "severity is 'low', the events say 'high'"),
    ("status", "closed", "status is 'closed', the events say 'open'"),
    ("opened_by", "someone-else", "opened_by is 'someone-else', the events say 'tester'"),
    ("playbook_hash", "0" * 64, "playbook_hash is '" + "0" * 64 + "', the events say '"),
])
def test_verify_catches_an_edited_incident_header(run_ir, paused, db, column, value, said):
    db.sql(f"UPDATE incidents SET {column} = ? WHERE id = ?", value, paused)
    result = run_ir("verify", paused)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{paused}: timeline does NOT verify: the incident's header was edited: {said}")


def test_verify_and_resume_refuse_an_edited_stored_playbook(run_ir, paused, db):
    [(text,)] = db.query("SELECT text FROM bundles WHERE incident = ?", paused)
    edited = bytes(text).replace(b"Check the host.", b"TAMPERED PLAYBOOK says: everything is fine")
    db.sql("UPDATE bundles SET text = ? WHERE incident = ?", edited, paused)
    verified = run_ir("verify", paused)
    assert verified.returncode == 1
    assert "a stored playbook was edited" in verified.stderr
    resumed = run_ir("resume", paused, input="c\n\n")
    assert resumed.returncode == 1, resumed.stdout
    assert resumed.stderr.startswith(f"error: {paused} cannot be resumed: the stored playbooks hash to ")
    assert "a stored playbook was edited" in resumed.stderr
    assert "TAMPERED" not in resumed.stdout + resumed.stderr


def export(run_ir, incident: str, path: Path) -> str:
    result = run_ir("export", incident, "--format", "json", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path.read_text(encoding="utf-8")


def test_verify_file_refuses_a_member_given_twice_anywhere(run_ir, paused, tmp_path):
    text = export(run_ir, paused, tmp_path / "good.json")
    assert run_ir("verify", "--file", str(tmp_path / "good.json")).returncode == 0
    forged_events = json.dumps([{"forged": True}])
    cases = {
        "events-after-head.json": text.rstrip().removesuffix("}") + f',\n"events":{forged_events}}}\n',
        "head-twice.json": text.replace('"head":', '"head":{"count":1,"hash":"x"},\n"head":', 1),
        "in-an-event.json": text.replace('"kind":"note"', '"kind":"note","kind":"milestone"', 1),
        "in-the-incident.json": text.replace('"title":', '"title":"All fine","title":', 1),
    }
    for name, forged in cases.items():
        assert forged != text, name
        path = tmp_path / name
        path.write_text(forged, encoding="utf-8")
        result = run_ir("verify", "--file", str(path))
        assert result.returncode == 1, (name, result.stdout)
        assert result.stderr.startswith(f"error: {path}: not valid JSON (the member "), result.stderr
        assert "is there twice" in result.stderr


def test_verify_file_catches_a_header_edited_before_the_export(run_ir, paused, db, tmp_path):
    db.sql("UPDATE incidents SET title = 'Nothing happened' WHERE id = ?", paused)
    path = tmp_path / "export.json"
    export(run_ir, paused, path)
    result = run_ir("verify", "--file", str(path))
    assert result.returncode == 1
    assert "the incident's header was edited: title is 'Nothing happened', the events say 'Beacon on web01'" \
        in result.stderr


@pytest.mark.parametrize(("edit", "said"), [
    (lambda d: d["events"][0].update(data=[1]), "event 1 is not an event (its data is list)"),
    (lambda d: d["events"][0].update(seq="1"), "event 1 is not an event (its seq is str)"),
    (lambda d: d["head"].update(count="3"), "not a complete ir export (TypeError: head.hash is not text, "
                                            "head.count not a whole number, or incident not an object)"),
    (lambda d: d.update(head="x"), "not a complete ir export (TypeError: "),
    (lambda d: d.update(playbooks={"x": 5}), "not a complete ir export (AttributeError: "),
])
def test_a_malformed_export_is_a_clear_error_not_a_bug(run_ir, paused, tmp_path, edit, said):
    data = json.loads(export(run_ir, paused, tmp_path / "good.json"))
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = run_ir("verify", "--file", str(path))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: {said}"), result.stderr


def test_the_header_follows_the_severity_only_where_the_run_changes_it():
    """The incident's own severity input, and a prompt's answer, change the incident's severity; an included
    playbook's input named severity does not (the run keeps it in the include's scope), so verify must not read
    it as one (it did: a cloud-credential run including data-breach failed to verify)."""
    from ir.store.header import from_events
    from ir.store.timeline import Event

    def setting(name: str, scope: str, value: str) -> Event:
        return Event("IR-1", 1, "input.set", "t", "t", "tester", "", None, None,
                     {"name": name, "scope": scope, "value": value})

    assert from_events([setting("inputs.severity", "", "critical"),
                        setting("inputs.severity", "breach", "high")])["severity"] == "critical"
    assert from_events([setting("inputs.severity", "", "critical"),
                        setting("answers.severity", "breach", "low")])["severity"] == "low"


def sealed_by(db: Store, incident: str, section: str, key: str) -> int:
    """The seq of the last event that sealed the row `key` of `section` (ir.store.state)."""
    rows = db.query("SELECT seq, data FROM events WHERE incident = ? ORDER BY seq", incident)
    return max(seq for seq, data in rows if key in json.loads(data).get("state", {}).get(section, {}))


@pytest.mark.parametrize(("statement", "section", "key", "said"), [
    ("UPDATE steps SET status = 'completed' WHERE incident = ? AND path = 'look'", "steps", "look",
     "step 'look' in the steps table is not what event {seq} recorded: it was edited outside ir"),
    ("UPDATE steps SET note = 'all clear' WHERE incident = ? AND path = 'log'", "steps", "log",
     "step 'log' in the steps table is not what event {seq} recorded: it was edited outside ir"),
    ("DELETE FROM variables WHERE incident = ? AND name = 'inputs.host'", "variables", "/inputs.host",
     "variable '/inputs.host', recorded by event {seq}, is gone from the variables table: it was deleted"),
    ("UPDATE variables SET value = '\"db01\"' WHERE incident = ? AND name = 'inputs.host'", "variables",
     "/inputs.host", "variable '/inputs.host' in the variables table is not what event {seq} recorded: it was "
                     "edited outside ir"),
    ("INSERT INTO steps VALUES (?, 'extra', 'completed', NULL, NULL, NULL, NULL, '[]')", "", "",
     "the steps table holds step 'extra', which no event recorded: it was added outside ir"),
    ("UPDATE incidents SET cursor = NULL WHERE id = ?", "incident", "cursor",
     "incident field 'cursor' in the incidents table is not what event {seq} recorded: it was edited outside ir"),
    ("UPDATE incidents SET channel = 'C0ATTACKER' WHERE id = ?", "incident", "channel",
     "incident field 'channel' in the incidents table is not what event {seq} recorded: it was edited outside ir"),
])
def test_verify_and_resume_catch_an_edited_state_table(run_ir, paused, db, statement, section, key, said):
    """The state a run goes on from (where it is, what was answered, where it sends) is sealed into the chain:
    an edit to a row, a deleted row and an added one are each named, and nothing is run from them."""
    seq = sealed_by(db, paused, section, key) if section else None
    db.sql(statement, paused)
    said = said.format(seq=seq)
    verified = run_ir("verify", paused)
    assert verified.returncode == 1
    assert verified.stderr == f"{paused}: timeline does NOT verify: {said}\n"
    before = run_ir("timeline", paused, "--json").stdout
    resumed = run_ir("resume", paused, input="c\n\n")
    assert resumed.returncode == 1, resumed.stdout
    assert resumed.stderr.startswith(f"error: {paused} cannot be resumed: {said}\n  fix: nothing was run or sent")
    assert "Look" not in resumed.stdout  # the step is not shown, nothing is asked
    assert run_ir("timeline", paused, "--json").stdout == before


SENDER = """\
id: sender
title: Sender
version: "1.0.0"
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared: beacon on web01"}
"""


@pytest.fixture
def undelivered(run_ir, write_playbook, slack_server, db) -> tuple[str, dict[str, str]]:
    """An incident whose Slack actions are still undelivered (Slack was unreachable during the run), and the
    environment that reaches the fake Slack now."""
    write_playbook("playbooks/sender.yaml", SENDER)
    down = {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": "http://127.0.0.1:9/api/"}
    result = run_ir("run", "sender", "--non-interactive", env=down)
    assert result.returncode == 0, result.stderr + result.stdout
    return incident_id(result), {**down, "IR_SLACK_BASE_URL": slack_server.url}


def test_flush_refuses_an_action_edited_in_the_store_and_sends_nothing(run_ir, undelivered, db, slack_server):
    incident, env = undelivered
    key = f"{incident}/announce/post"
    [(payload,)] = db.query("SELECT payload FROM outbox WHERE key = ?", key)
    forged = json.loads(payload) | {"message": "<!channel> all clear, stand down"}
    db.sql("UPDATE outbox SET payload = ? WHERE key = ?", json.dumps(forged), key)
    seq = sealed_by(db, incident, "outbox", key)
    result = run_ir("flush", incident, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {incident} cannot be flushed: outbox action {key!r} in the outbox table "
                                    f"is not what event {seq} recorded: it was edited outside ir\n")
    assert slack_server.requests == []


def test_an_action_being_sent_is_not_taken_for_an_edit_and_an_untouched_one_is_flushed(run_ir, undelivered,
                                                                                       db, slack_server):
    """`begin` marks an action sending without an event (the attempt is the courier's bookkeeping): a row left
    sending by a crash still verifies, and flush sends it (after looking it up)."""
    incident, env = undelivered
    db.sql("UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE key = ?",
        f"{incident}/announce/post")
    assert run_ir("verify", incident).returncode == 0
    result = run_ir("flush", incident, env=env)
    assert result.returncode == 0, result.stderr
    assert [m["text"] for m in slack_server.messages(f"ir-{incident.lower()}")] == ["Declared: beacon on web01"]
