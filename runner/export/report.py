"""The post-incident report, computed in one pass over an incident's events: milestones and the durations between
them, participants and roles, decisions, integration actions, evidence, skipped and failed steps, follow-ups,
notes, imported events, and whether the hash chain verifies. `ir.export.markdown` and `ir.export.html` render it.

The model keeps the events it shows (decisions, notes, evidence, ...) and only counts the others (step and
checklist events, inputs). Each listing keeps at most LISTED events (the timeline the earliest in the order they
happened, the others the first recorded) and counts the rest, which the report says are in the JSON and CSV
exports; what is left to do is kept whole. So its memory stays flat however long the timeline grows.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from ir.run.amend import role_holder
from ir.store.records import Incident
from ir.store.timeline import Broken, Event, verify
from ir.times import moment, when

MILESTONES = ("detected", "declared", "contained", "eradicated", "recovered", "closed")
# (what is measured, the milestone it ends at); every duration starts at `detected` (else at the opening)
DURATIONS = (("time to declare", "declared"), ("time to contain", "contained"),
             ("time to eradicate", "eradicated"), ("time to recover", "recovered"), ("time to close", "closed"))
FOLLOW_UP = re.compile(r"^\s*(?:follow[- ]?up|todo|action)\s*:\s*", re.I)
OUTCOMES = {"integration.done": "done", "integration.failed": "failed", "integration.dry_run": "dry-run",
            "integration.skipped": "skipped"}
LINK_KEYS = ("url", "permalink", "link")
LISTED = 1000  # events a listing keeps; past that it counts them and points to the JSON and CSV exports
LISTINGS = {"timeline": "events", "decisions": "decisions", "evidence": "pieces of evidence",
            "outcomes": "skipped or failed steps", "notes": "notes", "actions": "integration actions"}
# Events that only move the run along: counted, not listed in the report's timeline.
ROUTINE = frozenset({"step.started", "step.completed", "checklist.checked", "input.set", "role.assigned",
                     "integration.requested"})


@dataclass(frozen=True)
class Entry:
    """One event as the report shows it: its times parsed, everything else as recorded."""

    seq: int
    kind: str
    occurred: datetime
    recorded: datetime
    actor: str
    message: str
    phase: str | None
    step: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> Entry:
        return cls(event.seq, event.kind, moment(event.occurred_at), moment(event.recorded_at), event.actor,
                   event.message, event.phase, event.step, event.data)

    @property
    def differs(self) -> bool:
        """It happened at another moment than it was recorded (a note with --at, a step completed `at`)."""
        return self.occurred != self.recorded


@dataclass
class Span:
    """How many events, from when to when."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, when: datetime) -> None:
        self.count += 1
        self.first = when if self.first is None else min(self.first, when)
        self.last = when if self.last is None else max(self.last, when)


@dataclass
class Action:
    """An integration action, by its idempotency key: requested, then done, failed or dry-run."""

    key: str
    integration: str
    action: str
    requested: Entry
    outcome: Entry | None = None

    @property
    def status(self) -> str:
        return OUTCOMES[self.outcome.kind] if self.outcome else "requested"

    @property
    def described(self) -> str:
        return {"dry-run": "not sent (dry run)", "requested": "requested, outcome unknown"}.get(self.status,
                                                                                              self.status)

    @property
    def ref(self) -> dict[str, Any]:
        return dict(self.outcome.data.get("ref") or {}) if self.outcome else {}

    @property
    def reference(self) -> str:
        """The external reference but its web address: `channel=C024BE91L, ts=1503435956.000247`, `key=IR-42`."""
        linked = self._linked()
        return ", ".join(f"{k}={v}" for k, v in sorted(self.ref.items()) if k != linked and v is not None)

    @property
    def link(self) -> str | None:
        """A web address for the ticket or message, when the integration recorded one."""
        linked = self._linked()
        return self.ref[linked] if linked else None

    def _linked(self) -> str | None:
        return next((key for key in LINK_KEYS if isinstance(self.ref.get(key), str)
                     and self.ref[key].startswith(("https://", "http://"))), None)


@dataclass(frozen=True)
class Duration:
    """A measure between two milestones: how long between the moments they happened, and between the moments
    they were recorded when that differs (None: the same, or not reached)."""

    label: str
    start: str
    end: str
    happened: timedelta | None
    recorded: timedelta | None


