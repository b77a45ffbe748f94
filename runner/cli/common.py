"""What the CLI's commands share: option types, the store, the catalog, answers, and driving an incident in this
terminal (`ir run`, `ir resume`, `ir tabletop`). The library does the work (`ir.run.drive`); this module picks the
responder and prints."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ir.errors import IrError, UsageError

if TYPE_CHECKING:
    from datetime import tzinfo

    from ir.cli.terminal import Terminal
    from ir.format.bundle import Bundle
    from ir.format.catalog import Capability, Catalog
    from ir.run.answers import Answers
    from ir.store.records import Incident, Store

IncidentArg = Annotated[str, typer.Argument(help="The incident id (see `ir incidents`).")]
As = Annotated[str | None, typer.Option("--as", help="Who is acting (default: IR_ACTOR, else the OS user).")]
AnswersOpt = Annotated[Path | None, typer.Option("--answers", help="Answers file (YAML or JSON).")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", metavar="NAME=VALUE", help="Set an input (repeatable).")]
NonInteractive = Annotated[bool, typer.Option(
    "--non-interactive", help="Ask nobody: answers file, then defaults (and examples in a dry run).")]
At = Annotated[str | None, typer.Option("--at", help="When it happened, e.g. '2026-03-29 14:02 America/Los_Angeles'.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def say(text: str) -> None:
    """Print what the library says (it may quote a log line or a service's error): control characters visible."""
    from ir.sinks import terminal

    sys.stdout.write(terminal(text, one_line=False) + "\n")  # one write: a delivery thread's line stays whole
    sys.stdout.flush()


def open_store(url: str | None = None) -> Store:
    """The store at `url`, else the one the settings name (IR_STORE, [store] url), the embedded file by default;
    its modules and driver are imported only by the commands that use a store. Closed when the command ends
    (`close_stores`)."""
    from ir import config
    from ir.store.location import open_store as opened

    store = opened(url or config.store_url(), say=say)
    _opened.append(store)
    return store


_opened: list[Store] = []  # the stores this command opened


def close_stores() -> None:
    """Close the stores the command opened, as it ends: SQLite checkpoints its write-ahead log and removes it,
    PostgreSQL ends the sessions (a process that only exits leaves the server an unexpected end of file)."""
    while _opened:
        _opened.pop().close()


def catalog() -> Catalog:
    """The playbooks ir can find, checked against the integrations installed."""
    from ir.format.catalog import Catalog

    return Catalog(_capabilities)


def _capabilities() -> dict[str, Capability]:
    from ir.integrations.registry import capabilities  # importlib.metadata: only once a playbook is checked

    return capabilities()


def when(at: str | None) -> str | None:
    """An `--at` option's moment, as stored."""
    from ir.times import parse_time

    if at is None:
        return None
    try:
        return parse_time(at).isoformat()
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None


def parse_zone(name: str) -> tzinfo:
    """A `--tz` option's zone."""
    from ir.times import zone

    try:
        return zone(name)
    except ValueError as exc:
        raise UsageError(f"--tz: {exc}") from None


def answers(path: Path | None, assignments: list[str] | None) -> Answers:
    from ir.run.answers import Answers

    return (Answers.load(path) if path else Answers()).with_vars(assignments or [])


def done_elsewhere(store: Store, incident_id: str) -> Callable[[str], str | None]:
    """Who completed or skipped the incident's step at a path from elsewhere (`ir step`), if anyone: looked at
    only when the timeline grew since the last look (one small query a second while a prompt waits)."""
    from ir.run.ahead import done_by

    seen = [0]

    def check(path: str) -> str | None:
        try:
            found = store.incident(incident_id)
            if found.event_count == seen[0]:
                return None
            seen[0] = found.event_count
            return done_by(path, store.steps(incident_id).get(path), store.variables(incident_id))
        except IrError:  # not stored yet (a run stores its incident with its first answer), or the store is away
            return None

    return check


def person_here(non_interactive: bool) -> Terminal | None:
    """The responder at this terminal, unless non-interactive: made before an incident is opened, so that what is
    wrong with it (IR_SEND_DELAY) changes nothing."""
    from ir.cli.terminal import Terminal

    return None if non_interactive else Terminal()


def drive_here(store: Store, bundle: Bundle, incident: Incident, actor: str, given: Answers, *,
               person: Terminal | None, resuming: bool = False, take_over: bool = False) -> None:
    """Run the incident in this terminal: the person (none: non-interactive), an answers file when there is one,
    the facilitator's controls in an exercise; then say how it ended."""
    from ir.cli.facilitator import Facilitator
    from ir.run.answers import AnswersResponder
    from ir.run.drive import drive
    from ir.run.outbox import open_outbox
    from ir.run.responder import Responder
    from ir.tabletop.exercise import Exercise

    if person is not None:
        watcher = store.reopen()  # its own connection, read while a prompt waits; closed as the command ends
        _opened.append(watcher)
        person.watch = done_elsewhere(watcher, incident.id)
    responder: Responder | None = person
    if given.inputs or given.roles or given.steps or given.exercise or person is None:
        responder = AnswersResponder(given, person=person, examples=incident.mode == "dry-run" or incident.exercise,
                                     say=say)
    assert responder is not None
    exercise = Exercise.for_bundle(bundle, given.exercise) if incident.exercise else None
    if exercise and person:
        facilitator = Facilitator(exercise, person)
        person.extras = facilitator.controls()
        exercise.debrief = facilitator.debrief
    from ir.run.opening import NotOpened

    outbox = open_outbox(store, bundle, incident, actor, say=responder.say)
    try:
        result = drive(store, bundle, incident.id, actor, responder, outbox, hooks=exercise, resuming=resuming,
                       take_over=take_over)
    except NotOpened as exc:  # Ctrl-C or the end of input before the first answer
        print(f"{exc.message[:1].upper()}{exc.message[1:]}; `ir incidents` does not list it.")
        raise typer.Exit(exc.exit_code) from None
    if result.undelivered:
        print(f"{result.undelivered} integration action(s) not delivered yet; they are kept: `ir outbox "
              f"{incident.id}` lists them, `ir flush {incident.id}` sends them")
    if result.status == "paused":
        print(f"Paused {incident.id}; nothing is lost. Continue with: ir resume {incident.id}")
    elif exercise:
        print(f"Exercise finished: {incident.id}. The after-action report: `ir export {incident.id} --format aar`.")
    else:
        print(f"Playbook finished for {incident.id}. Review with `ir timeline {incident.id}`; "
              f"close with `ir close {incident.id}`.")
