"""The incident store interface, and the records it keeps.

Every change of state arrives as `record(incident, draft, change)`: one timeline event and the state it
changes, committed together before the runner does anything else. The embedded SQLite store
(`ir.store.sqlite`) implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ir.store.timeline import Event, Stored

T = TypeVar("T")

UNCHANGED: Any = object()


@dataclass(frozen=True)
class Incident:
    id: str
    playbook_id: str
    playbook_version: str
    playbook_hash: str
    title: str
    severity: str
    mode: str  # "live" or "dry-run"
    exercise: bool
    opened_at: str
    opened_by: str
    status: str = "open"  # "open" or "closed"
    closed_at: str | None = None
    cursor: str | None = None  # the step in progress or next; None when the playbook has ended
    channel: str | None = None
    ticket: str | None = None
    head_hash: str = ""
    event_count: int = 0


@dataclass(frozen=True)
class StepState:
    path: str  # "scope", or "intrusion/contain" inside an included playbook
    status: str  # started, completed, skipped, failed
    started_at: str | None = None
    finished_at: str | None = None
    decision: str | None = None
    note: str | None = None
    checked: tuple[int, ...] = ()  # checklist items ticked


@dataclass(frozen=True)
class Draft:
    """An event before the store numbers, times and seals it."""

    kind: str
    actor: str
    message: str = ""
    occurred_at: str | None = None  # default: the moment it is recorded
    phase: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """State that changes together with its events, in one transaction."""

    steps: tuple[StepState, ...] = ()
    variables: dict[tuple[str, str], Any] = field(default_factory=dict)  # (scope, name) -> JSON value
    incident: dict[str, Any] = field(default_factory=dict)  # Incident fields: cursor, status, severity, ...
    # Steps that must still be open (not completed or skipped) when the change commits: checked in its transaction,
    # after the incident's writers are serialised, so that two processes cannot both finish one step.
    open_steps: tuple[str, ...] = ()


UNDELIVERED = ("pending", "sending", "failed", "unknown")  # the outbox statuses of an action not yet carried out


@dataclass(frozen=True)
class OutboxItem:
    key: str  # idempotency key: incident/step/action
    incident: str
    integration: str
    action: str
    payload: dict[str, Any]
    status: str = "pending"  # pending, sending, done, failed (refused: retried), unknown (reconciled first), dry-run
    attempts: int = 0
    error: str | None = None
    ref: dict[str, Any] = field(default_factory=dict)  # the external reference: issue key, channel and ts
    created_at: str = ""
    updated_at: str = ""
    queued: int = 0  # the seq of its integration.requested event: an incident's actions are in this order


class Store(Protocol):
    where: str  # the store as messages name it: its file, or its URL without a password

    def create(self, incident: Incident, bundle: dict[str, bytes], opened: Draft) -> Event: ...

    def incident(self, incident_id: str) -> Incident: ...

    def incidents(self) -> list[Incident]: ...

    def bundle(self, incident_id: str) -> dict[str, bytes]: ...

    def record(self, incident_id: str, drafts: Draft | Iterable[Draft], change: Change | None = None) -> Event:
        """Append the event(s) and apply the change atomically; returns the last event. The drafts are taken one
        at a time (an import's can be a generator)."""

    def events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None,
               limit: int | None = None, after: int = 0) -> Iterator[Event]:
        """The incident's events in order; only those of `kinds` (when given), recorded at or after `since` (UTC,
        as `format_recorded` writes it), after event `after`, the first `limit` of them."""

    def links(self, incident_id: str) -> Iterator[tuple[int, str, str, str]]:
        """Each event's (seq, prev_hash, hash, the hash its content gives), in order: what `ir verify` checks
        (`ir.store.timeline.verify_links`), read without making Events."""

    def seals(self, incident_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """The (seq, `data["state"]`) of each event that seals state rows, in order (ir.store.state)."""

    def stored(self, incident_id: str, last: int) -> Iterator[Stored]:
        """Events 1 to `last` as stored, in order, their data as canonical JSON text, not parsed: what the streaming
        exports write."""

    def count_events(self, incident_id: str, *, kinds: Sequence[str] = (), since: str | None = None) -> int:
        """How many events `events` would give without a limit."""

    def steps(self, incident_id: str) -> dict[str, StepState]: ...

    def variables(self, incident_id: str) -> dict[tuple[str, str], Any]: ...

    def enqueue(self, item: OutboxItem, requested: Draft) -> OutboxItem:
        """Record a pending action with its `integration.requested` event, atomically; an item already queued
        under the same key is returned unchanged (and no event is added)."""

    def outbox(self, incident_id: str | None = None) -> list[OutboxItem]: ...

    def outbox_item(self, key: str) -> OutboxItem | None: ...

    def begin(self, key: str) -> bool:
        """Mark an action as being sent (counting the attempt) before the request leaves: after a crash it is
        known to be in doubt. False (and nothing changed) when it is no longer undelivered: settled elsewhere."""

    def amend(self, key: str, payload: dict[str, Any], amended: Draft) -> bool:
        """Change an undelivered action's payload (not one being sent), with its event, atomically. False (and
        nothing changed) when it is being sent or no longer undelivered."""

    def settle(self, key: str, outcome: Draft, *, status: str, ref: dict[str, Any] | None = None,
               error: str | None = None, incident: dict[str, Any] | None = None) -> bool:
        """Record what became of an undelivered action, with its event (done, failed, unknown, dry-run) and the
        incident fields it sets (its channel, its ticket), atomically. False (and nothing recorded) when the
        action was no longer undelivered."""

    def running(self, incident_id: str, *, take_over: bool = False) -> AbstractContextManager[None]:
        """Hold the incident for the one process that runs its playbook; raise `IncidentBusy` naming the holder
        when another process holds it. A process that dies lets go. `take_over`: a store shared between machines
        stops the holder's hold first (its next write is refused)."""

    def drivers(self) -> dict[str, str]:
        """Who holds each incident being run (as `IncidentBusy` names them)."""

    def adopt(self, incident: Incident, bundle: dict[str, bytes], events: Iterable[Stored],
              steps: Iterable[StepState], variables: dict[tuple[str, str], Any], outbox: Iterable[OutboxItem]) -> None:
        """Take in an incident copied from another store, exactly as it is there."""

    def snapshot(self, read: Callable[[], T]) -> T:
        """`read()`, its queries all seeing the store as of one moment (one read transaction), whatever other
        connections commit meanwhile; within a snapshot or a write, just `read()`. Only reads: no writes in it."""

    def wait(self, incident_id: str, count: int, timeout: float) -> bool:
        """Until the incident has more than `count` events (True), or `timeout` seconds (False)."""

    def reopen(self) -> Store:
        """Another connection to the same store, for another thread."""

    def close(self) -> None: ...


def events_to_head(store: Store, incident: Incident) -> Iterator[Event]:
    """The incident's events up to the head it was read with, streamed."""
    stream = store.events(incident.id)
    try:
        for event in stream:
            if event.seq > incident.event_count:
                break
            yield event
    finally:
        stream.close()  # type: ignore[attr-defined]
