"""The incident commands of the `ir` CLI: run, resume, incidents, status, note, evidence, timeline, verify,
close. Each parses its options, calls the library, prints, and picks the exit code; ir.cli.app registers
them. Heavy imports (pydantic, sqlite3, rich) happen inside the commands."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ir.cli.common import (
    AnswersOpt,
    As,
    At,
    IncidentArg,
    JsonFlag,
    NonInteractive,
    VarOpt,
    answers,
    catalog,
    drive_here,
    open_store,
    parse_zone,
    person_here,
    say,
    when,
)
from ir.errors import EXIT_INVALID, UsageError
from ir.sinks import terminal

if TYPE_CHECKING:
    from ir.store.records import Store
    from ir.store.timeline import Event


def run(playbook: Annotated[str, typer.Argument(help="A playbook id or a path to a YAML file.")],
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Render every integration action; send nothing.")] = False,
        answers_: AnswersOpt = None, var: VarOpt = None, non_interactive: NonInteractive = False,
        as_: As = None) -> None:
    """Open an incident with a playbook and walk through it."""
    from ir.run.drive import opening, preflight
    from ir.run.incidents import actor_name

    bundle = catalog().bundle(playbook)
    given = answers(answers_, var)
    preflight(given, bundle, non_interactive=non_interactive, dry_run=dry_run)
    person = person_here(non_interactive)
    store, actor = open_store(), actor_name(as_)
    opened = opening(store, bundle, actor, live=not dry_run)  # stored with its first answer
    print(f"Opened {opened.pending.id}: {terminal(bundle.playbook.title)}"
          + (" (dry run: nothing is sent)" if dry_run else ""))
    drive_here(opened.as_store(), bundle, opened.pending, actor, given, person=person)


def resume(incident: IncidentArg, answers_: AnswersOpt = None, var: VarOpt = None,
           non_interactive: NonInteractive = False, as_: As = None,
           take_over: Annotated[bool, typer.Option(
               "--take-over", help="Drive it even though another process does (a run abandoned on another "
                                   "machine): that run is stopped before it sends anything more.")] = False) -> None:
    """Continue an incident's playbook exactly where it stopped."""
    from ir.run.drive import preflight, resumable
    from ir.run.incidents import actor_name

    store = open_store()
    found, bundle = resumable(store, incident)
    given = answers(answers_, var)
    preflight(given, bundle, non_interactive=non_interactive, dry_run=found.mode == "dry-run")
    drive_here(store, bundle, found, actor_name(as_), given, person=person_here(non_interactive), resuming=True,
               take_over=take_over)


def incidents(as_json: JsonFlag = False,
              status: Annotated[str | None, typer.Option(
                  help="Only these: open, closed or discarded (the discarded are listed only so).")] = None,
              playbook: Annotated[str | None, typer.Option(metavar="ID", help="Only those of this playbook.")] = None,
              mode: Annotated[str | None, typer.Option(help="Only these: live, dry-run or exercise.")] = None,
              search: Annotated[str | None, typer.Option(
                  metavar="TEXT", help="Only those with TEXT (any case) in the id, title, playbook, opener, "
                                       "channel or ticket.")] = None) -> None:
    """List the incidents in the store (filtered by status, playbook, mode and text), and who drives each one
    being run."""
    from ir.run.incidents import select

    select([], status=status, mode=mode)  # a bad filter is refused before the store is opened
    store = open_store()
    everything, drivers = store.incidents(), store.drivers()
    found = select(everything, status=status, playbook=playbook, mode=mode, search=search)
    if as_json:
        sys.stdout.write(json.dumps([asdict(i) | {"driver": drivers.get(i.id)} for i in found], indent=2) + "\n")
        return
    if not everything:
        print("No incidents yet. Open one with `ir run PLAYBOOK`.")
        return
    if not found:
        kept = select(everything)
        print(f"None of the {len(kept)} incident(s) matches; `ir incidents` lists them all." if kept or status else
              f"No incidents but {len(everything)} discarded: `ir incidents --status discarded` lists them.")
        return
    for i in found:  # three short lines each: readable in any terminal width, and with grep
        status = ", ".join([i.status, i.severity] + (["dry run"] if i.mode == "dry-run" else [])
                           + (["exercise"] if i.exercise else []))
        print(terminal(f"{i.id}  {status}  {i.opened_at[:16].replace('T', ' ')} UTC") + f"\n  {terminal(i.title)}\n"
              + terminal(f"  playbook {i.playbook_id} {i.playbook_version}, "
                         + (f"at step {i.cursor}" if i.cursor else "the playbook has ended")
                         + f"; opened by {i.opened_by}"
                         + (f"; driven by {drivers[i.id]}" if i.id in drivers else "")))


