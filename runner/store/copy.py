"""Moving an incident between stores (`ir store copy`): a laptop's embedded SQLite file and a team's PostgreSQL,
either way. Everything is copied as stored, the events byte for byte, so the chain, its head and the state seals
are the same on both sides, and `ir verify` passes on both with the same head hash."""

from __future__ import annotations

from ir.errors import IrError
from ir.store.integrity import problem
from ir.store.records import Incident, Store


def copy_incident(source: Store, incident_id: str, target: Store) -> Incident:
    """Copy the incident from `source` to `target` (which must not hold it yet), checked on both sides; the
    incident as copied. The source is read as of one moment, whatever is noted in it meanwhile."""
    return source.snapshot(lambda: _copy(source, incident_id, target))


def _copy(source: Store, incident_id: str, target: Store) -> Incident:
    found = source.incident(incident_id)
    holder = source.drivers().get(incident_id)
    if holder:
        raise IrError(f"{incident_id} is being run by {holder}: a copy taken now would part from it",
                      hint="pause that run (Ctrl-C), copy it, and resume it from the store it is to be worked in")
    altered = problem(source, incident_id)
    if altered:
        raise IrError(f"{incident_id} is not copied: {altered}", hint="nothing was written; `ir verify` shows it")
    target.adopt(found, source.bundle(incident_id), source.stored(incident_id, found.event_count),
                 source.steps(incident_id).values(), source.variables(incident_id), source.outbox(incident_id))
    copied = target.incident(incident_id)
    altered = problem(target, incident_id)
    if altered or (copied.head_hash, copied.event_count) != (found.head_hash, found.event_count):
        raise IrError(f"{incident_id} was copied, and the copy does not verify: {altered or 'another head'}",
                      hint="report this as a bug; the source is unchanged")
    return copied
