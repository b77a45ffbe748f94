"""Witnesses (issue 13): every message ir posts to the incident channel and every comment on the incident ticket
publishes the timeline's head as it is sent, where the store's SQL cannot reach. Someone with the store who rewrites
history and re-chains it, or removes the newest events and rolls the state back, gets past `ir verify`; `ir verify
--witnesses` reads the heads back from Slack and Jira and names each one the timeline no longer contains."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from ir.store.timeline import digest_of

from runs import incident_id, timeline

PLAYBOOK = """\
id: witnessed
title: Witnessed response
version: "1.0.0"
incident_title: "Beacon on {{ inputs.host }}"
inputs: [{id: host, type: string, default: web01}]
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: status, kind: notify, action: status, title: Post the status, phase: detection-analysis}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis, summary: Beacon}
  - {id: found, kind: note, title: Finding, phase: detection-analysis, message: "C2 beacon from {{ inputs.host }}"}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared"}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment, comment: "Contain now"}
"""
WITNESS = re.compile(r"ir timeline #(\d+) ([0-9a-f]{16})")


@pytest.fixture
def env(isolated: Path, slack_server, jira_server) -> dict[str, str]:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "witnessed.yaml").write_text(PLAYBOOK)
    (isolated / "ir.toml").write_text('[jira]\nproject = "IR"\n')
    return {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url,
            "JIRA_URL": jira_server.url, "JIRA_USER": jira_server.user, "JIRA_API_TOKEN": jira_server.token}


@pytest.fixture
def finished(run_ir, env) -> str:
    result = run_ir("run", "witnessed", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    return incident_id(result)


def database(isolated: Path) -> sqlite3.Connection:
    return sqlite3.connect(isolated.parent / "home" / ".ir" / "ir.db")


def published(slack_server, jira_server, incident: str) -> list[tuple[int, str]]:
    """Every head the services hold, as (seq, hash start): the bot's messages in the channel, the ticket's comments."""
    texts = [json.dumps([m.get("text"), m.get("blocks")]) for m in slack_server.messages(f"ir-{incident.lower()}")]
    (ticket,) = jira_server.issues
    texts += jira_server.comments(ticket)
    return [(int(seq), digest) for text in texts for seq, digest in WITNESS.findall(text)]


def test_each_message_and_comment_publishes_the_head_it_was_sent_at(run_ir, env, finished, slack_server,
                                                                    jira_server):
    messages = slack_server.messages(f"ir-{finished.lower()}")
    assert len(messages) == 2  # the pinned status and the announcement
    for message in messages:
        assert WITNESS.search(message["blocks"][1]["elements"][0]["text"]), message["blocks"]
    (comment,) = jira_server.comments(next(iter(jira_server.issues)))
    assert WITNESS.search(comment.splitlines()[-1]), comment
    heads = published(slack_server, jira_server, finished)
    assert len(heads) == 3
    events = {e["seq"]: e["hash"] for e in timeline(run_ir, finished)}
    for seq, digest in heads:
        assert events[seq].startswith(digest)

    result = run_ir("verify", finished, "--witnesses", env=env)
    assert result.returncode == 0, result.stderr
    newest = max(seq for seq, _ in heads)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{finished}: timeline verifies: ")
    assert re.fullmatch(rf"{finished}: 3 published head\(s\) are in the timeline; the newest, event {newest}, from "
                        r"(Slack message [0-9.]+|Jira IR-1 comment \d+)", lines[1]), lines[1]


def rechain(db: sqlite3.Connection, incident: str, start: int) -> None:
    """What an attacker with the store does after editing event `start`: recompute every hash from there on, and
    the head, so that the chain verifies again."""
    rows = db.execute("SELECT * FROM events WHERE incident = ? AND seq >= ? ORDER BY seq", (incident, start)).fetchall()
    prev = db.execute("SELECT hash FROM events WHERE incident = ? AND seq = ?", (incident, start - 1)).fetchone()[0]
    for row in rows:
        digest = digest_of(*row[:10], prev)
        db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE incident = ? AND seq = ?",
                   (prev, digest, incident, row[1]))
        prev = digest
    db.execute("UPDATE incidents SET head_hash = ? WHERE id = ?", (prev, incident))


def test_a_rewritten_and_rechained_history_passes_verify_but_not_its_witnesses(run_ir, env, finished, isolated):
    with database(isolated) as db:
        (seq,) = db.execute("SELECT seq FROM events WHERE incident = ? AND kind = 'note' AND step = 'found'",
                            (finished,)).fetchone()
        db.execute("UPDATE events SET message = 'nothing found' WHERE incident = ? AND seq = ?", (finished, seq))
        rechain(db, finished, seq)

    assert run_ir("verify", finished).returncode == 0  # the limit of a store checked against itself
    result = run_ir("verify", finished, "--witnesses", env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) >= 2  # the announcement and the comment were sent after the note (the status may have been)
    for line in lines:
        assert re.fullmatch(rf"{finished}: a published head is not in the timeline: (Slack message [0-9.]+|Jira IR-1 "
                            r"comment \d+) published event \d+ as [0-9a-f]{16}…; the timeline's event \d+ is "
                            r"[0-9a-f]{16}…: the timeline was rewritten", line), line


def test_events_removed_from_the_end_with_the_state_rolled_back_pass_verify_but_not_the_witnesses(
        run_ir, env, finished, isolated):
    closed = run_ir("close", finished, env=env)  # uploads the report, with the head, to the channel
    assert closed.returncode == 0, closed.stderr
    with database(isolated) as db:  # hide the closing: its events, the report's action, the closed status
        (last,) = db.execute("SELECT max(seq) FROM events WHERE incident = ? AND kind != 'incident.closed' AND "
                             "seq < (SELECT seq FROM events WHERE incident = ? AND kind = 'incident.closed')",
                             (finished, finished)).fetchone()
        (head,) = db.execute("SELECT hash FROM events WHERE incident = ? AND seq = ?", (finished, last)).fetchone()
        db.execute("DELETE FROM events WHERE incident = ? AND seq > ?", (finished, last))
        db.execute("DELETE FROM outbox WHERE key = ?", (f"{finished}/_close/notify.upload",))
        db.execute("UPDATE incidents SET status = 'open', closed_at = NULL, head_hash = ?, event_count = ? "
                   "WHERE id = ?", (head, last, finished))

    assert run_ir("verify", finished).returncode == 0
    result = run_ir("verify", finished, "--witnesses", env=env)
    assert result.returncode == 1
    assert re.search(rf"^{finished}: a published head is not in the timeline: Slack message [0-9.]+ published "
                     rf"event (\d+) \([0-9a-f]{{16}}…\); the timeline ends at event {last}: events were removed from "
                     r"its end$", result.stderr, re.M), result.stderr


def test_witnesses_that_cannot_be_read_fail_the_check_and_say_why(run_ir, env, finished):
    down = {**env, "IR_SLACK_BASE_URL": "http://127.0.0.1:9/api/"}
    result = run_ir("verify", finished, "--witnesses", env=down)
    assert result.returncode == 1
    assert re.search(rf"^{finished}: witnesses not read from slack: no answer from Slack \(\w+\)$", result.stderr,
                     re.M), result.stderr


def test_a_dry_run_has_no_witnesses_and_says_so(run_ir, env):
    result = run_ir("run", "witnessed", "--non-interactive", "--dry-run")
    assert result.returncode == 0, result.stderr
    incident = incident_id(result)
    checked = run_ir("verify", incident, "--witnesses", env=env)
    assert checked.returncode == 1
    assert checked.stderr == f"{incident}: no published head was found in the incident's channel or ticket\n"
    assert run_ir("verify", "--file", "x.json", "--witnesses").returncode == 2
