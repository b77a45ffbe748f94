"""The incident's header checked against its events: the row in the incidents table (title, severity, status,
opener, playbook) is a cache of what the hash-chained events say, so an edit to it shows; and the stored
playbooks must hash to what the opening event recorded, so a resume never runs an edited playbook."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ir.format.bundle import bundle_hash
from ir.format.model import SEVERITIES
from ir.store.records import Incident
from ir.store.timeline import Event

HEADER_KINDS = frozenset({"incident.opened", "incident.updated", "input.set", "input.corrected", "role.assigned",
                          "severity.changed", "incident.closed", "incident.discarded"})


def sets_severity(name: str, scope: str) -> bool:
    """Whether recording the variable `name` (`inputs.severity`, `answers.severity`, ...) in `scope` sets the
    incident's severity: the incident's own input, a role or a prompt's answer does; an included playbook's input
    does not (the run keeps it in the include's scope). The run applies it and verify reads it back: one rule."""
    return name.partition(".")[2] == "severity" and not (name.startswith("inputs.") and scope)


def from_events(events: Iterable[Event], before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The header fields as the events set them, after what earlier events set (`before`, as this gave it): a
    field no event sets is absent. So the events can be taken as they come, without keeping them."""
    out: dict[str, Any] = dict(before or {})
    for event in events:
        if event.kind == "incident.opened":
            out |= {"opened_by": event.actor, "status": "open", "playbook_hash": event.data.get("hash"),
                    "playbook_id": event.data.get("playbook"), "playbook_version": event.data.get("version"),
                    "severity": event.data.get("severity")}
            out |= {"title": event.data["title"]} if "title" in event.data else {}
        elif event.kind == "incident.updated" and "title" in event.data:
            out["title"] = event.data["title"]
        elif event.kind == "severity.changed" and event.data.get("severity") in SEVERITIES:
            out["severity"] = event.data["severity"]
        elif (event.kind in ("input.set", "input.corrected", "role.assigned") and event.data.get("value") in SEVERITIES
              and sets_severity(str(event.data.get("name")), str(event.data.get("scope") or ""))):
            out["severity"] = event.data["value"]
        elif event.kind == "incident.closed":
            out["status"] = "closed"
        elif event.kind == "incident.discarded":
            out["status"] = "discarded"
    return {k: v for k, v in out.items() if v is not None}


def header_problem(incident: Incident, derived: Mapping[str, Any]) -> str | None:
    """What in the incident's header differs from what its events set (`from_events`), or None."""
    edited = [name for name, value in derived.items() if getattr(incident, name) != value]
    if not edited:
        return None
    shown = "; ".join(f"{name} is {getattr(incident, name)!r}, the events say {derived[name]!r}" for name in edited)
    return f"the incident's header was edited: {shown}"


def playbook_problem(incident: Incident, stored: Mapping[str, bytes], opened: object) -> str | None:
    """Whether the stored playbooks are the ones the incident opened with (`opened`: the hash its opening event
    recorded, as `from_events` reads it)."""
    actual = bundle_hash(stored)
    if actual == opened == incident.playbook_hash:
        return None
    return (f"the stored playbooks hash to {actual[:12]}…, the incident opened with {str(opened)[:12]}… "
            f"(header: {incident.playbook_hash[:12]}…): a stored playbook was edited")
