"""Never lose state, never repeat an action: SIGKILL at many points and resume, notes from a second process
while a run writes, and a timeline that catches tampering."""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import pty
import random
import select
import socket
import sqlite3
import stat
import subprocess
import sys
import termios
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ir.store.records import Draft, OutboxItem
from ir.store.sqlite import SqliteStore

from conftest import IR
from pseudo import Pty
from runs import OPEN_STORE, incident_id, install_demo, kinds, timeline

GROUPS = 60


def long_playbook(groups: int = GROUPS) -> str:
    """Many small steps of every kind that runs without a person, so a run lasts long enough to be killed."""
    steps = []
    for n in range(groups):
        steps.append(f"""
  - {{id: note_{n}, kind: note, title: "Note {n}", phase: containment, message: "note {n} for {{{{ inputs.vendor }}}}"}}
  - {{id: post_{n}, kind: notify, title: "Post {n}", phase: containment, message: "update {n}"}}
  - {{id: ask_{n}, kind: prompt, title: "Ask {n}", phase: containment, questions: [{{id: q_{n}, type: integer, default: {n}}}]}}
  - id: pick_{n}
    kind: decision
    title: "Pick {n}"
    phase: containment
    question: "Which way {n}?"
    default: left
    choices: [{{id: left, label: Left}}, {{id: right, label: Right}}]
  - {{id: work_{n}, kind: manual, title: "Work {n}", phase: containment, milestone: contained, instructions: "do {n}"}}""")
    return ("id: long\ntitle: Long run\nversion: \"1.0.0\"\ninputs: [{id: vendor, type: string, default: ACME}]\n"
            "steps:" + "".join(steps) + "\n")


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*IR, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def event_count() -> int:
    """How far the run has got, read from the store as another process would (0 before the incident exists)."""
    path = Path(os.environ["IR_HOME"]) / "ir.db"
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=10)
    try:
        row = db.execute("SELECT max(event_count) FROM incidents").fetchone()
    except sqlite3.OperationalError:  # the schema is being created right now
        row = None
    finally:
        db.close()
    return (row or (0,))[0] or 0


def kill_at(args: list[str], events: int) -> bool:
    """Start `ir args`, SIGKILL it once the store holds `events` events; False if it ended first."""
    process = start(args)
    deadline = time.monotonic() + 60
    while event_count() < events and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    killed = process.poll() is None
    process.kill()
    process.communicate(timeout=30)
    return killed


# A run killed at 10 points and resumed each time: 22 s alone on 2 cores, 83 s on a loaded one.
@pytest.mark.timeout(600)
def test_sigkill_at_many_points_then_resume_loses_nothing_and_repeats_nothing(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "long.yaml").write_text(long_playbook())
    reference = run_ir("run", "long", "--dry-run", "--non-interactive")
    assert reference.returncode == 0, reference.stderr
    expected = kinds(timeline(run_ir, incident_id(reference)))
    os.remove(Path(os.environ["IR_HOME"]) / "ir.db")  # start again from an empty store

    # Kill points spread over the whole run, from the incident's first events to its last steps.
    targets = sorted(random.Random(20230329).sample(range(2, len(expected)), 10))
    assert kill_at(["run", "long", "--dry-run", "--non-interactive"], targets[0])
    incident = json.loads(run_ir("incidents", "--json").stdout)[0]["id"]
    killed = 1
    for target in targets[1:]:
        killed += kill_at(["resume", incident, "--non-interactive"], target + killed)
    final = run_ir("resume", incident, "--non-interactive")
    assert final.returncode == 0, final.stderr
    assert "Playbook finished" in final.stdout
    assert killed >= 8  # the kills did land in the middle of the run

    got = [k for k in kinds(timeline(run_ir, incident)) if k not in ("incident.resumed", "incident.paused")]
    # Exactly the events of an uninterrupted run: a step killed before it completed started once and was
    # finished by the resume; nothing lost, nothing twice.
    assert got == expected
    assert run_ir("verify", incident).returncode == 0


def test_a_command_closes_the_store_and_leaves_no_write_ahead_log_behind(run_ir, isolated):
    install_demo(isolated)
    incident = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive", process=True))
    home = Path(os.environ["IR_HOME"])
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("ir.db")) == ["ir.db"]
    assert run_ir("note", incident, "after the run", process=True).returncode == 0
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("ir.db")) == ["ir.db"]
    tty = Pty("run", "demo", "--dry-run")  # at a terminal, which also watches for steps done elsewhere (a store)
    tty.expect("vendor (string)\n  > ")
    tty.child.sendintr()
    tty.expect("Stopped before the first answer")
    assert tty.close() == 130
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("ir.db")) == ["ir.db"]


