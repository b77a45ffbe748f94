"""The state tables sealed into the timeline. The steps, variables, outbox and incident rows are what a run goes on
from (where it is, what was answered, what is still to be sent, to which channel), so an edit to them would change
what the next `ir resume` or `ir flush` does. Each event that changes a row carries, in `data["state"]`, a short
hash of the row as it was written; the chain seals those hashes, and `state_problem` finds a row that differs from
the last hash recorded for it, a row no event recorded, and a row that was deleted.

    data["state"] = {"steps": {"scope": "3f2a..."}, "variables": {"/inputs.vendor": "..."},
                     "outbox": {"INC/notify/notify.post": "..."}, "incident": {"cursor": "..."}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from ir.store.records import UNDELIVERED, Change, Incident, OutboxItem, StepState

KEY = "state"  # the member of an event's data that holds the seals; only the store writes it
UNSEALED = ("head_hash", "event_count")  # the incident fields the chain itself checks
DIGITS = 32  # hex digits of SHA-256 kept: 128 bits, far past any forgery

# Rows are encoded as the store writes them (JSON, sorted keys, anything else as its text) and read back.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def digest(value: Any) -> str:
    return hashlib.sha256(_encode(value).encode()).hexdigest()[:DIGITS]


def step_digest(state: StepState) -> str:
    return digest([state.status, state.started_at, state.finished_at, state.decision, state.note,
                   list(state.checked)])


def outbox_digest(item: OutboxItem, status: str | None = None) -> str:
    """What an outbox row is sealed as; its attempts and times are the courier's bookkeeping and are left out."""
    return digest([item.integration, item.action, item.payload, status or item.status, item.ref, item.error])


def variable_key(scope: str, name: str) -> str:
    return f"{scope}/{name}"  # a name (`inputs.id`) never holds a /, so the last / splits it again


def of_change(change: Change) -> dict[str, dict[str, str]]:
    """The seals of the rows a change writes."""
    sections = {"steps": {s.path: step_digest(s) for s in change.steps},
                "variables": {variable_key(*key): digest(value) for key, value in change.variables.items()},
                "incident": {name: digest(value) for name, value in change.incident.items()}}
    return {name: entries for name, entries in sections.items() if entries}


def of_incident(incident: Incident) -> dict[str, dict[str, str]]:
    """The seals of a new incident's row (its opening event carries them)."""
    return {"incident": {name: digest(value) for name, value in asdict(incident).items() if name not in UNSEALED}}


def merged(*parts: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part in parts:
        for section, entries in part.items():
            out.setdefault(section, {}).update(entries)
    return out


def state_problem(sealed: Iterable[tuple[int, dict[str, Any]]], incident: Incident, steps: Mapping[str, StepState],
                  variables: Mapping[tuple[str, str], Any], outbox: Iterable[OutboxItem]) -> str | None:
    """What in the state tables differs from the seals (the seq and `data["state"]` of each event that has them,
    in order; the chain checked first), or None. An incident whose opening event carries no seals was opened by an
    ir before 0.3, which did not seal its state: there is nothing to check it against."""
    expected: dict[str, dict[str, tuple[int, str]]] = {"steps": {}, "variables": {}, "outbox": {}, "incident": {}}
    for seq, seals in sealed:
        if seq != 1 and not any(expected.values()):
            return None
        for section, entries in seals.items():
            expected[section].update((key, (seq, value)) for key, value in entries.items())
    if not any(expected.values()):
        return None
    actual = {"steps": {path: [step_digest(s)] for path, s in steps.items()},
              "variables": {variable_key(*key): [digest(value)] for key, value in variables.items()},
              "outbox": {item.key: _outbox_digests(item) for item in outbox},
              "incident": {name: [digest(value)] for name, value in asdict(incident).items() if name not in UNSEALED}}
    return next(_differences(expected, actual), None)


def _outbox_digests(item: OutboxItem) -> list[str]:
    """An action being sent was sealed with the undelivered status it had before (`begin` records no event)."""
    if item.status == "sending":
        return [outbox_digest(item, status) for status in UNDELIVERED]
    return [outbox_digest(item)]


_NAMES = {"steps": "step", "variables": "variable", "outbox": "outbox action", "incident": "incident field"}
_TABLES = {"steps": "steps", "variables": "variables", "outbox": "outbox", "incident": "incidents"}


def _differences(expected: dict[str, dict[str, tuple[int, str]]],
                 actual: dict[str, dict[str, list[str]]]) -> Iterator[str]:
    for section, rows in actual.items():
        name, table = _NAMES[section], _TABLES[section]
        for key, digests in rows.items():
            if key not in expected[section]:
                yield f"the {table} table holds {name} {key!r}, which no event recorded: it was added outside ir"
            elif expected[section][key][1] not in digests:
                yield (f"{name} {key!r} in the {table} table is not what event {expected[section][key][0]} "
                       f"recorded: it was edited outside ir")
        for key, (seq, _) in expected[section].items():
            if key not in rows:
                yield f"{name} {key!r}, recorded by event {seq}, is gone from the {table} table: it was deleted"
