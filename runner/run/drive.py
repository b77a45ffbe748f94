"""Running an incident: the library entry point. A front end (the CLI, a bot, a test) loads and checks a bundle
once, opens the incident or finds it, picks a responder, and calls `drive`:

    bundle = Catalog(capabilities).bundle("supply-chain")
    preflight(answers, bundle, non_interactive=True, dry_run=True)
    incident = start(store, bundle, actor, live=False)
    outbox = open_outbox(store, bundle, incident, actor, say=print)
    result = drive(store, bundle, incident.id, actor, AnswersResponder(answers, ...), outbox)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ir import config
from ir.errors import IncidentBusy, InvalidPlaybook, IrError, UsageError
from ir.format.bundle import Bundle
from ir.integrations.dry_run import describe
from ir.integrations.registry import NotConfigured, Refused, Target, Unknown, Witness, available
from ir.redact import redact
from ir.run.answers import Answers, check
from ir.run.engine import IncidentRun
from ir.run.incidents import new_incident, open_incident
from ir.run.opening import Opening
from ir.run.outbox import RETRY_KIND, Outbox, lane, needs, open_outbox
from ir.run.responder import Responder, StepHooks
from ir.store.integrity import problem
from ir.store.records import UNDELIVERED, Change, Draft, Incident, OutboxItem, Store
from ir.store.timeline import format_recorded, utc_now

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


def opening(store: Store, bundle: Bundle, actor: str, *, live: bool, exercise: bool = False) -> Opening:
    """A new incident on `bundle`, stored with the run's first record (`ir.run.opening`): drive it in
    `Opening.as_store()`."""
    root = bundle.playbook
    stored = bundle.stored()
    incident, opened = new_incident(root.id, root.version, root.title, root.severity, stored, root.steps[0].id,
                                    actor=actor, live=live, exercise=exercise)
    return Opening(store, incident, stored, opened)


def resumable(store: Store, incident_id: str) -> tuple[Incident, Bundle]:
    """An incident to go on with, and the bundle it keeps (each playbook checked once)."""
    incident = store.incident(incident_id)
    if incident.status == "closed":
        raise IrError(f"{incident_id} is closed", hint="a closed incident cannot be resumed; see `ir timeline`")
    if incident.status == "discarded":
        raise IrError(f"{incident_id} was discarded", hint="a discarded incident cannot be resumed; its timeline "
                                                           f"stays: `ir timeline {incident_id}`")
    _unaltered(store, incident_id, "resumed")
    return incident, stored_bundle(store, incident)


def drive(store: Store, bundle: Bundle, incident_id: str, actor: str, responder: Responder, outbox: Outbox, *,
          hooks: StepHooks | None = None, resuming: bool = False, take_over: bool = False,
          wait: float = COURIER_WAIT) -> Result:
    """Walk the incident's playbook in this process until it ends or the responder pauses. The process holds the
    incident meanwhile, so a second run of it is refused rather than repeating its steps (unless `take_over`:
    the other run is stopped first, in a store that can). Deliveries are waited for up to `wait` seconds at the
    end; an error in one is raised here."""
    holder = store.drivers().get(incident_id) if take_over else None
    with store.running(incident_id, take_over=take_over):
        if resuming:
            cursor = store.incident(incident_id).cursor
            store.record(incident_id, Draft("incident.resumed", actor, f"resumed at {cursor or 'the end'}"
                                            + (f", taken over from {holder}" if holder else ""),
                                            data={"taken_over_from": holder} if holder else {}))
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


def _unaltered(store: Store, incident_id: str, what: str) -> None:
    """Refuse to act on an incident whose store was changed outside ir: its state would decide what runs next."""
    altered = problem(store, incident_id)
    if altered:
        raise IrError(f"{incident_id} cannot be {what}: {altered}",
                      hint=f"nothing was run or sent; `ir timeline {incident_id}` shows what the chain recorded, "
                           "and a backup of the store (IR_HOME/ir.db) is what to go on from")


def stored_bundle(store: Store, incident: Incident) -> Bundle:
    """The bundle an incident keeps, each playbook checked once."""
    return Bundle.from_stored(store.bundle(incident.id), incident.playbook_id, incident.id)


def flush(store: Store, incident_id: str, actor: str, *, say: Callable[[str], None]) -> int:
    """Deliver an incident's undelivered actions in order, each exactly once, under the incident's lock; how many
    failed or stayed unknown. Nothing overtakes an action that failed in its lane (`ir.run.outbox.lane`). While a
    run holds the incident, it is asked to retry now instead (`IncidentBusy` says by whom)."""
    if not any(i.status in UNDELIVERED for i in store.outbox(incident_id)):
        return 0  # nothing to hold the incident for
    try:
        with store.running(incident_id):
            return _flush(store, incident_id, actor, say)
    except IncidentBusy:
        store.record(incident_id, Draft(RETRY_KIND, actor, "retry of the undelivered actions asked for"))
        raise


def _flush(store: Store, incident_id: str, actor: str, say: Callable[[str], None]) -> int:
    left = [i for i in store.outbox(incident_id) if i.status in UNDELIVERED]  # read under the lock
    if not left:
        return 0
    _unaltered(store, incident_id, "flushed")
    incident = store.incident(incident_id)
    outbox = open_outbox(store, stored_bundle(store, incident), incident, actor, say=say, retry=False)
    failed, stopped = 0, set[str]()
    for item in left:
        if needs(item) & stopped:
            continue
        status = outbox.courier.deliver(store, item)
        say(f"{incident_id}: {item.integration} {item.action} ({item.key.split('/', 1)[1]}): {status}")
        if status in ("failed", "unknown"):
            stopped.add(lane(item))
            failed += 1
    outbox.finish(timeout=COURIER_WAIT)  # what these deliveries queued (the ticket's channel link)
    outbox.check()
    return failed


def _undelivered(store: Store, key: str) -> OutboxItem:
    item = store.outbox_item(key)
    if item is None:
        raise IrError(f"no integration action {key!r}", hint="`ir outbox INCIDENT` lists the keys")
    if item.status not in UNDELIVERED:
        raise IrError(f"{key} is {item.status}: only an undelivered action can be retried or skipped")
    return item


def retry_action(store: Store, key: str, actor: str, *, say: Callable[[str], None]) -> str:
    """Deliver one undelivered action now, whatever waits before it in its lane; its status afterwards. While a
    run holds the incident, that run is asked to retry (and "asked" is returned)."""
    item = _undelivered(store, key)
    try:
        with store.running(item.incident):
            _unaltered(store, item.incident, "flushed")
            incident = store.incident(item.incident)
            outbox = open_outbox(store, stored_bundle(store, incident), incident, actor, say=say, retry=False)
            status = outbox.courier.deliver(store, _undelivered(store, key))  # read again under the lock
            outbox.finish(timeout=COURIER_WAIT)
            outbox.check()
            return status
    except IncidentBusy:
        store.record(item.incident, Draft(RETRY_KIND, actor, f"retry of {key} asked for"))
        return "asked the run that holds the incident to retry now"


def skip_action(store: Store, key: str, actor: str, reason: str) -> None:
    """Never send an undelivered action; the timeline records who skipped it and why (the report lists it)."""
    item = _undelivered(store, key)
    if item.status == "sending":
        raise IrError(f"{key} is being sent right now",
                      hint=f"wait for it; if the run that sent it died, `ir flush {item.incident}` settles it first")
    if not reason.strip():
        raise IrError("--reason is empty", hint="say why it is not sent: it goes on the timeline and the report")
    data = {"key": key, "integration": item.integration, "action": item.action, "reason": reason}
    if not store.settle(key, Draft("integration.skipped", actor, f"{describe(item)}: skipped: {reason}",
                                   phase=item.payload.get("phase"), data=data), status="skipped"):
        raise IrError(f"{key} was settled meanwhile: see `ir outbox {item.incident}`")


def amend_action(store: Store, key: str, actor: str, *, channel: str | None = None,
                 invite: list[str] | None = None) -> OutboxItem:
    """Send an undelivered action elsewhere: a post to another channel, a channel with other invitees. Recorded
    on the timeline (what it was, what it is); the courier sends what the store holds."""
    item = _undelivered(store, key)
    changes: dict[str, object] = {}
    if channel is not None:
        if item.action != "notify.post":
            raise IrError(f"{key} is a {item.action}: only a post goes to a channel it names")
        changes["channel"] = "#" + channel.lstrip("#")
    if invite is not None:
        if item.action != "notify.create_channel":
            raise IrError(f"{key} is a {item.action}: only a create_channel invites people")
        changes["invite"] = [entry for entry in dict.fromkeys(invite) if entry.strip()]
    if not changes:
        raise UsageError("say what changes: --channel NAME, or --invite ENTRY (as often as needed)")
    shown = "; ".join(f"{name}: {item.payload.get(name)!r} -> {value!r}" for name, value in changes.items())
    data = {"key": key, "integration": item.integration, "action": item.action,
            "was": {name: item.payload.get(name) for name in changes}, "now": changes}
    if not store.amend(key, {**item.payload, **changes}, Draft("integration.amended", actor, f"{key}: {shown}",
                                                                phase=item.payload.get("phase"), data=data)):
        raise IrError(f"{key} is being sent right now, or was settled meanwhile",
                      hint=f"see `ir outbox list {item.incident}`")
    amended = store.outbox_item(key)
    assert amended is not None
    return amended


@dataclass(frozen=True)
class Witnesses:
    """What `ir verify --witnesses` read: the heads found, and each service that could not be read, with why."""

    found: list[Witness]
    unread: list[str]


def read_witnesses(store: Store, incident_id: str) -> Witnesses:
    """The timeline heads ir published to the incident's channel and ticket, read back from each integration the
    incident used (with the settings and credentials in force now)."""
    incident = store.incident(incident_id)
    used = sorted({item.integration for item in store.outbox(incident_id) if item.status == "done"})
    settings, secrets = config.load(stored_bundle(store, incident).playbook.integrations), config.Secrets.from_env()
    target = Target(incident.id, incident.channel, incident.ticket)
    found: list[Witness] = []
    unread = []
    for name in used:
        integration = available().get(name)
        if integration is None:
            unread.append(f"{name}: the integration is not installed")
            continue
        try:
            connection = integration.connect(settings.of(name), secrets.of(name))
            found += connection.witnesses(target)
        except (NotConfigured, Refused, Unknown) as exc:
            unread.append(f"{name}: {redact(str(exc), secrets.values())}")
    return Witnesses(found, unread)


def close(store: Store, incident_id: str, actor: str, note: str | None) -> Incident:
    """Close an incident (its timeline stays; it can no longer be resumed); the incident as it was."""
    found = store.incident(incident_id)
    if found.status == "closed":
        raise IrError(f"{incident_id} is already closed (at {found.closed_at})")
    if found.status == "discarded":
        raise IrError(f"{incident_id} was discarded: there is nothing to close")
    unfinished = f"; the playbook was still at step {found.cursor}" if found.cursor else ""
    store.record(incident_id, Draft("incident.closed", actor, (note or "closed") + unfinished,
                                    data={"cursor": found.cursor}),
                 Change(incident={"status": "closed", "closed_at": format_recorded(utc_now())}))
    return found


def discard(store: Store, incident_id: str, actor: str, reason: str) -> Incident:
    """Set a dry run or an exercise aside: its timeline stays whole (and verifies), ending with
    `incident.discarded`; `ir incidents` no longer lists it but with `--status discarded`. A live incident is
    never discarded (close it); nor one a run holds, nor one whose store was changed outside ir."""
    found = store.incident(incident_id)
    if found.mode == "live" and not found.exercise:
        raise IrError(f"{incident_id} is a live incident: only a dry run or an exercise can be discarded",
                      hint=f"nothing was changed; a live incident's record is kept: `ir close {incident_id}` ends it")
    if found.status == "discarded":
        raise IrError(f"{incident_id} was discarded already", hint="nothing was changed; `ir incidents --status "
                                                                   "discarded` lists the discarded incidents")
    if not reason.strip():
        raise UsageError("--reason is empty", hint="say why it is set aside: the timeline records it")
    with store.running(incident_id):  # not while a run goes on with it
        _unaltered(store, incident_id, "discarded")
        store.record(incident_id, Draft("incident.discarded", actor, reason, data={"was": found.status}),
                     Change(incident={"status": "discarded"}))
    return found


def send_report(store: Store, incident_id: str, actor: str, report: Path, *, say: Callable[[str], None]) -> None:
    """The closing report (a file already written) to the incident channel, through the outbox like any action."""
    found = store.incident(incident_id)
    outbox = open_outbox(store, stored_bundle(store, found), found, actor, say=say)
    item = OutboxItem(f"{incident_id}/_close/notify.upload", incident_id, "slack", "notify.upload",
                      {"path": str(report), "filename": report.name, "title": f"{found.title}: post-incident report",
                       "phase": "post-incident",
                       "incident": {"id": found.id, "title": found.title, "severity": found.severity,
                                    "exercise": found.exercise, "commander": None}})
    outbox.request([item])
    outbox.finish(timeout=COURIER_WAIT)
    outbox.check()
