"""`ir correct`, `ir milestone` and `ir severity`: corrections after the fact (ir.run.amend), each one event that
the timeline keeps beside what it corrects; they work while a run is in progress in another terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from ir.cli.common import As, At, IncidentArg, open_store, when

Reason = Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded with it).")]


def correct(incident: IncidentArg,
            name: Annotated[str, typer.Argument(help="inputs.ID, roles.ID, answers.ID or STEP.QUESTION.")],
            value: Annotated[str, typer.Argument(help="The corrected value.")], reason: Reason,
            as_: As = None) -> None:
    """Correct an earlier answer, input or role; the timeline keeps both, later steps and the report use the new."""
    from ir.format.bundle import Bundle
    from ir.run.amend import correction
    from ir.run.incidents import actor_name

    store = open_store()
    found = store.incident(incident)
    bundle = Bundle.from_stored(store.bundle(incident), found.playbook_id)
    draft, change = correction(bundle, store.variables(incident), name, value, reason, actor_name(as_))
    event = store.record(incident, draft, change)
    print(f"{incident}: {event.message} (event {event.seq})")


def milestone(incident: IncidentArg,
              name: Annotated[str, typer.Argument(help="detected, declared, contained, eradicated or recovered.")],
              at: At = None, reason: Annotated[str | None, typer.Option(
                  "--reason", metavar="TEXT", help="Why (recorded with it).")] = None, as_: As = None) -> None:
    """Set a milestone afterwards, at the time it really happened (--at); the report measures from it."""
    from ir.run.amend import milestone_set
    from ir.run.incidents import actor_name

    store = open_store()
    store.incident(incident)
    event = store.record(incident, milestone_set(name, when(at), actor_name(as_), reason))
    print(f"{incident}: milestone {name} at {event.occurred_at} (event {event.seq})")


def severity(incident: IncidentArg,
             level: Annotated[str, typer.Argument(help="low, medium, high or critical.")], reason: Reason,
             as_: As = None) -> None:
    """Change an incident's severity mid-incident."""
    from ir.run.amend import severity_change
    from ir.run.incidents import actor_name

    store = open_store()
    draft, change = severity_change(store.incident(incident), level, reason, actor_name(as_))
    event = store.record(incident, draft, change)
    print(f"{incident}: {event.message} (event {event.seq})")
