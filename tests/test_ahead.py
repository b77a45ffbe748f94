"""A step done ahead of the run (`ir step`, ir.run.ahead), in process on both stores: what it records, in one
transaction, and each refusal, which changes nothing."""

from __future__ import annotations

import pytest

from ir.errors import IrError, UsageError
from ir.format.catalog import Catalog
from ir.integrations.registry import capabilities
from ir.run.ahead import Contribution, contribute, marker
from ir.run.drive import start


@pytest.fixture
def incident(make_store):
    store = make_store()
    found = start(store, Catalog(capabilities).bundle("supply-chain"), "dana", live=False)
    return store, found.id


def test_ticks_answers_a_decision_and_a_completion_are_recorded_with_who_and_the_role(incident):
    store, incident_id = incident
    said = contribute(store, incident_id, "inventory", "erin", Contribution(ticks=(1, 3), note="counted"))
    assert said == ["ticked 1: Retention of each source known; not-covered periods recorded per host",
                    "ticked 3: macOS inventory (Jamf, osquery or EDR) done", "note recorded"]
    assert store.steps(incident_id)["inventory"].checked == (0, 2)
    said = contribute(store, incident_id, "inventory_counts", "erin",
                      Contribution(complete=True, answers={"hosts_installed": "60", "hosts_affected": "6",
                                                           "hosts_not_covered": "0"}))
    assert said[-1] == "completed; the run goes on past it without asking"
    assert store.variables(incident_id)[("", "answers.hosts_installed")] == 60
    assert store.variables(incident_id)[marker("inventory_counts")] == "erin"
    contribute(store, incident_id, "affected", "femi", Contribution(choice="affected", note="six run 18.12.416"))
    decided = store.steps(incident_id)["affected"]
    assert (decided.status, decided.decision, decided.note) == ("completed", "affected", "six run 18.12.416")
    ahead = [e for e in store.events(incident_id) if e.data.get("ahead")]
    assert [(e.kind, e.actor, e.step, e.data["role"]) for e in ahead] == [
        ("checklist.checked", "erin", "inventory", "endpoint"), ("checklist.checked", "erin", "inventory", "endpoint"),
        ("note", "erin", "inventory", "endpoint"), *[("input.set", "erin", "inventory_counts", "endpoint")] * 3,
        ("step.completed", "erin", "inventory_counts", "endpoint"), ("decision", "femi", "affected", "commander"),
        ("step.completed", "femi", "affected", "commander")]


@pytest.mark.parametrize(("path", "given", "error", "message"), [
    ("invntory", Contribution(complete=True), UsageError, "IR-X has no step 'invntory'"),
    ("open_ticket", Contribution(complete=True), UsageError,
     "step open_ticket is a ticket step: the run does it (it sends or enters for everyone)"),
    ("status_declared", Contribution(complete=True), UsageError,
     "step status_declared is a include step: the run does it (it sends or enters for everyone)"),
    ("inventory", Contribution(), UsageError, "say what to do: --complete, --skip REASON, --tick N, --answer "
                                              "QUESTION=VALUE, --choice ID or --note TEXT"),
    ("inventory", Contribution(ticks=(0,)), UsageError, "--tick 0: step inventory has 7 checklist item(s)"),
    ("inventory", Contribution(ticks=(8,)), UsageError, "--tick 8: step inventory has 7 checklist item(s)"),
    ("inventory", Contribution(choice="affected"), UsageError, "--choice: step inventory is a manual step"),
    ("affected", Contribution(choice="maybe"), UsageError,
     "--choice maybe: step affected offers affected, not_affected"),
    ("affected", Contribution(complete=True), UsageError, "step affected is a decision: --choice "
                                                           "affected|not_affected"),
    ("inventory_counts", Contribution(answers={"hosts": "3"}), UsageError,
     "--answer hosts: step inventory_counts asks hosts_installed, hosts_affected, hosts_not_covered"),
    ("inventory_counts", Contribution(answers={"hosts_installed": "many"}), UsageError,
     "--answer hosts_installed: "),
    ("inventory_counts", Contribution(complete=True), UsageError,
     "step inventory_counts needs an answer to hosts_installed, hosts_affected, hosts_not_covered first"),
])
def test_a_refusal_says_why_and_records_nothing(incident, path, given, error, message):
    store, incident_id = incident
    before = store.count_events(incident_id), store.steps(incident_id), store.variables(incident_id)
    with pytest.raises(error) as raised:
        contribute(store, incident_id, path, "erin", given)
    assert raised.value.message.replace(incident_id, "IR-X").startswith(message), raised.value.message
    assert (store.count_events(incident_id), store.steps(incident_id), store.variables(incident_id)) == before


