"""The incident commands of the `ir` CLI: run, resume, incidents, status, note, evidence, timeline, verify,
close. Each parses its options, calls the library, prints, and picks the exit code; runner/cli.py registers
them. Heavy imports (pydantic, sqlite3, rich) happen inside the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ir.errors import EXIT_INVALID

if TYPE_CHECKING:
    from collections.abc import Callable

    from ir.run.answers import Answers
    from ir.run.engine import Runner
    from ir.tabletop.exercise import Exercise
    from ir.run.outbox import Outbox
    from ir.store.sqlite import SqliteStore

COURIER_WAIT = 60.0  # seconds a finished or paused run waits for its deliveries before leaving them queued

IncidentArg = Annotated[str, typer.Argument(help="The incident id (see `ir incidents`).")]
As = Annotated[str | None, typer.Option("--as", help="Who is acting (default: IR_ACTOR, else the OS user).")]
AnswersOpt = Annotated[Path | None, typer.Option("--answers", help="Answers file (YAML or JSON).")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", metavar="NAME=VALUE", help="Set an input (repeatable).")]
NonInteractive = Annotated[bool, typer.Option(
    "--non-interactive", help="Ask nobody: answers file, then defaults (and examples in a dry run).")]
At = Annotated[str | None, typer.Option("--at", help="When it happened, e.g. '2026-03-29 14:02 America/Los_Angeles'.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _store() -> SqliteStore:
    from ir.store.sqlite import SqliteStore

    return SqliteStore()


def _when(at: str | None) -> str | None:
    from ir.format import values
    from ir.errors import UsageError

    if at is None:
        return None
    try:
        return values.parse_time(at).isoformat()
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None


def _answers(path: Path | None, assignments: list[str] | None) -> Answers:
    from ir.run.answers import Answers

    return (Answers.load(path) if path else Answers()).with_vars(assignments or [])


def run(playbook: Annotated[str, typer.Argument(help="A playbook id or a path to a YAML file.")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Render every integration action; send nothing.")] = False,
        answers: AnswersOpt = None, var: VarOpt = None, non_interactive: NonInteractive = False,
        as_: As = None) -> None:
    """Open an incident with a playbook and walk through it."""
    from ir.format.catalog import Catalog
    from ir.run.incidents import actor_name, open_incident

    catalog = Catalog()
    loaded = catalog.load(playbook)
    bundle = catalog.bundle(loaded)
    given = _answers(answers, var)
    _check_first(given, bundle, loaded.playbook.id, non_interactive=non_interactive, dry_run=dry_run)
    store, actor, root = _store(), actor_name(as_), loaded.playbook
    incident = open_incident(store, root.id, root.version, root.title, root.severity, bundle, root.steps[0].id,
                             actor=actor, live=not dry_run)
    print(f"Opened {incident.id}: {root.title}" + (" (dry run: nothing is sent)" if dry_run else ""))
    _drive(store, incident.id, actor, given, non_interactive=non_interactive)


def resume(incident: IncidentArg, answers: AnswersOpt = None, var: VarOpt = None,
           non_interactive: NonInteractive = False, as_: As = None) -> None:
    """Continue an incident's playbook exactly where it stopped."""
    from ir.errors import IrError
    from ir.run.incidents import actor_name

    store = _store()
    found = store.incident(incident)
    if found.status == "closed":
        raise IrError(f"{incident} is closed", hint="a closed incident cannot be resumed; see `ir timeline`")
    given = _answers(answers, var)
    _check_first(given, store.bundle(incident), found.playbook_id, non_interactive=non_interactive,
                   dry_run=found.mode == "dry-run")
    _drive(store, incident, actor_name(as_), given, non_interactive=non_interactive, resuming=True)


def _check_first(given: Answers, bundle: dict[str, bytes], root: str, *, non_interactive: bool,
                 dry_run: bool) -> None:
    """What would stop the run, checked before anything is written: the answers, and the settings in ir.toml."""
    from ir import config
    from ir.run.answers import check
    from ir.errors import InvalidPlaybook
    from ir.tabletop.scenario import bundle_playbooks

    playbooks = bundle_playbooks(bundle)
    problems = check(given, playbooks, root, complete=non_interactive, examples=dry_run and non_interactive)
    if problems:
        raise InvalidPlaybook(problems)
    config.load(playbooks[root].integrations)


