"""Tampering with the store outside ir, as an attacker with the SQLite file would (issue 13): `ir verify` catches an
edited incident header and an edited stored playbook, `ir resume` refuses to run an edited playbook, and
`ir verify --file` refuses an export with a member twice (which a last-wins JSON reader would read otherwise)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

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
def paused(run_ir, write_playbook) -> str:
    """An incident paused at its manual step (end of input at the prompt)."""
    write_playbook("playbooks/tamper.yaml", PLAYBOOK)
    result = run_ir("run", "tamper", "--var", "host=web01", "--var", "severity=high", input="")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Paused" in result.stdout
    return incident_id(result)


def database(isolated: Path) -> sqlite3.Connection:
    return sqlite3.connect(isolated.parent / "home" / ".ir" / "ir.db")


def sql(isolated: Path, statement: str, *args: object) -> None:
    with database(isolated) as db:
        assert db.execute(statement, args).rowcount == 1


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
def test_verify_catches_an_edited_incident_header(run_ir, paused, isolated, column, value, said):
    sql(isolated, f"UPDATE incidents SET {column} = ? WHERE id = ?", value, paused)
    result = run_ir("verify", paused)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{paused}: timeline does NOT verify: the incident's header was edited: {said}")


def test_verify_and_resume_refuse_an_edited_stored_playbook(run_ir, paused, isolated):
    with database(isolated) as db:
        (text,) = db.execute("SELECT text FROM bundles WHERE incident = ?", (paused,)).fetchone()
    edited = bytes(text).replace(b"Check the host.", b"TAMPERED PLAYBOOK says: everything is fine")
    sql(isolated, "UPDATE bundles SET text = ? WHERE incident = ?", edited, paused)
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


def test_verify_file_catches_a_header_edited_before_the_export(run_ir, paused, isolated, tmp_path):
    sql(isolated, "UPDATE incidents SET title = 'Nothing happened' WHERE id = ?", paused)
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