def step(incident: IncidentArg,
         path: Annotated[str, typer.Argument(metavar="STEP", help="The step: `contain`, or `intrusion/contain` inside "
                                                                  "an included playbook (see `ir status`).")],
         complete: Annotated[bool, typer.Option("--complete", help="Complete the step.")] = False,
         skip: Annotated[str | None, typer.Option("--skip", metavar="REASON", help="Skip the step, saying why.")
                         ] = None,
         tick: Annotated[list[int] | None, typer.Option(
             "--tick", metavar="N", help="Tick checklist item N (from 1); repeatable.")] = None,
         answer: Annotated[list[str] | None, typer.Option(
             "--answer", metavar="QUESTION=VALUE", help="Answer one of a prompt step's questions; repeatable.")] = None,
         choice: Annotated[str | None, typer.Option("--choice", metavar="ID", help="Make a decision step's choice.")
                           ] = None,
         note_: Annotated[str | None, typer.Option("--note", help="A note (a decision's rationale).")] = None,
         at: At = None, as_: As = None) -> None:
    """Do a step ahead of the run, from any machine: tick, answer, decide, complete or skip it. The run does not
    ask for it again."""
    from ir.run.ahead import Contribution, contribute
    from ir.run.incidents import actor_name

    given = {}
    for entry in answer or ():
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--answer {entry!r}: write it QUESTION=VALUE")
        given[name.strip()] = value
    done = contribute(open_store(), incident, path, actor_name(as_),
                      Contribution(complete, skip, tuple(tick or ()), given, choice, note_, when(at)))
    for line in done:
        print(terminal(f"{incident} {path}: {line}"))


Follow = Annotated[bool, typer.Option("--follow", "-f", help="Go on showing what is recorded, from any machine, "
                                                           "until Ctrl-C.")]


def status(incident: IncidentArg, follow: Follow = False) -> None:
    """Where an incident stands: phase progress, the current step, open actions."""
    from ir.cli.status import show_status

    store = open_store()
    show_status(store, incident)
    seen = store.incident(incident).event_count
    try:
        while follow:
            if store.wait(incident, seen, 5.0):
                seen = store.incident(incident).event_count
                print(f"--- {incident} at event {seen}")
                show_status(store, incident)
    except KeyboardInterrupt:
        return


def note(incident: IncidentArg, text: Annotated[str, typer.Argument(help="The note.")], at: At = None,
         as_: As = None) -> None:
    """Add a note to an incident's timeline (works while a run is in progress in another terminal)."""
    from ir.run.incidents import actor_name
    from ir.store.records import Draft

    store = open_store()
    store.incident(incident)
    event = store.record(incident, Draft("note", actor_name(as_), text, occurred_at=when(at)))
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

    store = open_store()
    store.incident(incident)
    record = custody.custody_record(file, incident, copy=copy)
    event = store.record(incident, Draft("evidence", actor_name(as_), description or file.name,
                                         occurred_at=when(at), data=record))
    print(f"{incident}: evidence {record['sha256']} ({record['size']} bytes) recorded as event {event.seq}")


