"""The post-incident report in Markdown (GitHub-flavoured tables). Free text recorded during the incident is
escaped so that it cannot turn into markup; identifiers, hashes and paths are code spans."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import tzinfo
from typing import TextIO
from urllib.parse import quote

from ir.export.report import (
    MILESTONES,
    Action,
    Entry,
    Report,
    chronological,
    counts,
    headline,
    omitted,
    question,
    when_entry,
)
from ir.sinks import markdown_code
from ir.times import duration, when, zone_name

_SPECIAL = re.compile(r"([\\`*_\[\]<&|])")
# What starts a block at the start of a line (a heading, a quote, a list item: `-`, `+`, `1.`, `1)`, a fence, a
# setext underline): its mark is escaped there (`\#`, `1\.`)
_LEADING = re.compile(r"^([#>+=~-]|\d{1,9}(?=[.)](?:\s|$)))")


def text(value: object) -> str:
    """Free text, safe in a table cell or a list item."""
    escaped = _unblock(_SPECIAL.sub(r"\\\1", str(value)))
    return "<br>".join(escaped.splitlines()) if "\n" in escaped or "\r" in escaped else escaped


def code(value: object) -> str:
    return markdown_code(value)


_URL_SAFE = ":/?#@!$&'*+,;=%~"


def link(label: str, url: str) -> str:
    return f"[{text(label)}](<{quote(url, safe=_URL_SAFE)}>)"


WIDTH = 80  # the report's prose and lists are wrapped to this many columns (a table's rows cannot be)


def wrap(line: str, first: str = "", rest: str = "") -> list[str]:
    """A paragraph or list item in lines of at most WIDTH columns, broken at spaces only (never inside a code span
    or a link, which would break them)."""
    out, current, started = [], first, False
    for word in _words(line):
        if started and len(current) + 1 + len(word) > WIDTH:
            out.append(current)
            current = rest + _unblock(word)  # a word that starts a line must not start a block there
        else:
            current += (" " if started else "") + word
        started = True
    return [*out, current]


def _unblock(word: str) -> str:
    """`word` (already escaped) as it may start a line: a mark that would start a block there escaped."""
    return _LEADING.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], word)


def _words(line: str) -> list[str]:
    """The line's words, a code span or a link (`[label](<url>)`) counted as one word."""
    return [m.group(0) for m in re.finditer(r"(?:`[^`]*`|\[[^\]]*\]\(<[^>]*>\)|[^\s`])+", line)]


def table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]], empty: str) -> list[str]:
    lines = [f"| {' | '.join(row)} |" for row in rows]
    if not lines:
        return [empty, ""] if empty else []
    return [f"| {' | '.join(header)} |", f"|{'|'.join(' --- ' for _ in header)}|", *lines, ""]


def more(report: Report, listing: str) -> list[str]:
    """The line saying what a listing left out, if it did (ir's own words: not escaped)."""
    said = omitted(report, listing)
    return [*wrap(said), ""] if said else []


def render(report: Report, out: TextIO, tz: tzinfo) -> None:
    for line in lines(report, tz):
        out.write(line + "\n")


def lines(report: Report, tz: tzinfo) -> list[str]:
    return [*_summary(report, tz), *_people(report, tz), *_milestones(report, tz), *_timeline(report, tz),
            *_decisions(report, tz), *_integrations(report, tz), *_evidence(report, tz), *_outcomes(report, tz),
            *_follow_ups(report), *_notes(report, tz), *_integrity(report)]


def _summary(report: Report, tz: tzinfo) -> list[str]:
    i = report.incident
    out = [f"# Post-incident report: {text(i.title)}" + (" (exercise)" if i.exercise else ""), ""]
    if i.exercise:
        out += ["> **Exercise**: this was an exercise, not a real incident.", ""]
    if i.mode == "dry-run":
        out += ["> **Dry run**: integration actions were recorded, not sent.", ""]
    if i.status == "closed":
        status = f"closed {when(report.milestones['closed'].occurred, tz)}" if "closed" in report.milestones \
            else "closed"
    else:
        status = f"open, at step {code(i.cursor)}" if i.cursor else "open, the playbook has ended"
    opened = f"{when_entry(report.opened, tz)} by {text(report.opened.actor)}" if report.opened else i.opened_at
    return out + ["## Summary", ""] + [line for item in [
        f"- **Incident**: {code(i.id)}",
        f"- **Status**: {status}",
        f"- **Severity**: {text(i.severity)}",
        f"- **Playbook**: {code(i.playbook_id)} {text(i.playbook_version)} (SHA-256 {code(i.playbook_hash)})",
        f"- **Mode**: {'dry run' if i.mode == 'dry-run' else 'live'}" + (", exercise" if i.exercise else ""),
        f"- **Opened**: {opened}",
        f"- **Ticket**: {code(i.ticket) if i.ticket else 'none'}",
        f"- **Channel**: {code(i.channel) if i.channel else 'none'}",
        f"- **Times**: shown in {zone_name(tz)}; a second time in brackets is when ir recorded it",
    ] for line in wrap(item, "", "  ")] + [""]


def _people(report: Report, tz: tzinfo) -> list[str]:
    roles = table(("Role", "Who"), ((code(role), text(who)) for role, who in report.roles.items() if who),
                  "No roles were assigned.")
    if report.roles_open():
        roles += [*wrap(f"Not assigned: {', '.join(map(code, report.roles_open()))}."), ""]
    people = table(("Participant", "Events", "First", "Last"),
                   ((text(actor), str(span.count), when(span.first, tz), when(span.last, tz))
                    for actor, span in sorted(report.participants.items())), "Nobody took part.")
    return ["## Participants and roles", "", *roles, *people]


