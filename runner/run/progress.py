"""How far an incident's playbook has come, over every step path (included playbooks' steps too): a step's place
in the whole incident, steps finished per phase counting the branch taken, what is next, and steps in progress
past their SLA."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from ir.format.bundle import Bundle
from ir.format.model import PHASES, IncludeStep, Step
from ir.store.records import StepState
from ir.store.timeline import utc_now
from ir.times import duration, moment, parse_duration


def walk(bundle: Bundle) -> Iterator[tuple[str, Step]]:
    """Every step path, included playbooks' steps too; an included playbook the bundle lacks (a store that keeps
    only the incident's own playbook) is left out."""
    def steps(playbook_id: str, prefix: str) -> Iterator[tuple[str, Step]]:
        for step in bundle.playbooks[playbook_id].steps:
            yield prefix + step.id, step
            if isinstance(step, IncludeStep) and step.playbook in bundle.playbooks:
                yield from steps(step.playbook, f"{prefix}{step.id}/")
    return steps(bundle.root, "")


def shown(bundle: Bundle) -> list[tuple[str, Step, str]]:
    """The steps a responder is shown, in the incident's order: (path, step, the phase it is recorded in: an included
    step's is its include step's); include steps themselves are left out."""
    out: list[tuple[str, Step, str]] = []
    phases: dict[str, str] = {}
    for path, step in walk(bundle):
        phase = phases.get(path.split("/")[0], step.phase)
        if isinstance(step, IncludeStep):
            phases.setdefault(path.split("/")[0], step.phase)
            continue
        out.append((path, step, phase))
    return out


def position(order: dict[str, int], path: str) -> str:
    """`7/123`: the step's place among the steps of the whole incident."""
    return f"{order[path]}/{len(order)}"


def progress(steps: list[tuple[str, Step, str]], states: dict[str, StepState],
             cursor: str | None) -> list[tuple[str, int, int]]:
    """Per phase: (phase, steps finished, steps on the branch taken): those finished or in progress, and those not
    started yet that come after the cursor (a step passed over by a branch is not counted)."""
    at = next((n for n, (path, _, _) in enumerate(steps) if path == cursor), len(steps))
    done: dict[str, int] = {}
    total: dict[str, int] = {}
    for n, (path, _, phase) in enumerate(steps):
        state = states.get(path)
        if state is None and n < at:
            continue
        total[phase] = total.get(phase, 0) + 1
        done[phase] = done.get(phase, 0) + (state is not None and state.status != "started")
    return [(phase, done[phase], total[phase]) for phase in PHASES if phase in total]


def upcoming(steps: list[tuple[str, Step, str]], states: dict[str, StepState], cursor: str | None,
             count: int = 3) -> list[str]:
    """The next steps after the cursor, not started yet (the first `count`)."""
    paths = [path for path, _, _ in steps]
    after = paths[paths.index(cursor) + 1:] if cursor in paths else []
    return [path for path in after if path not in states][:count]


def updates_due(includes: Iterable[tuple[str, IncludeStep]], states: dict[str, StepState],
                variables: Mapping[tuple[str, str], Any], now: datetime | None = None) -> list[str]:
    """Status updates due: for each included playbook with an `interval_minutes` input (status-update), the last
    of its include steps finished, when that interval has passed since and no later one has started."""
    now = now or utc_now()
    last: dict[str, tuple[str, datetime, int]] = {}  # playbook -> (path, finished, minutes) of its latest update
    started: dict[str, datetime] = {}
    for path, step in includes:
        state, minutes = states.get(path), variables.get((path, "inputs.interval_minutes"))
        if state and state.started_at:
            started[step.playbook] = max(started.get(step.playbook, moment(state.started_at)),
                                         moment(state.started_at))
        if state and state.status == "completed" and state.finished_at and isinstance(minutes, int):
            finished = moment(state.finished_at)
            if step.playbook not in last or finished > last[step.playbook][1]:
                last[step.playbook] = (path, finished, minutes)
    out = []
    for playbook, (path, finished, minutes) in last.items():
        due = finished + timedelta(minutes=minutes)
        if now >= due and started.get(playbook, finished) <= finished:
            out.append(f"status update due since {due.strftime('%H:%M UTC')} (every {minutes} minutes; "
                       f"the last: {path})")
    return out


def overdue(steps: Iterable[tuple[str, Step, str]], states: dict[str, StepState],
            now: datetime | None = None) -> list[str]:
    """Steps in progress past their SLA, included playbooks' too, as `path (SLA 1h, 25m 00s over)`."""
    now = now or utc_now()
    out = []
    for path, step, _ in steps:
        state = states.get(path)
        if step.sla and state and state.status == "started" and state.started_at:
            late = now - moment(state.started_at) - parse_duration(step.sla)
            if late.total_seconds() > 0:
                out.append(f"{path} (SLA {step.sla}, {duration(late)} over)")
    return out
