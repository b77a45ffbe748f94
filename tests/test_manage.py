"""Incidents you can manage (issue 16): a run stores its incident with its first answer, so stopping before that
leaves nothing; a dry run or an exercise can be discarded (recorded, verified, hidden from `ir incidents`), a live
incident never."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from test_run import ANSWERS  # the demo's answers: inputs, a role, a decision's rationale, a skipped step

from ir.errors import IrError, UsageError
from ir.format.catalog import Catalog
from ir.integrations.registry import capabilities
from ir.run.answers import Answers, AnswersResponder
from ir.run.drive import discard, drive, opening, resumable, start
from ir.run.opening import NotOpened
from ir.run.outbox import open_outbox
from ir.run.responder import PauseRequested
from ir.store.integrity import problem

from pseudo import Pty
from runs import incident_id, install_demo, kinds, timeline


def rows(table: str) -> int:
    with sqlite3.connect(Path(os.environ["IR_HOME"]) / "ir.db") as db:
        count = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    db.close()
    return int(count)


def assert_store_empty(run_ir) -> None:
    assert run_ir("incidents").stdout == "No incidents yet. Open one with `ir run PLAYBOOK`.\n"
    assert [rows(t) for t in ("incidents", "events", "bundles", "steps", "variables", "outbox")] == [0] * 6


# Opening with the first answer ---------------------------------------------------------------------------------
def test_ctrl_c_at_the_first_question_leaves_nothing_in_the_store(run_ir, isolated):
    install_demo(isolated)
    tty = Pty("run", "demo", "--dry-run")
    tty.expect("Opened ")
    found = tty.expect(":")
    tty.expect("vendor (string)\n  > ")
    tty.child.sendintr()
    tty.expect(f"Stopped before the first answer: nothing was recorded, and {found} was not opened; "
               "`ir incidents` does not list it.")
    assert tty.close() == 130
    assert "Traceback" not in tty.seen
    assert_store_empty(run_ir)


def test_the_end_of_input_before_the_first_answer_leaves_nothing_either(run_ir, isolated):
    install_demo(isolated)
    result = run_ir("run", "demo", "--dry-run", input="")
    assert result.returncode == 130, result.stderr
    found = incident_id(result)
    assert result.stdout.splitlines()[-1] == (f"Stopped before the first answer: nothing was recorded, and {found} "
                                              "was not opened; `ir incidents` does not list it.")
    assert result.stderr == ""
    assert_store_empty(run_ir)
    assert run_ir("timeline", found).stderr.startswith(f"error: no incident {found!r} in ")


def test_the_first_answer_opens_the_incident_and_a_stop_after_it_pauses_it(run_ir, isolated):
    install_demo(isolated)
    result = run_ir("run", "demo", "--dry-run", input="ACME\n")
    assert result.returncode == 0, result.stderr
    found = incident_id(result)
    assert result.stdout.splitlines()[-1] == f"Paused {found}; nothing is lost. Continue with: ir resume {found}"
    assert kinds(timeline(run_ir, found)) == ["incident.opened", "input.set", "incident.paused"]
    assert run_ir("verify", found).returncode == 0
    assert run_ir("incidents").stdout.startswith(f"{found}  open, medium, dry run  ")


def test_an_exercise_stopped_before_its_first_answer_leaves_nothing(run_ir, isolated):
    install_demo(isolated)
    result = run_ir("tabletop", "demo", input="")
    assert result.returncode == 130, result.stderr
    assert result.stdout.splitlines()[-1].startswith("Stopped before the first answer: nothing was recorded, and ")
    assert_store_empty(run_ir)


# Discarding, in process on both stores ---------------------------------------------------------------------------
@pytest.fixture
def opened(make_store):
    store = make_store()
    bundle = Catalog(capabilities).bundle("supply-chain")
    return store, {name: start(store, bundle, "dana", live=live, exercise=exercise)
                   for name, live, exercise in (("dry", False, False), ("live", True, False),
                                                ("exercise", True, True))}


def test_a_dry_run_and_an_exercise_are_discarded_with_an_event_and_still_verify(opened):
    store, found = opened
    for name in ("dry", "exercise"):
        incident = found[name]
        discard(store, incident.id, "erin", "a practice run")
        assert store.incident(incident.id).status == "discarded"
        last = list(store.events(incident.id))[-1]
        assert (last.kind, last.actor, last.message, last.data["was"]) == ("incident.discarded", "erin",
                                                                           "a practice run", "open")
        assert problem(store, incident.id) is None  # the header, the chain and the sealed status agree
        assert [e.seq for e in store.events(incident.id)] == [1, 2]  # appended, nothing removed
    with pytest.raises(IrError) as refused:
        resumable(store, found["dry"].id)
    assert str(refused.value) == (f"{found['dry'].id} was discarded\n  fix: a discarded incident cannot be resumed; "
                                  f"its timeline stays: `ir timeline {found['dry'].id}`")


def test_a_live_incident_is_never_discarded_and_nothing_changes(opened):
    store, found = opened
    live = found["live"]
    before = (store.incident(live.id), list(store.events(live.id)))
    with pytest.raises(IrError) as refused:
        discard(store, live.id, "erin", "oops")
    assert str(refused.value) == (f"{live.id} is a live incident: only a dry run or an exercise can be discarded\n"
                                  f"  fix: nothing was changed; a live incident's record is kept: `ir close {live.id}`"
                                  " ends it")
    assert refused.value.exit_code == 1
    assert (store.incident(live.id), list(store.events(live.id))) == before


def test_discarding_twice_or_without_a_reason_is_refused_and_changes_nothing(opened):
    store, found = opened
    dry = found["dry"].id
    with pytest.raises(UsageError) as empty:
        discard(store, dry, "erin", "  ")
    assert str(empty.value) == "--reason is empty\n  fix: say why it is set aside: the timeline records it"
    assert store.incident(dry).status == "open" and store.incident(dry).event_count == 1
    discard(store, dry, "erin", "practice")
    before = store.incident(dry)
    with pytest.raises(IrError) as again:
        discard(store, dry, "erin", "practice")
    assert str(again.value) == (f"{dry} was discarded already\n  fix: nothing was changed; `ir incidents --status "
                                "discarded` lists the discarded incidents")
    assert store.incident(dry) == before


def test_an_incident_a_run_holds_is_not_discarded(opened):
    store, found = opened
    dry = found["dry"].id
    other = store.reopen()
    try:
        with other.running(dry), pytest.raises(IrError) as busy:
            discard(store, dry, "erin", "practice")
    finally:
        other.close()
    assert str(busy.value).startswith(f"{dry} is being run by "), busy.value
    assert store.incident(dry).status == "open" and store.incident(dry).event_count == 1


# Discarding at the command line ------------------------------------------------------------------------------------
def test_ir_discard_hides_a_dry_run_from_ir_incidents_and_refuses_a_live_one(run_ir, isolated):
    install_demo(isolated)
    (isolated / "answers.yaml").write_text(ANSWERS)
    dry = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive", "--answers", "answers.yaml"))
    live = incident_id(run_ir("run", "demo", "--non-interactive", "--answers", "answers.yaml"))

    refused = run_ir("discard", live, "--reason", "oops")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (f"error: {live} is a live incident: only a dry run or an exercise can be discarded\n"
                              f"  fix: nothing was changed; a live incident's record is kept: `ir close {live}` "
                              "ends it\n")
    assert kinds(timeline(run_ir, live))[-1] != "incident.discarded"
    assert run_ir("discard", dry).returncode == 2  # --reason is required

    done = run_ir("discard", dry, "--reason", "practice run")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (f"Discarded {dry} (dry run: Compromised ACME Softphone software); its timeline stays: "
                           f"`ir timeline {dry}`\n")
    assert run_ir("verify", dry).stdout.startswith(f"{dry}: timeline verifies: ")
    assert timeline(run_ir, dry)[-1]["kind"] == "incident.discarded"

    listed = run_ir("incidents").stdout
    assert live in listed and dry not in listed
    assert run_ir("incidents", "--status", "discarded").stdout.startswith(f"{dry}  discarded, high, dry run  ")
    assert [i["id"] for i in json.loads(run_ir("incidents", "--json").stdout)] == [live]
    resumed = run_ir("resume", dry)
    assert (resumed.returncode, resumed.stderr) == (1, f"error: {dry} was discarded\n  fix: a discarded incident "
                                                       f"cannot be resumed; its timeline stays: `ir timeline {dry}`\n")
    closed = run_ir("close", dry)
    assert (closed.returncode, closed.stderr) == (1, f"error: {dry} was discarded: there is nothing to close\n")


def test_ir_incidents_says_when_every_incident_is_discarded(run_ir, isolated):
    install_demo(isolated)
    dry = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive"))
    assert run_ir("discard", dry, "--reason", "practice").returncode == 0
    assert run_ir("incidents").stdout == "No incidents but 1 discarded: `ir incidents --status discarded` lists them.\n"
    bad = run_ir("incidents", "--status", "gone")
    assert (bad.returncode, bad.stderr) == (2, "error: --status 'gone' is not one of open, closed, discarded\n"
                                               "  fix: write e.g. --status open\n")


# Opening with the first answer, in process on both stores ---------------------------------------------------------
class Stops(AnswersResponder):
    """A responder who stops (Ctrl-C, the end of input) at the first question."""

    def value(self, *args: object, **kwargs: object) -> str | None:
        raise PauseRequested


def test_a_run_stopped_before_its_first_answer_stores_nothing_on_either_store(make_store, isolated):
    install_demo(isolated)
    store, bundle = make_store(), Catalog(capabilities).bundle("demo")
    opened = opening(store, bundle, "tester", live=False)
    run_in = opened.as_store()
    outbox = open_outbox(run_in, bundle, opened.pending, "tester", say=lambda text: None)
    with pytest.raises(NotOpened) as stopped:
        drive(run_in, bundle, opened.pending.id, "tester", Stops(Answers(), person=None, examples=True, say=lambda text: None),
              outbox, wait=5)
    assert (str(stopped.value), stopped.value.exit_code) == (
        f"stopped before the first answer: nothing was recorded, and {opened.pending.id} was not opened\n"
        "  fix: `ir run` again opens a new incident", 130)
    assert store.incidents() == [] and list(store.events(opened.pending.id)) == [] and store.drivers() == {}


def test_a_run_opened_with_its_first_answer_is_held_and_verifies_on_either_store(make_store, isolated):
    install_demo(isolated)
    store, bundle = make_store(), Catalog(capabilities).bundle("demo")
    opened = opening(store, bundle, "tester", live=False)
    run_in = opened.as_store()
    assert store.incidents() == []
    seen: list[dict[str, str]] = []

    class Watched(AnswersResponder):
        def say(self, text: str) -> None:  # while the run goes on: who holds the incident, from another connection
            other = store.reopen()
            try:
                seen.append(other.drivers())
            finally:
                other.close()

    outbox = open_outbox(run_in, bundle, opened.pending, "tester", say=lambda text: None)
    result = drive(run_in, bundle, opened.pending.id, "tester",
                   Watched(Answers({"vendor": "3CX"}), person=None, examples=True, say=lambda text: None), outbox,
                   wait=5)
    assert result.status == "finished"
    found = store.incident(opened.pending.id)
    assert (found.status, found.opened_by, found.mode) == ("open", "tester", "dry-run")
    assert [e.kind for e in store.events(found.id)][:2] == ["incident.opened", "input.set"]
    assert problem(store, found.id) is None
    assert seen and all(opened.pending.id in drivers for drivers in seen)  # held from its creation on
    assert store.drivers() == {}  # and let go at the end
