"""Everything `ir verify` checks in the store, in one place, and what `ir resume` and `ir flush` check before they
act: the hash chain up to the recorded head, the incident's header, the stored playbooks, and the state tables
sealed into the chain."""

from __future__ import annotations

from collections.abc import Sequence

from ir.store.header import HEADER_KINDS, from_events, header_problem, playbook_problem
from ir.store.records import Store
from ir.store.state import state_problem
from ir.store.timeline import verify_links


def problem(store: Store, incident_id: str) -> str | None:
    """What was changed outside ir, or None: the first of the chain, the header, the playbooks, the state, read as
    of one moment (a responder's note committed meanwhile is not an edit)."""
    return store.snapshot(lambda: _problem(store, incident_id))


def _problem(store: Store, incident_id: str) -> str | None:
    found = store.incident(incident_id)
    broken = verify_links(store.links(incident_id), head=(found.head_hash, found.event_count))
    if broken:
        return str(broken)
    derived = from_events(store.events(incident_id, kinds=tuple(sorted(HEADER_KINDS))))  # folded as they are read
    return (header_problem(found, derived)
            or playbook_problem(found, store.bundle(incident_id), derived.get("playbook_hash"))
            or state_problem(store.seals(incident_id), found, store.steps(incident_id), store.variables(incident_id),
                             store.outbox(incident_id)))


def unwitnessed(store: Store, incident_id: str, published: Sequence[tuple[str, int, str]]) -> list[str]:
    """Each published head (where, seq, the start of its hash) that the store's chain no longer contains: events
    removed from the end (a head past the last event), or a rewritten timeline (another hash at that seq)."""
    wanted = {seq for _, seq, _ in published}
    hashes = {seq: sealed for seq, _, sealed, _ in store.links(incident_id) if seq in wanted}
    count = store.incident(incident_id).event_count
    out = []
    for where, seq, digest in published:
        if seq > count:
            out.append(f"{where} published event {seq} ({digest}…); the timeline ends at event {count}: events were "
                       "removed from its end")
        elif not hashes.get(seq, "").startswith(digest):
            out.append(f"{where} published event {seq} as {digest}…; the timeline's event {seq} is "
                       f"{hashes.get(seq, 'missing')[:16]}…: the timeline was rewritten")
    return out
