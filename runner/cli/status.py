"""`ir status`: where an incident stands: progress per phase, the step in progress, overdue steps, milestones,
and the integration actions still waiting."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ir.format.bundle import Bundle
from ir.format.model import IncludeStep
from ir.run.progress import overdue, progress, shown, updates_due, walk
from ir.sinks import terminal
from ir.store.records import Store


def show_status(store: Store, incident_id: str, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    incident = store.incident(incident_id)
    bundle = Bundle.from_stored(store.bundle(incident_id), incident.playbook_id)
    steps = shown(bundle)  # included playbooks' too
    states = store.steps(incident_id)
    flags = [incident.mode] + (["exercise"] if incident.exercise else [])
    console.print(f"[bold]{incident.id}[/] {escape(terminal(incident.title))}  [dim]({', '.join(flags)})[/]")
    console.print(terminal(f"status {incident.status} · severity {incident.severity} · playbook {incident.playbook_id} "
                           f"{incident.playbook_version} · opened {incident.opened_at} by {incident.opened_by}"),
                  markup=False)
    driver = store.drivers().get(incident_id)
    console.print(terminal(f"at step: {incident.cursor or 'the playbook has ended'}"
                           + (f" · driven by {driver}" if driver else "")), markup=False)
    table = Table("phase", "done", "steps")
    for phase, done, total in progress(steps, states, incident.cursor):
        table.add_row(escape(terminal(phase)), str(done), str(total))
    console.print(table)
    for event in store.events(incident_id, kinds=("milestone",)):
        console.print(terminal(f"milestone {event.message}: {event.occurred_at}"), markup=False)
    for late in overdue(steps, states):
        console.print(f"[red]overdue:[/] {escape(terminal(late))}")
    includes = [(path, step) for path, step in walk(bundle) if isinstance(step, IncludeStep)]
    for due in updates_due(includes, states, store.variables(incident_id)) if incident.status == "open" else []:
        console.print(f"[red]{escape(terminal(due))}[/]")
    waiting = [i for i in store.outbox(incident_id) if i.status in ("pending", "failed")]
    if waiting:
        console.print(f"{len(waiting)} integration action(s) waiting: `ir outbox {incident_id}`")