def _drive(store: SqliteStore, incident_id: str, actor: str, given: Answers, *, non_interactive: bool,
           resuming: bool = False) -> None:
    """Run the incident's playbook in this process, which holds the incident meanwhile: a second `ir resume`
    of it is refused rather than repeating its steps."""
    with store.running(incident_id):
        if resuming:
            from ir.store.records import Draft

            cursor = store.incident(incident_id).cursor
            store.record(incident_id, Draft("incident.resumed", actor, f"resumed at {cursor or 'the end'}"))
        _run(store, incident_id, actor, given, non_interactive=non_interactive)


def _run(store: SqliteStore, incident_id: str, actor: str, given: Answers, *, non_interactive: bool) -> None:
    from ir.run.answers import Scripted
    from ir.run.engine import Runner
    from ir.run.outbox import UNDELIVERED
    from ir.cli.terminal import Terminal

    incident = store.incident(incident_id)
    person = None if non_interactive else Terminal()
    scripted = given.inputs or given.roles or given.steps or given.exercise or non_interactive
    responder = Scripted(given, person=person, examples=incident.mode == "dry-run" or incident.exercise,
                         say=print) if scripted else person
    assert responder is not None
    outbox = open_outbox(store, incident_id, actor, say=responder.say)
    exercise = _exercise(store, incident_id, given) if incident.exercise else None
    if exercise and person:
        from ir.tabletop.exercise import Facilitator

        facilitator = Facilitator(exercise, person)
        person.extras = facilitator.controls()
    waiting = outbox.retry()
    if waiting:
        responder.say(f"{waiting} integration action(s) left from before are being delivered first")
    runner = Runner(store, incident_id, responder, actor, outbox, exercise)
    try:
        result = runner.run()
        if result == "finished" and exercise:
            for line in exercise.missed(runner):
                responder.say(line)
            if person:
                facilitator.debrief(runner)
            else:
                _debrief(runner, exercise, given)
    finally:
        outbox.courier.finish(timeout=COURIER_WAIT)
    left = [i for i in store.outbox(incident_id) if i.status in UNDELIVERED]
    if left:
        print(f"{len(left)} integration action(s) not delivered yet; they are kept: `ir outbox {incident_id}` "
              f"lists them, `ir flush {incident_id}` sends them")
    if result == "paused":
        print(f"Paused {incident_id}; nothing is lost. Continue with: ir resume {incident_id}")
    elif exercise:
        print(f"Exercise finished: {incident_id}. The after-action report: `ir export {incident_id} --format aar`.")
    else:
        print(f"Playbook finished for {incident_id}. Review with `ir timeline {incident_id}`; "
              f"close with `ir close {incident_id}`.")


def _exercise(store: SqliteStore, incident_id: str, given: Answers) -> Exercise:
    """The exercise an incident runs, rebuilt from the scenario kept in its bundle."""
    from ir.tabletop.exercise import Exercise
    from ir.format.model import parse_duration
    from ir.tabletop.scenario import Scenario, bundle_scenario

    incident = store.incident(incident_id)
    scenario = bundle_scenario(store.bundle(incident_id)) or Scenario(
        id=incident.playbook_id, title="no scenario", version="0.0.0", playbook=incident.playbook_id)
    pace = parse_duration(given.exercise.pace).total_seconds() if given.exercise and given.exercise.pace else None
    return Exercise(scenario, dict(given.exercise.adhoc) if given.exercise else {}, pace)


def _debrief(runner: Runner, exercise: Exercise, given: Answers) -> None:
    """The hotwash of an exercise run without a facilitator: from the answers file's `exercise:` section."""
    if not given.exercise:
        return
    for observation in given.exercise.observations:
        exercise.observe(runner, runner.place(observation.step), observation.kind, observation.text)
    actions = [{"action": a.action, "owner": a.owner, "due": a.due.isoformat() if a.due else None}
               for a in given.exercise.actions]
    exercise.hotwash(runner, given.exercise.hotwash.went_well, given.exercise.hotwash.improve, actions)


