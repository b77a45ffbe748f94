"""Running an incident: the library entry point. A front end (the CLI, a bot, a test) loads and checks a bundle
once, opens the incident or finds it, picks a responder, and calls `drive`:

    bundle = Catalog(capabilities).bundle("supply-chain")
    preflight(answers, bundle, non_interactive=True, dry_run=True)
    incident = start(store, bundle, actor, live=False)
    outbox = open_outbox(store, bundle, incident, actor, say=print)
    result = drive(store, bundle, incident.id, actor, AnswersResponder(answers, ...), outbox)
"""

from __future__ import annotations

from dataclasses import dataclass

from ir import config
from ir.errors import InvalidPlaybook, IrError
from ir.format.bundle import Bundle
from ir.run.answers import Answers, check
from ir.run.engine import IncidentRun
from ir.run.incidents import open_incident
from ir.run.outbox import Outbox
from ir.run.responder import Responder, StepHooks
from ir.store.header import playbook_problem
from ir.store.records import UNDELIVERED, Draft, Incident, Store

COURIER_WAIT = 60.0  # seconds a finished or paused run waits for its deliveries before leaving them queued


@dataclass(frozen=True)
class Result:
    status: str  # "finished" (the playbook reached its end) or "paused" (resumable)
    undelivered: int  # integration actions still queued when the run stopped


def preflight(given: Answers, bundle: Bundle, *, non_interactive: bool, dry_run: bool) -> None:
    """What would stop the run, checked before anything is written: the answers, and the settings in ir.toml."""
    problems = check(given, bundle.playbooks, bundle.root, complete=non_interactive,
                     examples=dry_run and non_interactive)
    if problems:
        raise InvalidPlaybook(problems)
    config.load(bundle.playbook.integrations)


def start(store: Store, bundle: Bundle, actor: str, *, live: bool, exercise: bool = False) -> Incident:
    """A new incident on `bundle`, recorded with its first event."""
    root = bundle.playbook
    return open_incident(store, root.id, root.version, root.title, root.severity, bundle.stored(), root.steps[0].id,
                         actor=actor, live=live, exercise=exercise)


def resumable(store: Store, incident_id: str) -> tuple[Incident, Bundle]:
    """An incident to go on with, and the bundle it keeps (each playbook checked once)."""
    incident = store.incident(incident_id)
    if incident.status == "closed":
        raise IrError(f"{incident_id} is closed", hint="a closed incident cannot be resumed; see `ir timeline`")
    stored = store.bundle(incident_id)
    edited = playbook_problem(incident, stored, store.events(incident_id))
    if edited:
        raise IrError(f"{incident_id} cannot be resumed: {edited}",
                      hint=f"`ir verify {incident_id}` checks the whole store; the timeline says what was run")
    return incident, Bundle.from_stored(stored, incident.playbook_id, incident_id)


def drive(store: Store, bundle: Bundle, incident_id: str, actor: str, responder: Responder, outbox: Outbox, *,
          hooks: StepHooks | None = None, resuming: bool = False, wait: float = COURIER_WAIT) -> Result:
    """Walk the incident's playbook in this process until it ends or the responder pauses. The process holds the
    incident meanwhile, so a second run of it is refused rather than repeating its steps. Deliveries are waited
    for up to `wait` seconds at the end; an error in one is raised here."""
    with store.running(incident_id):
        if resuming:
            cursor = store.incident(incident_id).cursor
            store.record(incident_id, Draft("incident.resumed", actor, f"resumed at {cursor or 'the end'}"))
        waiting = outbox.retry()
        if waiting:
            responder.say(f"{waiting} integration action(s) left from before are being delivered first")
        run = IncidentRun(store, bundle, incident_id, responder, actor, outbox, hooks)
        try:
            status = run.run()
            if status == "finished" and hooks:
                hooks.finished(run)
        finally:
            outbox.finish(timeout=wait)
        outbox.check()
        left = sum(1 for item in store.outbox(incident_id) if item.status in UNDELIVERED)
    return Result(status, left)