def test_a_step_done_once_is_not_done_again_and_a_closed_incident_takes_nothing(incident):
    store, incident_id = incident
    contribute(store, incident_id, "intake", "femi", Contribution(skip="the advisory was read at the bridge"))
    with pytest.raises(IrError) as raised:
        contribute(store, incident_id, "intake", "erin", Contribution(complete=True))
    assert raised.value.message.startswith("step intake is skipped already (at 20")
    from ir.run.drive import close

    close(store, incident_id, "dana", None)
    count = store.count_events(incident_id)
    with pytest.raises(IrError) as raised:
        contribute(store, incident_id, "inventory", "erin", Contribution(note="late"))
    assert raised.value.message == f"{incident_id} is closed" and store.count_events(incident_id) == count


def test_a_change_that_needs_a_step_open_is_refused_whole_once_it_was_done(incident):
    from ir.errors import StepAlreadyDone
    from ir.store.records import Change, Draft, StepState

    store, incident_id = incident
    contribute(store, incident_id, "intake", "femi", Contribution(complete=True))
    before = store.count_events(incident_id), store.steps(incident_id), store.variables(incident_id)
    with pytest.raises(StepAlreadyDone) as raised:
        store.record(incident_id, Draft("step.completed", "dana", "done here too", step="intake"),
                     Change(steps=(StepState("intake", "completed"),), variables={("", "x"): 1},
                            open_steps=("inventory", "intake")))
    assert raised.value.message == "step intake was completed meanwhile"
    assert (store.count_events(incident_id), store.steps(incident_id), store.variables(incident_id)) == before


def test_a_step_done_elsewhere_while_the_run_is_at_it_is_passed_not_done_twice(incident):
    """The race `ir step` can lose to a run, or win: someone completes the step while the run's responder is at
    it. The run's own completion then finds it done (in its transaction) and goes on past it instead."""
    from pathlib import Path

    from ir.run.answers import Answers, AnswersResponder
    from ir.run.drive import drive
    from ir.run.outbox import open_outbox

    store, incident_id = incident
    other = store.reopen()
    given = Answers.load(Path(__file__).parent / "answers" / "supply-chain--implant-only.yaml")

    class Racing(AnswersResponder):
        def act(self, place, text, checklist, session):  # noqa: ANN001, ANN201
            outcome = super().act(place, text, checklist, session)
            if place.path == "intake":  # completed from another machine just before this one's Enter
                contribute(other, incident_id, "intake", "erin", Contribution(complete=True, note="from the bridge"))
            return outcome

    said: list[str] = []
    responder = Racing(given, person=None, examples=True, say=said.append)
    bundle = Catalog(capabilities).bundle("supply-chain")
    outbox = open_outbox(store, bundle, store.incident(incident_id), "dana", say=said.append)
    assert drive(store, bundle, incident_id, "dana", responder, outbox, wait=5).status == "finished"
    intake = [(e.kind, e.actor) for e in store.events(incident_id) if e.step == "intake"]
    assert [pair for pair in intake if pair[0].startswith("step.")] == [
        ("step.started", "dana"), ("step.completed", "erin"), ("step.passed", "dana")]
    assert store.steps(incident_id)["intake"].note == "from the bridge"
    assert any(line.endswith("completed by erin ahead of the run; going on") for line in said)
    other.close()