def open_outbox(store: SqliteStore, incident_id: str, actor: str, *, say: Callable[[str], None]) -> Outbox:
    """The outbox of an incident, with the settings in force for its playbook and the live connections."""
    from ir import config
    from ir.format.load import load_text
    from ir.run.outbox import Connections, Courier, Outbox
    from ir.store.sqlite import SqliteStore

    incident = store.incident(incident_id)
    root = load_text(store.bundle(incident_id)[incident.playbook_id], incident.playbook_id).playbook
    settings = config.load(root.integrations)
    only = None
    if incident.exercise:
        settings, only = settings.for_exercise(), settings.routed()
    connections = Connections(settings, config.Secrets.from_env(), say, only=only)
    courier = Courier(lambda: SqliteStore(store.path), incident_id, actor, live=incident.mode == "live",
                      connections=connections, say=say)
    return Outbox(store, courier, settings, exercise=incident.exercise)


def incidents(as_json: JsonFlag = False) -> None:
    """List the incidents in the store."""
    from dataclasses import asdict

    found = _store().incidents()
    if as_json:
        sys.stdout.write(json.dumps([asdict(i) for i in found], indent=2) + "\n")
        return
    if not found:
        print("No incidents yet. Open one with `ir run PLAYBOOK`.")
        return
    for i in found:  # three short lines each: readable in any terminal width, and with grep
        status = ", ".join([i.status, i.severity] + (["dry run"] if i.mode == "dry-run" else [])
                           + (["exercise"] if i.exercise else []))
        print(f"{i.id}  {status}  {i.opened_at[:16].replace('T', ' ')} UTC\n  {i.title}\n"
              f"  playbook {i.playbook_id} {i.playbook_version}, "
              + (f"at step {i.cursor}" if i.cursor else "the playbook has ended") + f"; opened by {i.opened_by}")


def status(incident: IncidentArg) -> None:
    """Where an incident stands: phase progress, the current step, open actions."""
    from ir.run.progress import show_status

    show_status(_store(), incident)


def note(incident: IncidentArg, text: Annotated[str, typer.Argument(help="The note.")], at: At = None,
         as_: As = None) -> None:
    """Add a note to an incident's timeline (works while a run is in progress in another terminal)."""
    from ir.run.incidents import actor_name
    from ir.store.records import Draft

    store = _store()
    store.incident(incident)
    event = store.record(incident, Draft("note", actor_name(as_), text, occurred_at=_when(at)))
    print(f"{incident}: note recorded as event {event.seq}")


def evidence(incident: IncidentArg, file: Annotated[Path, typer.Argument(help="The evidence file.")],
             description: Annotated[str | None, typer.Option("-d", "--description", help="What it is.")] = None,
             copy: Annotated[bool, typer.Option("--copy", help="Also keep a private copy in IR_HOME.")] = False,
             at: At = None, as_: As = None) -> None:
    """Record evidence: SHA-256, size, path, who and when (chain of custody). The file is not copied unless
    --copy is given."""
    from ir.run import evidence as custody
    from ir.run.incidents import actor_name
    from ir.store.records import Draft

    store = _store()
    store.incident(incident)
    record = custody.describe(file, incident, copy=copy)
    event = store.record(incident, Draft("evidence", actor_name(as_), description or file.name,
                                         occurred_at=_when(at), data=record))
    print(f"{incident}: evidence {record['sha256']} ({record['size']} bytes) recorded as event {event.seq}")


def timeline(incident: IncidentArg, as_json: JsonFlag = False,
             import_: Annotated[Path | None, typer.Option(
                 "--import", metavar="FILE", help="Add the events of a CSV or JSONL file (an EDR export, notes "
                                                  "kept on paper); every row is checked first.")] = None,
             source: Annotated[str | None, typer.Option(
                 "--source", help="Name the imported events' source (default: the file's name).")] = None,
             tz: Annotated[str | None, typer.Option(
                 "--tz", metavar="ZONE", help="The zone of imported times written without one.")] = None,
             as_: As = None) -> None:
    """Print an incident's timeline (--json: one JSON object per line, hashes included), or add events made
    elsewhere to it (--import)."""
    store = _store()
    store.incident(incident)
    if import_ is not None:
        from ir.cli.export import parse_zone
        from ir.export.timeline_import import import_file
        from ir.run.incidents import actor_name

        count, first, last = import_file(store, incident, import_, source=source,
                                         tz=parse_zone(tz) if tz else None, actor=actor_name(as_))
        print(f"{incident}: {count} events imported from {import_} as events {first} to {last}")
        return
    events = store.events(incident)
    if as_json:
        for event in events:
            sys.stdout.write(json.dumps(event.as_dict(), ensure_ascii=False) + "\n")
        return
    for e in events:
        when = e.recorded_at + (f" (happened {e.occurred_at})" if e.occurred_at != e.recorded_at else "")
        where = f" [{e.phase}/{e.step}]" if e.step else ""
        print(f"{e.seq:>5} {when} {e.actor}: {e.kind}{where} {e.message}".rstrip())