@dataclass
class Report:
    incident: Incident
    events: int = 0
    head: str = ""
    broken: Broken | None = None
    opened: Entry | None = None
    roles: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, Span] = field(default_factory=dict)
    phases: dict[str, Span] = field(default_factory=dict)  # "": events outside any phase; imported ones aside
    sources: dict[str, Span] = field(default_factory=dict)  # imported events, by source
    milestones: dict[str, Entry] = field(default_factory=dict)  # the first of each
    decisions: list[Entry] = field(default_factory=list)
    evidence: list[Entry] = field(default_factory=list)
    outcomes: list[Entry] = field(default_factory=list)  # skipped and failed steps
    notes: list[Entry] = field(default_factory=list)
    actions_to_take: list[Entry] = field(default_factory=list)  # an exercise's corrective actions
    actions: dict[str, Action] = field(default_factory=dict)
    unfinished: dict[str, Entry] = field(default_factory=dict)  # steps started and not (yet) finished
    # events of each listing not kept (timeline, decisions, evidence, outcomes, notes, actions)
    left: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LISTINGS, 0))
    failed: list[Entry] = field(default_factory=list)  # every failed step, listed or not
    to_do: list[str] = field(default_factory=list)  # follow-up notes, listed or not
    later: dict[str, Action] = field(default_factory=dict)  # actions past the listing, until their outcome
    later_follow_ups: list[str] = field(default_factory=list)  # what those left to do
    unsent_later: int = 0  # of those, how many were not sent (a dry run of them in a live incident)
    _earliest: list[tuple[float, int, Entry]] = field(default_factory=list)  # a heap: the timeline's LISTED

    @property
    def timeline(self) -> list[Entry]:
        """The events but the routine ones: all of them, or the LISTED that happened first (`left["timeline"]`
        says how many more), in the order they were recorded."""
        return [entry for _, _, entry in sorted(self._earliest, key=lambda item: item[2].seq)]

    def _listed(self, name: str, listing: list[Entry], entry: Entry) -> None:
        if len(listing) < LISTED:
            listing.append(entry)
        else:
            self.left[name] += 1

    def add(self, event: Event) -> None:
        entry = Entry.of(event)
        self.events, self.head = event.seq, event.hash
        kind, data = entry.kind, entry.data
        if kind == "imported":
            self.sources.setdefault(str(data.get("source")), Span()).add(entry.occurred)
        else:
            self.participants.setdefault(entry.actor, Span()).add(entry.recorded)
            self.phases.setdefault(entry.phase or "", Span()).add(entry.occurred)
        if kind not in ROUTINE:
            item = (-entry.occurred.timestamp(), -entry.seq, entry)  # the latest on top, to go first
            if len(self._earliest) < LISTED:
                heapq.heappush(self._earliest, item)
            else:
                self.left["timeline"] += 1
                heapq.heappushpop(self._earliest, item)
        if kind == "incident.opened":
            self.opened = entry
        elif held := role_holder(kind, data):
            self.roles[held[0]] = held[1]
        elif kind == "milestone":
            if data.get("afterwards"):  # set afterwards (`ir milestone --at`): it replaces the one recorded before
                self.milestones[str(data.get("milestone"))] = entry
            else:
                self.milestones.setdefault(str(data.get("milestone")), entry)
        elif kind == "incident.closed":
            self.milestones.setdefault("closed", entry)
        elif kind == "decision":
            self._listed("decisions", self.decisions, entry)
        elif kind == "evidence":
            self._listed("evidence", self.evidence, entry)
        elif kind == "note":
            self._listed("notes", self.notes, entry)
            if FOLLOW_UP.match(entry.message):
                self.to_do.append(FOLLOW_UP.sub("", entry.message, count=1))
        elif kind == "corrective_action":
            self.actions_to_take.append(entry)
        elif kind == "step.started" and entry.step:
            self.unfinished[entry.step] = entry
        elif kind in ("step.completed", "step.skipped", "step.failed") and entry.step:
            self.unfinished.pop(entry.step, None)
            if kind != "step.completed":
                self._listed("outcomes", self.outcomes, entry)
            if kind == "step.failed":
                self.failed.append(entry)
        elif kind == "integration.requested":
            action = Action(data["key"], data["integration"], data["action"], entry)
            if len(self.actions) < LISTED or data["key"] in self.actions:
                self.actions[data["key"]] = action
            else:
                self.left["actions"] += 1
                self.later[data["key"]] = action
        elif kind in OUTCOMES and data.get("key") in self.actions:
            self.actions[data["key"]].outcome = entry
        elif kind in OUTCOMES and data.get("key") in self.later:  # past the listing: only what is left to do
            action = self.later.pop(data["key"])
            action.outcome = entry
            self.later_follow_ups += self._undone(action)

    def durations(self) -> Iterator[Duration]:
        """Each measured duration, from the moments its milestones happened (occurred_at), and beside it the
        duration between their recording times when that differs (a milestone set afterwards, back-dated)."""
        start_name, start = "detected", self.milestones.get("detected")
        if start is None:
            start_name, start = "opened", self.opened
        for label, end_name in DURATIONS:
            end = self.milestones.get(end_name)
            if not (start and end):
                yield Duration(label, start_name, end_name, None, None)
                continue
            happened, recorded = end.occurred - start.occurred, end.recorded - start.recorded
            yield Duration(label, start_name, end_name, happened, recorded if recorded != happened else None)

    def roles_open(self) -> list[str]:
        """The roles nobody was given (the report names them in one line)."""
        return [role for role, who in self.roles.items() if not who]

    def not_sent(self) -> list[tuple[str, int]]:
        """The integration actions shown and recorded but not sent (a dry run of them), counted by what they are:
        (`slack notify.post`, 20), in the order first requested."""
        counted: dict[str, int] = {}
        for action in self.actions.values():
            if action.status == "dry-run":
                name = f"{action.integration} {action.action}"
                counted[name] = counted.get(name, 0) + 1
        return list(counted.items())

    def follow_ups(self) -> Iterator[str]:
        """What is left to do: failed steps, unfinished steps, the follow-up tasks opened, integration actions not
        carried out, notes that begin with `follow-up:`, `todo:` or `action:`, and an exercise's corrective
        actions (with their capability element, owner, start and due date)."""
        for entry in self.failed:
            yield f"step {entry.step} failed: {entry.message or 'no reason given'}"
        for path in self.unfinished:
            yield f"step {path} was started and not finished"
        if self.incident.cursor and self.incident.status == "closed":
            yield f"the incident was closed with the playbook still at step {self.incident.cursor}"
        for action in self.actions.values():
            yield from self._undone(action)
        yield from self.later_follow_ups
        for action in self.later.values():
            yield from self._undone(action)
        yield from self.to_do
        for entry in self.actions_to_take:
            data = entry.data
            yield entry.message + (f" ({data['capability']})" if data.get("capability") else "") + "".join(
                f", {k} {data[k]}" for k in ("owner", "start", "due") if data.get(k))
        unsent = sum(n for _, n in self.not_sent()) + self.unsent_later
        if unsent and self.incident.mode == "live":  # one line, after what is really left to do
            yield (f"{unsent} integration action(s) were not sent (their integration was not configured): "
                   f"{counts(self.not_sent())}; do by hand what they say (ir outbox {self.incident.id} lists "
                   "them)")

    def _undone(self, action: Action) -> list[str]:
        """What an integration action leaves to do: the task it opened, or doing it, when it was not done."""
        out, live = list[str](), self.incident.mode == "live"
        summary = action.requested.data.get("summary")
        if action.action == "ticket.task" and summary and action.status in ("done", "dry-run"):
            out.append(f"task: {summary}" + (f" ({action.ref['key']})" if action.ref.get("key") else
                                             " (not opened: dry run)" if action.status == "dry-run" else ""))
        if action.status == "failed":
            out.append(f"{action.integration} {action.action} ({action.key}) failed: {action.outcome.message}")  # type: ignore[union-attr]
        elif action.status == "requested":
            out.append(f"{action.integration} {action.action} ({action.key}) was requested, its outcome is unknown")
        elif action.status == "skipped":
            out.append(f"{action.integration} {action.action} ({action.key}) was skipped by {action.outcome.actor}: "  # type: ignore[union-attr]
                       f"{action.outcome.data.get('reason')}")  # type: ignore[union-attr]
        elif action.status == "dry-run" and live and action.key in self.later:
            self.unsent_later += 1  # past the listing: counted in the one line `follow_ups` says it in
        return out