def timeline(incident: IncidentArg, as_json: JsonFlag = False,
             since: Annotated[str | None, typer.Option(
                 "--since", metavar="TIME", help="Only events recorded at or after TIME (2026-03-29 14:02, with an "
                                                 "offset or a zone name; else IR_TZ's zone).")] = None,
             kind: Annotated[list[str] | None, typer.Option(
                 "--kind", metavar="KIND", help="Only events of this kind (milestone, note, decision, ...); "
                                                "repeat it for several.")] = None,
             limit: Annotated[int | None, typer.Option(
                 "--limit", metavar="N", min=1, help="At most N events; says how many more there are.")] = None,
             import_: Annotated[Path | None, typer.Option(
                 "--import", metavar="FILE", help="Add the events of a CSV or JSONL file (an EDR export, notes "
                                                  "kept on paper); every row is checked first.")] = None,
             source: Annotated[str | None, typer.Option(
                 "--source", help="Name the imported events' source (default: the file's name).")] = None,
             tz: Annotated[str | None, typer.Option(
                 "--tz", metavar="ZONE", help="The zone of imported times written without one.")] = None,
             follow: Follow = False, as_: As = None) -> None:
    """Print an incident's timeline (--json: one JSON object per line, hashes included), or add events made
    elsewhere to it (--import)."""
    from ir.errors import UsageError
    from ir.store.timeline import KINDS, format_recorded
    from ir.times import parse_time

    kinds = tuple(dict.fromkeys(kind or ()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"--kind: no event kind {unknown[0]!r}; the kinds: {', '.join(KINDS)}")
    try:
        after = format_recorded(parse_time(since)) if since is not None else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    store = open_store()
    store.incident(incident)
    if import_ is not None:
        from ir.export.timeline_import import import_file
        from ir.run.incidents import actor_name

        count, first, last = import_file(store, incident, import_, source=source,
                                         tz=parse_zone(tz) if tz else None, actor=actor_name(as_))
        print(terminal(f"{incident}: {count} events imported from {import_} as events {first} to {last}"))
        return
    if follow and limit is not None:
        raise UsageError("--follow shows every event as it comes: leave out --limit")
    following, seen = None, store.incident(incident).event_count
    for n, e in enumerate(store.events(incident, kinds=kinds, since=after,
                                       limit=None if limit is None else limit + 1)):
        if n == limit:  # one more than shown: there are more
            following = e
            break
        if follow and e.seq > seen:
            break
        _show(e, as_json=as_json)
    try:
        while follow:  # what is committed from now on, from any machine, as it comes
            if store.wait(incident, seen, 5.0):
                for e in store.events(incident, kinds=kinds, since=after, after=seen):
                    _show(e, as_json=as_json)
                    seen = max(seen, e.seq)
                seen = max(seen, store.incident(incident).event_count)
    except KeyboardInterrupt:
        return
    if following is not None:
        more = store.count_events(incident, kinds=kinds, since=after) - (limit or 0)
        sys.stdout.flush()
        print(f"... {more} more event(s), from event {following.seq} (recorded {following.recorded_at}): raise "
              f"--limit, or go on with --since {following.recorded_at}", file=sys.stderr if as_json else sys.stdout)


def _show(e: Event, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
    else:
        when = e.recorded_at + (f" (happened {e.occurred_at})" if e.occurred_at != e.recorded_at else "")
        where = f" [{e.phase}/{e.step}]" if e.step else ""
        print(terminal(f"{e.seq:>5} {when} {e.actor}: {e.kind}{where} {e.message}".rstrip()))  # one event, one line
    sys.stdout.flush()


def verify(incident: Annotated[str | None, typer.Argument(
               help="The incident id (see `ir incidents`); not with --file.")] = None,
           file: Annotated[Path | None, typer.Option(
               "--file", metavar="EXPORT.json", help="Check an export (`ir export --format json`) offline.")] = None,
           witnesses: Annotated[bool, typer.Option(
               "--witnesses", help="Also read back the timeline heads published to the incident's Slack channel and "
                                   "Jira ticket, and fail when the timeline no longer contains one.")] = False
           ) -> None:
    """Recompute an incident's hash chain and check its header, stored playbooks and state against it; exit 1
    naming the first event or row altered, inserted or removed."""
    from ir.store.integrity import problem

    if (incident is None) == (file is None):
        raise UsageError("give an incident id or --file EXPORT.json (one of them)")
    if witnesses and file is not None:
        raise UsageError("--witnesses checks an incident in the store, not an export: give its id")
    if file is not None:
        from ir.export.verify import check_file

        checked = check_file(file)
        if checked.problem:
            print(terminal(f"{file}: export of {checked.incident} does NOT verify: {checked.problem}"), file=sys.stderr)
            raise typer.Exit(EXIT_INVALID)
        print(terminal(f"{file}: export of {checked.incident} verifies: {checked.count} events, head {checked.head}"))
        return
    assert incident is not None
    store = open_store()
    found, altered = store.snapshot(lambda: (store.incident(incident), problem(store, incident)))
    if altered:
        print(terminal(f"{incident}: timeline does NOT verify: {altered}"), file=sys.stderr)
        raise typer.Exit(EXIT_INVALID)
    print(f"{incident}: timeline verifies: {found.event_count} events, head {found.head_hash}")
    if witnesses:
        _check_witnesses(store, incident)


def _check_witnesses(store: Store, incident: str) -> None:
    from ir.run.drive import read_witnesses
    from ir.store.integrity import unwitnessed

    read = read_witnesses(store, incident)
    for why in read.unread:
        print(terminal(f"{incident}: witnesses not read from {why}"), file=sys.stderr)
    missing = unwitnessed(store, incident, [(w.where, w.seq, w.hash) for w in read.found])
    for why in missing:
        print(terminal(f"{incident}: a published head is not in the timeline: {why}"), file=sys.stderr)
    if missing or read.unread or not read.found:
        if not (missing or read.unread):
            print(f"{incident}: no published head was found in the incident's channel or ticket", file=sys.stderr)
        raise typer.Exit(EXIT_INVALID)
    newest = max(read.found, key=lambda w: w.seq)
    print(terminal(f"{incident}: {len(read.found)} published head(s) are in the timeline; the newest, event "
                   f"{newest.seq}, from {newest.where}"))


def discard(incident: IncidentArg,
            reason: Annotated[str, typer.Option("--reason", help="Why it is set aside (recorded).")],
            as_: As = None) -> None:
    """Set a dry run or an exercise aside: its timeline stays and verifies, ending with the reason; `ir incidents`
    lists it only with --status discarded. A live incident is never discarded (close it)."""
    from ir.run import drive
    from ir.run.incidents import actor_name

    store = open_store()
    found = drive.discard(store, incident, actor_name(as_), reason)
    print(terminal(f"Discarded {incident} ({'exercise' if found.exercise else 'dry run'}: {found.title}); "
                   f"its timeline stays: `ir timeline {incident}`"))


def close(incident: IncidentArg, note_: Annotated[str | None, typer.Option("--note", help="A closing note.")] = None,
          as_: As = None) -> None:
    """Close an incident (its timeline stays; it can no longer be resumed). With Slack configured, the timeline
    report is uploaded to the incident channel."""
    from ir.export.formats import export_file
    from ir.paths import home
    from ir.run import drive
    from ir.run.incidents import actor_name

    store, actor = open_store(), actor_name(as_)
    found = drive.close(store, incident, actor, note_)
    print(f"Closed {incident}.")
    if found.channel:
        folder = home() / "exports"
        folder.mkdir(mode=0o700, exist_ok=True)
        report = folder / f"{incident}-report.md"
        export_file(store, incident, "markdown", report, UTC)
        drive.send_report(store, incident, actor, report, say=say)