def test_notes_from_a_second_terminal_during_a_run_are_all_kept(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "long.yaml").write_text(long_playbook())
    run = start(["run", "long", "--dry-run", "--non-interactive"])
    deadline = time.monotonic() + 30
    incident = None
    while incident is None and time.monotonic() < deadline:  # the id, as soon as the incident exists
        listed = run_ir("incidents", "--json")
        if listed.returncode == 0 and listed.stdout.strip() not in ("", "[]"):
            incident = json.loads(listed.stdout)[0]["id"]
    assert incident, "the run never opened its incident"
    results: list[subprocess.CompletedProcess[str]] = []

    def add(n: int) -> None:
        results.append(run_ir("note", incident, f"side note {n}", "--as", f"analyst {n}"))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    events = timeline(run_ir, incident)
    notes = sorted(e["message"] for e in events if e["message"].startswith("side note"))
    assert notes == [f"side note {n}" for n in range(6)]
    assert {e["actor"] for e in events if e["message"].startswith("side note")} == {f"analyst {n}" for n in range(6)}
    assert run_ir("verify", incident).returncode == 0


# 6 rounds of 8 processes at once: 18 s alone on 2 cores, 47 s on a loaded one.
@pytest.mark.timeout(600)
def test_processes_opening_a_new_store_at_once_all_work(isolated):
    # Two races, both seen: the schema created twice (one first open in five failed), and the switch to WAL found
    # busy (rarer: once in a CI run). Eight processes at a time, six times.
    for trial in range(6):
        home = isolated / f"home{trial}"
        runs = [subprocess.Popen([sys.executable, "-c", OPEN_STORE], env={**os.environ, "IR_HOME": str(home)},
                                 text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
        results = [(run.wait(timeout=60), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
        for run in runs:
            run.stdout.close()  # type: ignore[union-attr]
            run.stderr.close()  # type: ignore[union-attr]
        assert results == [(0, "")] * 8


def test_an_action_settled_elsewhere_is_not_begun_again(finished):
    store = SqliteStore(Path(os.environ["IR_HOME"]) / "ir.db")
    item = store.enqueue(OutboxItem(f"{finished}/late/post", finished, "slack", "notify.post", {"text": "hi"}),
                         Draft("integration.requested", "tester", "slack notify.post requested", step="late"))
    assert store.begin(item.key)  # pending: this process sends it
    assert store.settle(item.key, Draft("integration.done", "tester", "posted"), status="done", ref={"ts": "1"})
    assert not store.begin(item.key)  # done by then (by another process): not marked sending, not sent again
    settled = store.outbox_item(item.key)
    assert settled is not None and (settled.status, settled.attempts) == ("done", 1)
    store.close()


def test_a_second_process_cannot_run_an_incident_that_one_is_running(run_ir, isolated):
    install_demo(isolated)
    first = subprocess.Popen([*IR, "run", "demo", "--dry-run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert first.stdin is not None
    first.stdin.write("ACME\n")  # the first answer opens the incident; then it waits at its second question
    first.stdin.flush()
    deadline = time.monotonic() + 30
    while event_count() < 2:
        assert time.monotonic() < deadline and first.poll() is None, "the run never opened its incident"
        time.sleep(0.01)
    [listed] = json.loads(run_ir("incidents", "--json").stdout)
    before = timeline(run_ir, listed["id"])

    second = run_ir("resume", listed["id"], "--non-interactive")
    assert (second.returncode, second.stdout) == (1, "")
    assert second.stderr.startswith(f"error: {listed['id']} is being run by {getpass.getuser()} (pid {first.pid} on "
                                    f"{socket.gethostname()}, since 20"), second.stderr
    assert second.stderr.endswith(f"  fix: one process drives an incident at a time: continue there, or stop it and "
                                  f"`ir resume {listed['id']}`; `ir note`, `ir step` and `ir status` work "
                                  "meanwhile\n")
    assert timeline(run_ir, listed["id"]) == before  # not even a `resumed` event
    assert run_ir("note", listed["id"], "meanwhile").returncode == 0

    first.kill()  # SIGKILL: the operating system lets go of the incident
    first.communicate(timeout=30)
    resumed = run_ir("resume", listed["id"], "--non-interactive", "--var", "vendor=ACME")
    assert resumed.returncode == 0, resumed.stderr


@pytest.fixture
def finished(run_ir, isolated) -> str:
    install_demo(isolated)
    result = run_ir("run", "demo", "--dry-run", "--non-interactive")
    assert result.returncode == 0, result.stderr
    return incident_id(result)


def tamper(sql: str, *params: object) -> None:
    db = sqlite3.connect(Path(os.environ["IR_HOME"]) / "ir.db")
    with db:
        db.execute(sql, params)
    db.close()


def test_verify_passes_an_untouched_timeline(run_ir, finished):
    result = run_ir("verify", finished)
    assert result.returncode == 0
    assert result.stdout.startswith(f"{finished}: timeline verifies: 32 events, head ")


@pytest.mark.parametrize(("sql", "reason"), [
    ("UPDATE events SET message = 'nothing happened' WHERE seq = 13",
     "event 13: was altered after it was recorded (its hash does not match its content)"),
    ("UPDATE events SET occurred_at = '2026-01-01T00:00:00Z' WHERE seq = 7",
     "event 7: was altered after it was recorded (its hash does not match its content)"),
    ("DELETE FROM events WHERE seq = 20",
     "event 20: missing (found event 21 next): events were removed or renumbered"),
    ("UPDATE events SET prev_hash = hash WHERE seq = 9",
     "event 9: does not follow the event before it: an event was inserted or removed here"),
])
def test_verify_names_the_first_event_altered_or_removed(run_ir, finished, sql, reason):
    tamper(sql)
    result = run_ir("verify", finished)
    assert result.returncode == 1
    assert result.stderr == f"{finished}: timeline does NOT verify: {reason}\n"


def test_verify_catches_events_removed_from_the_end(run_ir, finished):
    tamper("DELETE FROM events WHERE seq > 30")
    result = run_ir("verify", finished)
    assert result.returncode == 1
    assert "the incident recorded 32 events" in result.stderr and "the timeline has 30" in result.stderr


def test_evidence_records_custody_without_copying_unless_asked(run_ir, finished, isolated):
    artefact = isolated / "triage.zip"
    artefact.write_bytes(os.urandom(4096))
    digest = hashlib.sha256(artefact.read_bytes()).hexdigest()
    result = run_ir("evidence", finished, "triage.zip", "-d", "KAPE triage of WS-042",
                    "--at", "2026-03-29 16:10 Europe/Berlin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{finished}: evidence {digest} (4096 bytes) recorded as event 33")
    event = timeline(run_ir, finished)[-1]
    assert (event["kind"], event["message"], event["actor"]) == ("evidence", "KAPE triage of WS-042", "tester")
    assert event["data"] == {"path": str(artefact), "sha256": digest, "size": 4096}
    assert event["occurred_at"] == "2026-03-29T16:10:00+02:00"  # summer time began that night
    assert not (Path(os.environ["IR_HOME"]) / "evidence").exists()

    copied = run_ir("evidence", finished, "triage.zip", "--copy")
    assert copied.returncode == 0, copied.stderr
    kept = Path(timeline(run_ir, finished)[-1]["data"]["copy"])
    assert kept.read_bytes() == artefact.read_bytes()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700


def test_evidence_of_a_missing_file_changes_nothing(run_ir, finished):
    result = run_ir("evidence", finished, "nope.bin")
    assert (result.returncode, result.stderr) == (1, "error: nope.bin: no such file\n"
                                                     "  fix: give the path of the file to record as evidence\n")
    assert len(timeline(run_ir, finished)) == 32
    Path("logs").mkdir()
    result = run_ir("evidence", finished, "logs")
    assert (result.returncode, result.stderr) == (1, "error: logs: a directory, not a file\n"
                                                     "  fix: record each file, or an archive of the directory "
                                                     "(tar -czf evidence.tgz DIR)\n")
    assert len(timeline(run_ir, finished)) == 32


def test_note_keeps_the_time_zone_it_was_given(run_ir, finished):
    result = run_ir("note", finished, "first beacon seen", "--at", "2026-03-29 14:02 America/Los_Angeles")
    assert result.returncode == 0, result.stderr
    event = timeline(run_ir, finished)[-1]
    assert (event["occurred_at"], event["message"]) == ("2026-03-29T14:02:00-07:00", "first beacon seen")
    bad = run_ir("note", finished, "x", "--at", "yesterday-ish")
    assert bad.returncode == 2 and "is not a date and time" in bad.stderr


def test_ctrl_c_at_a_prompt_pauses_and_loses_nothing(isolated):
    install_demo(isolated)
    master, slave = pty.openpty()
    process = subprocess.Popen([*IR, "run", "demo", "--dry-run"], stdin=slave, stdout=slave, stderr=slave,
                               start_new_session=True,
                               preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))  # noqa: PLW1509
    os.close(slave)
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while text not in seen:
            assert time.monotonic() < deadline, f"waited for {text!r}; the terminal shows:\n{seen.decode()}"
            if select.select([master], [], [], 0.5)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break

    until(b"vendor")
    os.write(master, b"ACME\r")
    until(b"4. critical")
    os.write(master, b"\x03")  # Ctrl-C
    until(b"nothing is lost")
    assert process.wait(timeout=30) == 0, seen.decode()
    os.close(master)
    text = seen.decode()
    incident = text.split("Paused ")[1].split(";")[0]
    assert "Traceback" not in text
    assert f"Continue with: ir resume {incident}" in text
    events = subprocess.run([*IR, "timeline", incident, "--json"], capture_output=True, text=True, check=True,
                            timeout=60).stdout.splitlines()
    assert [json.loads(e)["message"] for e in events[-2:]] == [
        "inputs.vendor = ACME", "paused while opening"]


class _BareOk(BaseHTTPRequestHandler):
    """A Slack stand-in that answers every method `{"ok": true}` and nothing else: ir's Slack code then meets an
    answer it does not expect (no channel in a conversations.create reply), as a bug in delivery would."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def a_bug_in_delivery(run_ir, write_playbook) -> subprocess.CompletedProcess[str]:
    """A live run against a Slack that answers `{"ok": true}` and nothing else: a bug in ir's delivery."""
    write_playbook("playbooks/chan.yaml", """\
        id: chan
        title: Channel
        version: "1.0.0"
        steps:
          - {id: open, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
          - {id: hello, kind: notify, title: Say hello, phase: detection-analysis, message: hello}
        """)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BareOk)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return run_ir("run", "chan", "--non-interactive", env={
            "SLACK_BOT_TOKEN": "xoxb-test", "IR_SLACK_BASE_URL": f"http://127.0.0.1:{server.server_port}/"})
    finally:
        server.shutdown()
        server.server_close()


def test_a_bug_in_background_delivery_reaches_the_one_handler(run_ir, write_playbook, isolated):
    """Exit 3 with one line and the private log, as for any bug: not a traceback on the terminal from the delivery
    thread, not 'Playbook finished' and exit 0."""
    result = a_bug_in_delivery(run_ir, write_playbook)
    log = Path(os.environ["IR_HOME"]) / "logs" / "ir-error.log"
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("internal error: ")
    assert result.stderr.endswith(f"this is a bug in ir; the traceback is in {log}\n")
    assert "Playbook finished" not in result.stdout
    assert "Traceback" in log.read_text() and stat.S_IMODE(log.stat().st_mode) == 0o600


def test_evidence_is_hashed_from_the_bytes_it_keeps_and_a_link_records_both_paths(run_ir, finished, isolated):
    artefact = isolated / "memory.raw"
    artefact.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # more than one read of the copy loop
    (isolated / "latest.raw").symlink_to(artefact)
    result = run_ir("evidence", finished, "latest.raw", "--copy")
    assert result.returncode == 0, result.stderr
    data = timeline(run_ir, finished)[-1]["data"]
    assert data["path"] == str(isolated / "latest.raw") and data["link_to"] == str(artefact)
    assert data["sha256"] == hashlib.sha256(Path(data["copy"]).read_bytes()).hexdigest()
    assert data["sha256"] == hashlib.sha256(artefact.read_bytes()).hexdigest() and data["size"] == 3145745
    assert [p.name for p in Path(data["copy"]).parent.iterdir()] == [Path(data["copy"]).name]  # no spool left


def test_evidence_still_being_written_is_refused_and_nothing_is_kept(run_ir, finished, isolated):
    growing = isolated / "capture.pcap"
    with growing.open("wb") as f:
        f.truncate(32 * 1024 * 1024)  # sparse: quick to read, long enough for appends to land meanwhile
    writer = subprocess.Popen([sys.executable, "-c", (  # 1 KiB a millisecond, for 10 s at most: bounded
        "import time\n"
        "end = time.time() + 10\n"
        f"with open({str(growing)!r}, 'ab', buffering=0) as f:\n"
        "    while time.time() < end:\n"
        "        f.write(b'x' * 1024)\n"
        "        time.sleep(0.001)\n")])
    try:
        time.sleep(0.3)
        result = run_ir("evidence", finished, "capture.pcap", "--copy")
    finally:
        writer.kill()
        writer.wait()
    assert result.returncode == 1
    assert "the file changed while it was read" in result.stderr and "nothing was recorded" in result.stderr
    assert len(timeline(run_ir, finished)) == 32
    kept = Path(os.environ["IR_HOME"]) / "evidence" / finished
    assert not kept.exists() or list(kept.iterdir()) == []


def test_evidence_that_is_a_pipe_is_refused_without_blocking(run_ir, finished, isolated):
    os.mkfifo(isolated / "stream")
    result = run_ir("evidence", finished, "stream", timeout=20)  # opening a FIFO would wait for a writer
    assert (result.returncode, result.stderr) == (
        1, "error: stream: not a regular file (a pipe, socket or device)\n"
           "  fix: record a regular file: save what the pipe or device gives to a file first\n")
    assert len(timeline(run_ir, finished)) == 32
