"""The after-action report of a tabletop exercise (`ir export INCIDENT --format aar`): objectives, participants,
times per phase, injects, the decisions taken compared with those the scenario expected, strengths and areas for
improvement, and the improvement plan (corrective actions with owners and dates). Markdown; deterministic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any, TextIO

from ir.errors import IrError
from ir.tabletop.scenario import Scenario, bundle_scenario
from ir.format.bundle import Bundle
from ir.store.records import Incident, Store, events_to_head
from ir.store.timeline import Event


def write(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    if not incident.exercise:
        raise IrError(f"{incident.id} is not an exercise", hint="use --format markdown for an incident's report")
    bundle = Bundle.from_stored(store.bundle(incident.id), incident.playbook_id, incident.id)
    render(incident, bundle_scenario(bundle), events_to_head(store, incident), out, tz)


def render(incident: Incident, scenario: Scenario | None, events: Iterable[Event], out: TextIO, tz: tzinfo) -> None:
    """One pass over the events, then the report."""
    phases: dict[str, list[datetime]] = {}
    injects, decisions, observations, actions, roles = [], {}, [], [], {}
    hotwash: dict[str, list[str]] = {"went_well": [], "improve": []}
    for e in events:
        if e.phase and e.kind.startswith("step."):
            moment = _moment(e.occurred_at)
            span = phases.setdefault(e.phase, [moment, moment])
            span[0], span[1] = min(span[0], moment), max(span[1], moment)
        if e.kind == "inject":
            injects.append(e)
        elif e.kind == "decision":
            decisions[e.step] = e
        elif e.kind == "observation":
            observations.append(e)
        elif e.kind == "hotwash":
            hotwash = {k: list(e.data.get(k, [])) for k in ("went_well", "improve")}
        elif e.kind == "corrective_action":
            actions.append(e)
        elif e.kind == "role.assigned" and e.data.get("value"):
            roles[e.data["name"].removeprefix("roles.")] = e.data["value"]

    def when(text: str) -> str:
        return _at(text, tz)

    w = out.write
    title = scenario.title if scenario else incident.title
    w(f"# After-action report: {title}\n\n")
    w(f"**EXERCISE.** Tabletop exercise {incident.id}, playbook {incident.playbook_id} {incident.playbook_version}"
      + (f", scenario {scenario.id} {scenario.version}" if scenario else "") + f"; facilitated by "
      f"{incident.opened_by}; started {when(incident.opened_at)}.\n\n")
    if scenario and scenario.objectives:
        w("## Objectives\n\n" + "".join(f"- {o}\n" for o in scenario.objectives) + "\n")
    people = [(p.name, p.role or "", p.team or "") for p in scenario.participants] if scenario else []
    people += [(who, role, "") for role, who in sorted(roles.items()) if who not in {p[0] for p in people}]
    if people:
        w("## Participants\n\n| name | role | team |\n|---|---|---|\n")
        w("".join(f"| {n} | {r} | {t} |\n" for n, r, t in people) + "\n")
    if phases:
        w("## Time per phase\n\n| phase | from | to | duration |\n|---|---|---|---|\n")
        for phase, (start, end) in phases.items():
            w(f"| {phase} | {_shown(start, tz)} | {_shown(end, tz)} | {_duration(end - start)} |\n")
        w("\n")
    delivered = {e.data.get("inject") for e in injects}
    missed = [i for i in scenario.injects if i.id not in delivered] if scenario else []
    if injects or missed:
        w("## Injects\n\n")
    if injects:
        w("| time | inject | trigger | expected actions |\n|---|---|---|---|\n")
        for e in injects:
            w(f"| {when(e.occurred_at)} | {_cell(e.data.get('title') or e.message)} | {e.data.get('trigger', '')} | "
              f"{_cell('; '.join(e.data.get('expect', [])))} |\n")
        w("\n")
    if missed:  # while the exercise still runs, they may yet arrive
        w(("Did not arrive: " if incident.cursor is None else "Not delivered yet: ")
          + "; ".join(f"{_cell(i.title)} ({i.at.describe()})" for i in missed) + ".\n\n")
    expected = scenario.expected_decisions if scenario else {}
    if decisions or expected:
        w("## Decisions compared with the scenario\n\n| decision | taken | rationale | expected | match |\n"
          "|---|---|---|---|---|\n")
        for step in sorted(set(decisions) | set(expected)):
            taken, hope = decisions.get(step), expected.get(step)
            choice = taken.data["choice"] if taken else None
            match = "-" if hope is None else ("not reached" if taken is None else
                                              "yes" if choice == hope.choice else "**no**")
            w(f"| {step} | {choice or '-'} | {_cell((taken.data.get('rationale') if taken else None) or '')} | "
              f"{(hope.choice + (': ' + _cell(hope.why) if hope.why else '')) if hope else '-'} | {match} |\n")
        w("\n")
    strengths = [(e.step, e.message) for e in observations if e.data.get("kind") == "strength"]
    gaps = [(e.step, e.message) for e in observations if e.data.get("kind") == "gap"]
    w("## Strengths\n\n" + (_items(strengths, hotwash["went_well"]) or "- none recorded\n") + "\n")
    w("## Areas for improvement\n\n" + (_items(gaps, hotwash["improve"]) or "- none recorded\n") + "\n")
    w("## Improvement plan\n\n")
    if actions:
        w("| corrective action | owner | due |\n|---|---|---|\n")
        w("".join(f"| {_cell(e.message)} | {e.data.get('owner') or '-'} | {e.data.get('due') or '-'} |\n"
                  for e in actions) + "\n")
    else:
        w("No corrective actions recorded.\n\n")
    questions = (scenario.questions if scenario else []) + [q for i in (scenario.injects if scenario else [])
                                                             if i.id in delivered for q in i.questions]
    if questions:
        w("## Discussion questions\n\n" + "".join(f"- {q}\n" for q in questions))


def _items(observed: list[tuple[str | None, str]], said: list[str]) -> str:
    return "".join(f"- {text}" + (f" (step {step})" if step else "") + "\n" for step, text in observed) + "".join(
        f"- {text} (hotwash)\n" for text in said)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _shown(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _at(text: str, tz: tzinfo) -> str:
    return _shown(_moment(text), tz)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"