def verify(incident: Annotated[str | None, typer.Argument(
               help="The incident id (see `ir incidents`); not with --file.")] = None,
           file: Annotated[Path | None, typer.Option(
               "--file", metavar="EXPORT.json", help="Check an export (`ir export --format json`) offline.")] = None
           ) -> None:
    """Recompute an incident's hash chain; exit 1 naming the first event altered, inserted or removed."""
    from ir.errors import UsageError
    from ir.store.timeline import verify as check_chain

    if (incident is None) == (file is None):
        raise UsageError("give an incident id or --file EXPORT.json (one of them)")
    if file is not None:
        from ir.export.verify import check_file

        checked = check_file(file)
        if checked.problem:
            print(f"{file}: export of {checked.incident} does NOT verify: {checked.problem}", file=sys.stderr)
            raise typer.Exit(EXIT_INVALID)
        print(f"{file}: export of {checked.incident} verifies: {checked.count} events, head {checked.head}")
        return
    assert incident is not None
    store = _store()
    found = store.incident(incident)
    broken = check_chain(store.events(incident), head=(found.head_hash, found.event_count))
    if broken:
        print(f"{incident}: timeline does NOT verify: {broken}", file=sys.stderr)
        raise typer.Exit(EXIT_INVALID)
    print(f"{incident}: timeline verifies: {found.event_count} events, head {found.head_hash}")


def close(incident: IncidentArg, note_: Annotated[str | None, typer.Option("--note", help="A closing note.")] = None,
          as_: As = None) -> None:
    """Close an incident (its timeline stays; it can no longer be resumed). With Slack configured, the timeline
    report is uploaded to the incident channel."""
    from ir.errors import IrError
    from ir.run.incidents import actor_name
    from ir.store.records import Change, Draft
    from ir.store.timeline import format_recorded, utc_now

    store, actor = _store(), actor_name(as_)
    found = store.incident(incident)
    if found.status == "closed":
        raise IrError(f"{incident} is already closed (at {found.closed_at})")
    unfinished = f"; the playbook was still at step {found.cursor}" if found.cursor else ""
    store.record(incident, Draft("incident.closed", actor, (note_ or "closed") + unfinished,
                                 data={"cursor": found.cursor}),
                 Change(incident={"status": "closed", "closed_at": format_recorded(utc_now())}))
    print(f"Closed {incident}.")
    if found.channel:
        _upload_report(store, incident, actor)


def _upload_report(store: SqliteStore, incident_id: str, actor: str) -> None:
    """The closing report (Markdown) to the incident channel, through the outbox like any other action."""
    from datetime import timezone

    from ir.export.formats import export_file
    from ir.paths import home
    from ir.store.records import OutboxItem

    folder = home() / "exports"
    folder.mkdir(mode=0o700, exist_ok=True)
    report = folder / f"{incident_id}-report.md"
    export_file(store, incident_id, "markdown", report, timezone.utc)
    found = store.incident(incident_id)
    outbox = open_outbox(store, incident_id, actor, say=print)
    item = OutboxItem(f"{incident_id}/_close/notify.upload", incident_id, "slack", "notify.upload",
                      {"path": str(report), "filename": report.name, "title": f"{found.title}: post-incident report",
                       "phase": "post-incident",
                       "incident": {"id": found.id, "title": found.title, "severity": found.severity,
                                    "exercise": found.exercise, "commander": None}})
    outbox.request([item])
    outbox.courier.finish(timeout=COURIER_WAIT)