def build(incident: Incident, events: Iterable[Event]) -> Report:
    """The report over `events` (one pass), checking the hash chain on the way."""
    report = Report(incident)

    def feed() -> Iterator[Event]:
        for event in events:
            report.add(event)
            yield event

    stream = feed()
    report.broken = verify(stream, head=(incident.head_hash, incident.event_count))
    for _ in stream:  # a broken chain stops the check, not the report
        pass
    return report


def omitted(report: Report, listing: str) -> str | None:
    """What a listing left out, when it did: how many, and where to find them."""
    left = report.left[listing]
    if not left:
        return None
    return (f"{left} more {LISTINGS[listing]} are not listed here (a listing shows at most {LISTED}); the JSON and "
            f"CSV exports have every event: `ir export {report.incident.id} --format json`.")


def chronological(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.occurred, e.seq))


def question(entry: Entry) -> str:
    """A decision's question (its message reads `question -> label`)."""
    return entry.message.removesuffix(f" -> {entry.data.get('label')}")


def headline(entry: Entry) -> str:
    """What an event says, in one line of plain text."""
    data, kind = entry.data, entry.kind
    if kind == "decision":
        return f"decision: {entry.message}"
    if kind == "milestone":
        return f"milestone: {data.get('milestone')}"
    if kind == "evidence":
        return f"evidence: {entry.message} (SHA-256 {data.get('sha256')})"
    if kind in OUTCOMES:
        return f"{data.get('integration')} {data.get('action')} {OUTCOMES[kind]}: {plain(entry.message)}"
    if kind == "imported":
        return f"imported from {data.get('source')} (line {data.get('line')}): {entry.message}"
    if kind in ("step.skipped", "step.failed"):
        return f"{kind.replace('.', ' ')}: {entry.message}" if entry.message else kind.replace(".", " ")
    return f"{kind}: {entry.message}" if entry.message else kind


