"""How far an incident's playbook has come: steps finished per phase, and steps in progress past their SLA."""

from __future__ import annotations

from datetime import datetime

from ir.format.model import Playbook
from ir.store.records import StepState
from ir.store.timeline import utc_now
from ir.times import duration, moment, parse_duration


def progress(playbook: Playbook, states: dict[str, StepState]) -> list[tuple[str, int, int]]:
    """Per phase of the playbook: (phase, steps finished, steps)."""
    return [(phase, sum(1 for s in steps if s.id in states and states[s.id].status != "started"), len(steps))
            for phase, steps in playbook.by_phase()]


def overdue(playbook: Playbook, states: dict[str, StepState], now: datetime | None = None) -> list[str]:
    """Steps in progress past their SLA, as `step (SLA 1h, 25m 00s over)`."""
    now = now or utc_now()
    out = []
    for step in playbook.steps:
        state = states.get(step.id)
        if step.sla and state and state.status == "started" and state.started_at:
            late = now - moment(state.started_at) - parse_duration(step.sla)
            if late.total_seconds() > 0:
                out.append(f"{step.id} (SLA {step.sla}, {duration(late)} over)")
    return out
