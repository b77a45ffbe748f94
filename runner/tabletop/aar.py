"""The after-action report of a tabletop exercise (`ir export INCIDENT --format aar`), shaped like HSEEP's AAR/IP:
the exercise overview, the objectives with their P/S/M/U ratings, participants, time per phase, injects, the
decisions taken compared with those the scenario expected, strengths, areas for improvement with their root
causes, and the improvement plan (corrective actions with capability element, owner, start and due date).
Markdown; deterministic.

`ExerciseReport.add` gathers what the report shows in one pass over the events; `lines` composes the sections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, TextIO

from ir.errors import IrError
from ir.format.bundle import Bundle
from ir.run.amend import role_holder
from ir.run.answers import RATINGS
from ir.store.records import Incident, Store, events_to_head
from ir.store.timeline import Event
from ir.tabletop.scenario import Inject, Scenario, bundle_scenario
from ir.times import duration, moment


def write(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    if not incident.exercise:
        raise IrError(f"{incident.id} is not an exercise", hint="use --format markdown for an incident's report")
    bundle = Bundle.from_stored(store.bundle(incident.id), incident.playbook_id, incident.id)
    render(incident, bundle_scenario(bundle), events_to_head(store, incident), out, tz)


def render(incident: Incident, scenario: Scenario | None, events: Iterable[Event], out: TextIO, tz: tzinfo) -> None:
    report = ExerciseReport(incident, scenario)
    for event in events:
        report.add(event)
    out.write("".join(line + "\n" for line in lines(report, tz)))


@dataclass(frozen=True)
class Finding:
    """A strength or an area for improvement: what was seen, where (a step, or the hotwash), and for an area for
    improvement its root cause."""

    text: str
    where: str
    root_cause: str | None = None


@dataclass
class ExerciseReport:
    incident: Incident
    scenario: Scenario | None
    last: datetime | None = None  # the latest moment on the timeline
    phases: dict[str, list[datetime]] = field(default_factory=dict)  # phase -> [first, last] step event
    injects: list[Event] = field(default_factory=list)
    decisions: dict[str, Event] = field(default_factory=dict)  # by step path: the last one taken
    strengths: list[Finding] = field(default_factory=list)
    gaps: list[Finding] = field(default_factory=list)
    ratings: dict[int, dict[str, Any]] = field(default_factory=dict)  # by objective number
    actions: list[Event] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # role -> who, as assigned in the run

    def add(self, e: Event) -> None:
        when = moment(e.occurred_at)
        self.last = when if self.last is None else max(self.last, when)
        if e.phase and e.kind.startswith("step."):
            span = self.phases.setdefault(e.phase, [when, when])
            span[0], span[1] = min(span[0], when), max(span[1], when)
        if e.kind == "inject":
            self.injects.append(e)
        elif e.kind == "decision" and e.step:
            self.decisions[e.step] = e
        elif e.kind == "observation":
            self._observed(e)
        elif e.kind == "hotwash":
            self._hotwash(e.data)
        elif e.kind == "corrective_action":
            self.actions.append(e)
        elif held := role_holder(e.kind, e.data):
            role, who = held
            if who:
                self.roles[role] = who
            else:  # left open, or corrected to nobody
                self.roles.pop(role, None)

    def _observed(self, e: Event) -> None:
        where = f"step {e.step}" if e.step else "the exercise"
        if e.data.get("kind") == "strength":
            self.strengths.append(Finding(e.message, where))
        elif e.data.get("kind") == "gap":
            self.gaps.append(Finding(e.message, where, e.data.get("root_cause")))

    def _hotwash(self, data: dict[str, Any]) -> None:
        """The last hotwash counts; `root_causes` go with `improve` item by item (older hotwashes have none)."""
        self.strengths = [f for f in self.strengths if f.where != "hotwash"]
        self.gaps = [f for f in self.gaps if f.where != "hotwash"]
        self.strengths += [Finding(text, "hotwash") for text in data.get("went_well", [])]
        improve = data.get("improve", [])
        causes = data.get("root_causes") or [None] * len(improve)
        self.gaps += [Finding(text, "hotwash", cause) for text, cause in zip(improve, causes)]
        self.ratings = {r["objective"]: r for r in data.get("ratings", [])}

    @property
    def delivered(self) -> set[str]:
        return {e.data["inject"] for e in self.injects if e.data.get("inject")}

    @property
    def missed(self) -> list[Inject]:
        return [i for i in self.scenario.injects if i.id not in self.delivered] if self.scenario else []


def lines(report: ExerciseReport, tz: tzinfo) -> list[str]:
    out = [*_overview(report, tz), *_objectives(report), *_participants(report), *_phases(report, tz),
           *_injects(report, tz), *_decisions(report), *_strengths(report), *_improvements(report),
           *_plan(report), *_questions(report)]
    while out[-1] == "":
        out.pop()
    return out


def _overview(report: ExerciseReport, tz: tzinfo) -> list[str]:
    i, s = report.incident, report.scenario
    ended = f"; ended {_shown(report.last, tz)}" if i.cursor is None and report.last else ""
    return [f"# After-action report: {s.title if s else i.title}", "",
            f"**EXERCISE.** Tabletop exercise {i.id}, playbook {i.playbook_id} {i.playbook_version}"
            + (f", scenario {s.id} {s.version}" if s else "")
            + f"; facilitated by {i.opened_by}; started {_shown(moment(i.opened_at), tz)}{ended}.", ""]


def _objectives(report: ExerciseReport) -> list[str]:
    objectives = dict(enumerate(report.scenario.objectives, 1)) if report.scenario else {}
    objectives |= {n: r.get("title") or f"objective {n}" for n, r in report.ratings.items() if n not in objectives}
    if not objectives:
        return []
    legend = "Rated as HSEEP does: " + "; ".join(f"**{key}** {label}" for key, label in RATINGS.items()) + "."
    rows = []
    for n, objective in sorted(objectives.items()):
        rating = report.ratings.get(n)
        shown = f"{rating['rating']}: {RATINGS.get(rating['rating'], '?')}" if rating else "not rated"
        rows.append((str(n), _cell(objective), shown, _cell((rating or {}).get("why") or "")))
    return ["## Objectives", "", legend, "", *_table(("#", "objective", "rating", "why"), rows)]


def _participants(report: ExerciseReport) -> list[str]:
    s = report.scenario
    people = [(p.name, p.role or "", p.team or "") for p in s.participants] if s else []
    named = {name for name, _, _ in people}
    people += [(who, role, "") for role, who in sorted(report.roles.items()) if who not in named]
    return ["## Participants", "", *_table(("name", "role", "team"), people)] if people else []


def _phases(report: ExerciseReport, tz: tzinfo) -> list[str]:
    rows = [(phase, _shown(start, tz), _shown(end, tz), duration(end - start))
            for phase, (start, end) in report.phases.items()]
    return ["## Time per phase", "", *_table(("phase", "from", "to", "duration"), rows)] if rows else []


def _injects(report: ExerciseReport, tz: tzinfo) -> list[str]:
    if not (report.injects or report.missed):
        return []
    rows = [(_shown(moment(e.occurred_at), tz), _cell(e.data.get("title") or e.message), e.data.get("trigger", ""),
             _cell("; ".join(e.data.get("expect", [])))) for e in report.injects]
    out = ["## Injects", "", *(_table(("time", "inject", "trigger", "expected actions"), rows) if rows else [])]
    if report.missed:  # while the exercise still runs, they may yet arrive
        out += [("Did not arrive: " if report.incident.cursor is None else "Not delivered yet: ")
                + "; ".join(f"{_cell(i.title)} ({i.at.describe()})" for i in report.missed) + ".", ""]
    return out


def _decisions(report: ExerciseReport) -> list[str]:
    expected = report.scenario.expected_decisions if report.scenario else {}
    rows = []
    for step in sorted(set(report.decisions) | set(expected)):
        taken, hope = report.decisions.get(step), expected.get(step)
        choice = taken.data["choice"] if taken else None
        match = "-" if hope is None else ("not reached" if taken is None else
                                          "yes" if choice == hope.choice else "**no**")
        rows.append((step, choice or "-", _cell((taken.data.get("rationale") if taken else None) or ""),
                     (hope.choice + (": " + _cell(hope.why) if hope.why else "")) if hope else "-", match))
    return ["## Decisions compared with the scenario", "",
            *_table(("decision", "taken", "rationale", "expected", "match"), rows)] if rows else []


def _strengths(report: ExerciseReport) -> list[str]:
    items = [f"- {_cell(f.text)} ({f.where})" for f in report.strengths]
    return ["## Strengths", "", *(items or ["- none recorded"]), ""]


def _improvements(report: ExerciseReport) -> list[str]:
    rows = [(_cell(f.text), f.where, _cell(f.root_cause or "not recorded")) for f in report.gaps]
    return ["## Areas for improvement", "",
            *(_table(("area for improvement", "observed", "root cause"), rows) if rows else ["- none recorded", ""])]


def _plan(report: ExerciseReport) -> list[str]:
    rows = [(_cell(e.message), *(_cell(e.data.get(k) or "-") for k in ("capability", "owner", "start", "due")))
            for e in report.actions]
    return ["## Improvement plan", "",
            *(_table(("corrective action", "capability element", "owner", "start", "due"), rows) if rows
              else ["No corrective actions recorded.", ""])]


def _questions(report: ExerciseReport) -> list[str]:
    s = report.scenario
    if not s:
        return []
    questions = s.questions + [q for i in s.injects if i.id in report.delivered for q in i.questions]
    return ["## Discussion questions", "", *(f"- {q}" for q in questions)] if questions else []


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    return [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|",
            *(f"| {' | '.join(row)} |" for row in rows), ""]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _shown(when: datetime, tz: tzinfo) -> str:
    return when.astimezone(tz).isoformat(timespec="seconds")