def counts(named: Iterable[tuple[str, int]]) -> str:
    """`20 slack notify.post, 11 jira ticket.comment`."""
    return ", ".join(f"{n} {name}" for name, n in named)


# Slack's markup (mrkdwn) and Jira's escapes, as ir's messages carry them; the report shows the text they mark up.
_JIRA_ESCAPE = re.compile(r"\\([*_\[\]{}|~^+?#-])")
_SLACK_ENTITY = re.compile(r"&(lt|gt|amp);")
_SLACK_LINK = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")
_SLACK_STYLE = re.compile(r"(?<![\w*_~`])([*_~])(?=\S)([^*_~\n]*?\S)\1(?![\w*_~`])")
_EMOJI = re.compile(r"(?<![\w:]):[a-z0-9_+'-]+:(?![\w:])")


def plain(text: str) -> str:
    """A message as a reader sees it in Slack, as plain text: `*bold*`, `_italic_`, `~struck~` and `:emoji:` go,
    `<https://x|label>` reads `label (https://x)`, `<@U123>` `@U123`, `<#C1|name>` `#name`, `<!here>` `@here`;
    Jira's escapes (`\\*`) and Slack's (`&lt;`) are undone first, so markup typed into an answer goes too."""
    text = _SLACK_ENTITY.sub(lambda m: {"lt": "<", "gt": ">", "amp": "&"}[m.group(1)], _JIRA_ESCAPE.sub(r"\1", text))
    text = _SLACK_LINK.sub(_link, text)
    text = _SLACK_STYLE.sub(r"\2", _SLACK_STYLE.sub(r"\2", text))  # twice: `*_both_*`
    return re.sub(r"[ \t]*\n[ \t]*", "\n", re.sub(r"[ \t]{2,}", " ", _EMOJI.sub("", text))).strip()


def _link(found: re.Match[str]) -> str:
    target, label = found.group(1), found.group(2)
    if target[0] in "@#!":
        name = label or target[1:].split("^")[-1]
        return name if name[:1] in "@#" else ("#" if target[0] == "#" else "@") + name
    if not target.startswith(("http://", "https://", "mailto:")):
        return found.group(0)  # not Slack's markup: text in angle brackets
    return f"{label} ({target})" if label and label not in (target, target.removeprefix("mailto:")) else label or target


def when_entry(entry: Entry, tz: tzinfo) -> str:
    """When it happened, and when it was recorded if that was another moment."""
    shown = when(entry.occurred, tz)
    return f"{shown} (recorded {when(entry.recorded, tz)})" if entry.differs else shown
