"""The library entry point, in process: `ir.run.drive` runs an incident from a bundle, a store and a responder,
as the CLI does, without a subprocess. What the CLI adds (parsing, printing, exit codes) is tested end to end
elsewhere; here are the run's own guarantees: what is recorded, what a pause keeps, what hooks see, one driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ir.errors import IncidentBusy
from ir.format.bundle import Bundle
from ir.format.catalog import Catalog
from ir.integrations.registry import capabilities
from ir.run.answers import Answers, AnswersResponder
from ir.run.drive import drive, preflight, resumable, start
from ir.run.outbox import open_outbox
from ir.run.responder import PauseRequested, Place, Run
from ir.store.sqlite import SqliteStore

from runs import install_demo

ANSWERS = {"vendor": "3CX"}


@pytest.fixture
def store(isolated: Path, make_store) -> SqliteStore:
    install_demo(isolated)
    return make_store()


@pytest.fixture
def bundle(isolated: Path) -> Bundle:
    return Catalog(capabilities).bundle("demo")


def _run(store: SqliteStore, bundle: Bundle, incident_id: str, responder: Any, hooks: Any = None,
         resuming: bool = False) -> Any:
    incident = store.incident(incident_id)
    outbox = open_outbox(store, bundle, incident, "tester", say=lambda text: None)
    return drive(store, bundle, incident_id, "tester", responder, outbox, hooks=hooks, resuming=resuming, wait=5)


def _scripted(**steps: Any) -> AnswersResponder:
    said: list[str] = []
    responder = AnswersResponder(Answers(ANSWERS, {}, steps), person=None, examples=True, say=said.append)
    responder.said = said  # type: ignore[attr-defined]
    return responder


def test_a_dry_run_records_each_step_and_shows_each_action(store, bundle):
    preflight(Answers(ANSWERS), bundle, non_interactive=True, dry_run=True)
    incident = start(store, bundle, "tester", live=False)

    result = _run(store, bundle, incident.id, _scripted())

    assert (result.status, result.undelivered) == ("finished", 0)
    kinds = [e.kind for e in store.events(incident.id)]
    assert kinds.count("step.started") == 8 and kinds.count("decision") == 1
    assert [(i.action, i.status) for i in store.outbox(incident.id)] == [("notify.post", "dry-run"),
                                                                          ("ticket.create", "dry-run")]
    assert store.incident(incident.id).title == "Compromised 3CX software"
    assert store.incident(incident.id).cursor is None


class _PauseAt:
    """Answers from the file, but pauses when it reaches `path`, as a person pressing p would."""

    def __init__(self, path: str):
        self.inner, self.path = _scripted(), path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def act(self, place: Place, text: str, checklist: list[str], session: Any) -> Any:
        if place.path == self.path:
            raise PauseRequested
        return self.inner.act(place, text, checklist, session)


def test_a_pause_keeps_everything_and_resume_goes_on_from_the_step(store, bundle):
    incident = start(store, bundle, "tester", live=False)

    paused = _run(store, bundle, incident.id, _PauseAt("sub/isolate"))
    before = [e.kind for e in store.events(incident.id)]
    found, kept = resumable(store, incident.id)
    resumed = _run(store, bundle, found.id, _scripted(), resuming=True)

    assert (paused.status, resumed.status) == ("paused", "finished")
    assert before[-1] == "incident.paused" and found.cursor == "sub/isolate"
    assert kept.stored() == bundle.stored()
    after = [e for e in store.events(incident.id)][len(before):]
    assert [e.kind for e in after][:2] == ["incident.resumed", "step.completed"]  # the step goes on, not again
    assert sum(e.kind == "input.set" and e.message.startswith("inputs.vendor") for e in store.events(incident.id)) == 1


class _Hooks:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_step(self, run: Run, place: Place) -> None:
        self.seen.append(f"before {place.path}")

    def after_decision(self, run: Run, place: Place, choice: str) -> None:
        self.seen.append(f"decided {place.path} -> {choice}")

    def finished(self, run: Run) -> None:
        self.seen.append(f"finished {len(run.paths())} paths")


def test_hooks_see_each_step_each_decision_and_the_end(store, bundle):
    incident = start(store, bundle, "tester", live=False)
    hooks = _Hooks()

    _run(store, bundle, incident.id, _scripted(affected={"choice": "yes"}), hooks=hooks)

    assert hooks.seen == ["before intake", "before scope", "before affected", "decided affected -> yes",
                          "before sub", "before sub/log", "before sub/isolate", "before tell", "before ticket",
                          "finished 8 paths"]


def test_one_process_drives_an_incident_at_a_time(store, bundle, isolated):
    incident = start(store, bundle, "tester", live=False)
    other = store.reopen()
    try:
        with other.running(incident.id), pytest.raises(IncidentBusy):
            _run(store, bundle, incident.id, _scripted())
    finally:
        other.close()
    assert [e.kind for e in store.events(incident.id)] == ["incident.opened"]