def _milestones(report: Report, tz: tzinfo) -> list[str]:
    rows = []
    for name in MILESTONES:
        entry = report.milestones.get(name)
        rows.append((name, when_entry(entry, tz) if entry else "not reached", text(entry.actor) if entry else ""))
    durations: list[tuple[str, ...]] = [
        (d.label, duration(d.happened) if d.happened is not None else "not reached", f"{d.start} to {d.end}",
         duration(d.recorded) if d.recorded is not None else "") for d in report.durations()]
    header: tuple[str, ...] = ("Measure", "Duration", "Between", "As recorded")
    said: list[str] = []
    if any(row[3] for row in durations):
        said = [*wrap("Every duration is between the moments the milestones happened; *As recorded* is between "
                      "the moments ir recorded them, where that differs."), ""]
    else:  # every milestone recorded as it happened: no column for it
        header, durations = header[:3], [row[:3] for row in durations]
    return ["## Milestones", "", *table(("Milestone", "When", "By"), rows, ""), *table(header, durations, ""),
            *said]


def _timeline(report: Report, tz: tzinfo) -> list[str]:
    rows = ((str(e.seq), when_entry(e, tz), code(e.phase) if e.phase else "", code(e.step) if e.step else "",
             text(headline(e)), text(e.actor)) for e in chronological(report.timeline))
    sources = table(("Imported from", "Events", "First", "Last"),
                    ((text(name), str(s.count), when(s.first, tz), when(s.last, tz))
                     for name, s in sorted(report.sources.items())), "")
    return ["## Timeline", "",
            *wrap("Everything but the routine events (steps starting and completing, checklist ticks, inputs), in "
                  "the order it happened."), "",
            *table(("#", "When", "Phase", "Step", "Event", "By"), rows, "No events."), *more(report, "timeline"),
            *sources]


def _decisions(report: Report, tz: tzinfo) -> list[str]:
    def row(e: Entry) -> tuple[str, ...]:
        return (str(e.seq), when_entry(e, tz), code(e.step), text(question(e)),
                f"{text(e.data.get('label', ''))} ({code(e.data.get('choice'))})",
                text(e.data.get("rationale") or "none given"), text(e.actor))

    return ["## Decisions", "", *table(("#", "When", "Step", "Question", "Choice", "Rationale", "By"),
                                       map(row, report.decisions), "No decisions were recorded."),
            *more(report, "decisions")]


def reference(action: Action) -> str:
    if action.link:
        return link(action.reference or action.link, action.link)
    return code(action.reference) if action.reference else ""


def _integrations(report: Report, tz: tzinfo) -> list[str]:
    i = report.incident
    rows = [(str(a.requested.seq), when_entry(a.outcome or a.requested, tz), code(a.requested.step),
             text(a.integration), code(a.action), text(a.described), reference(a))
            for a in report.actions.values() if a.status != "dry-run"]
    unsent = report.not_sent()
    said = wrap(f"{sum(n for _, n in unsent)} not sent (dry run): {text(counts(unsent))}; the timeline shows what "
                "each would have sent.") if unsent else []
    return ["## Tickets and channels", "",
            f"- **Ticket**: {code(i.ticket) if i.ticket else 'none'}",
            f"- **Channel**: {code(i.channel) if i.channel else 'none'}", "",
            *table(("#", "When", "Step", "Integration", "Action", "Outcome", "Reference"), rows,
                   "" if unsent else "No integration actions were requested."), *said, *[""] * bool(said),
            *more(report, "actions")]


def _evidence(report: Report, tz: tzinfo) -> list[str]:
    def row(e: Entry) -> tuple[str, ...]:
        where = code(e.data.get("path", "")) + (f" (copy: {code(e.data['copy'])})" if e.data.get("copy") else "")
        return (str(e.seq), when_entry(e, tz), text(e.message), code(e.data.get("sha256", "")),
                f"{e.data.get('size', '?')} bytes", where, text(e.actor))

    return ["## Evidence", "", *table(("#", "When", "Description", "SHA-256", "Size", "File", "By"),
                                      map(row, report.evidence), "No evidence was recorded."),
            *more(report, "evidence")]


def _outcomes(report: Report, tz: tzinfo) -> list[str]:
    rows = ((str(e.seq), when_entry(e, tz), code(e.phase) if e.phase else "", code(e.step),
             e.kind.removeprefix("step."), text(e.message or "no reason given")) for e in report.outcomes)
    return ["## Skipped and failed steps", "", *table(("#", "When", "Phase", "Step", "Outcome", "Reason"), rows,
                                                      "No step was skipped or failed."),
            *more(report, "outcomes")]


def _follow_ups(report: Report) -> list[str]:
    items = [line for item in report.follow_ups() for line in wrap(text(item), "- ", "  ")]
    return ["## Follow-up actions", "", *(items or ["None recorded."]), ""]


def _notes(report: Report, tz: tzinfo) -> list[str]:
    rows = ((str(e.seq), when_entry(e, tz), code(e.step) if e.step else "", text(e.message), text(e.actor))
            for e in report.notes)
    return ["## Notes", "", *table(("#", "When", "Step", "Note", "By"), rows, "No notes were recorded."),
            *more(report, "notes")]


def _integrity(report: Report) -> list[str]:
    i = report.incident
    verdict = (f"**The timeline does NOT verify**: {text(report.broken)}." if report.broken
               else "The hash chain verifies.")
    return ["## Integrity", "",
            *wrap(f"{verdict} {report.events} events, head {code(report.head)}. Check the incident with "
                  f"`ir verify {i.id}`, a JSON export with `ir verify --file`.")]
