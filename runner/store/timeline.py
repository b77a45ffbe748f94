"""Timeline events and their hash chain.

Each event's hash is SHA-256 over a canonical encoding (JSON, sorted keys, no spaces, UTF-8) of all its fields
and the previous event's hash, so altering, inserting or removing an event breaks the chain from there on.
The incident also records the head (last hash and count), which catches removal of the newest events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# An event as the store keeps it: Event's fields in order, with `data` as its canonical JSON text.
Stored = tuple[str, int, str, str, str, str, str, str | None, str | None, str, str, str]

KINDS = (
    "incident.opened", "incident.resumed", "incident.paused", "incident.closed", "incident.discarded",
    "incident.updated",
    "input.set", "input.corrected", "role.assigned", "severity.changed",
    "step.started", "step.completed", "step.skipped", "step.failed", "step.passed", "checklist.checked",
    "decision", "note", "evidence", "milestone",
    "integration.requested", "integration.done", "integration.failed", "integration.dry_run", "integration.retry",
    "integration.skipped", "integration.amended",
    "imported", "inject", "observation", "hotwash", "corrective_action",
)


def compact_json(*, sort_keys: bool) -> Callable[[Any], str]:
    """JSON with no spaces, UTF-8 kept as such: the C encoder made once. `JSONEncoder.encode` makes a new one (and
    a closure) at every call, which costs as much as encoding a small event. No check for circular data (that
    recursion ends in a RecursionError): what ir encodes is parsed JSON or its own records."""
    options = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)  # not in the type stubs
    if make is None:  # an interpreter without the json module's C part
        return options.encode
    encode = make(None, options.default, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, True)
    return lambda value: "".join(encode(value, 0))


# Sorted keys: what an event's hash is computed over.
canonical_json = compact_json(sort_keys=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_recorded(moment: datetime) -> str:
    """recorded_at: UTC with milliseconds, `2026-11-22T22:15:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    incident: str
    seq: int
    kind: str
    occurred_at: str  # ISO 8601 with the offset it was given in
    recorded_at: str  # UTC, milliseconds
    actor: str
    message: str = ""
    phase: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def canonical(self) -> bytes:
        return canonical_json(self.as_dict(hashed=False)).encode()

    def digest(self) -> str:
        """The hash this event should carry."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def sealed(self) -> Event:
        return Event(self.incident, self.seq, self.kind, self.occurred_at, self.recorded_at, self.actor, self.message,
                     self.phase, self.step, self.data, self.prev_hash, self.digest())

    def as_dict(self, *, hashed: bool = True) -> dict[str, Any]:
        """The fields, in order (`data` is the event's own dict, not a copy: dataclasses.asdict's deep copy cost
        more than hashing the event)."""
        out = {"incident": self.incident, "seq": self.seq, "kind": self.kind, "occurred_at": self.occurred_at,
               "recorded_at": self.recorded_at, "actor": self.actor, "message": self.message, "phase": self.phase,
               "step": self.step, "data": self.data, "prev_hash": self.prev_hash}
        if hashed:
            out["hash"] = self.hash
        return out


def seal(incident: str, seq: int, kind: str, occurred_at: str, recorded_at: str, actor: str, message: str,
         phase: str | None, step: str | None, data: dict[str, Any], prev_hash: str) -> tuple[str, str]:
    """A new event's hash (what `Event(...).sealed()` gives it) and its data as canonical JSON, encoded once for
    both: the store appends many events at a time and encoding is most of the cost."""
    text = canonical_json(data)
    return digest_of(incident, seq, kind, occurred_at, recorded_at, actor, message, phase, step, text, prev_hash), text


def digest_of(incident: str, seq: int, kind: str, occurred_at: str, recorded_at: str, actor: str, message: str,
              phase: str | None, step: str | None, data_text: str, prev_hash: str) -> str:
    """The hash of an event whose data is given as canonical JSON text: the canonical text of the other fields
    with `"data":...` spliced in after `actor`, the one key that sorts before it. Written out in key order, each
    text as the JSON encoder writes it, when every field is of its type (else encoded as a dict)."""
    if seq.__class__ is int:
        try:
            return _sha256((f'{{"actor":{_text(actor)},"data":{data_text},"incident":{_text(incident)},"kind":'
                            f'{_text(kind)},"message":{_text(message)},"occurred_at":{_text(occurred_at)},"phase":'
                            f'{"null" if phase is None else _text(phase)},"prev_hash":{_text(prev_hash)},'
                            f'"recorded_at":{_text(recorded_at)},"seq":{seq},"step":'
                            f'{"null" if step is None else _text(step)}}}').encode()).hexdigest()
        except TypeError:  # a field that is not text
            pass
    rest = canonical_json({"incident": incident, "seq": seq, "kind": kind, "occurred_at": occurred_at,
                           "recorded_at": recorded_at, "actor": actor, "message": message, "phase": phase,
                           "step": step, "prev_hash": prev_hash})
    cut = len('{"actor":') + len(canonical_json(actor))
    return _sha256(f'{rest[:cut]},"data":{data_text}{rest[cut:]}'.encode()).hexdigest()


_sha256 = hashlib.sha256
_text = json.encoder.encode_basestring  # a str as canonical_json writes it (ensure_ascii=False): quoted, escaped


@dataclass(frozen=True)
class Broken:
    """Where a chain stops verifying, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.reason}"


def verify(events: Iterable[Event], head: tuple[str, int] | None = None) -> Broken | None:
    """The first place where the chain breaks, or None. `head` is the (hash, count) the incident recorded."""
    return verify_links(((e.seq, e.prev_hash, e.hash, e.digest()) for e in events), head)


def verify_links(links: Iterable[tuple[int, str, str, str]], head: tuple[str, int] | None = None) -> Broken | None:
    """`verify` over each event's (seq, prev_hash, hash, the hash its content gives), as a store can read them
    without making Events."""
    prev, expected_seq, count = GENESIS, 1, 0
    for seq, prev_hash, recorded, actual in links:
        count += 1
        if seq != expected_seq:
            return Broken(expected_seq, f"missing (found event {seq} next): events were removed or renumbered")
        if prev_hash != prev:
            return Broken(seq, "does not follow the event before it: an event was inserted or removed here")
        if actual != recorded:
            return Broken(seq, "was altered after it was recorded (its hash does not match its content)")
        prev, expected_seq = recorded, expected_seq + 1
    return ends_at(head, prev, count) if head is not None else None


def ends_at(head: tuple[str, int], last: str, count: int) -> Broken | None:
    """Whether a chain of `count` events whose last hash is `last` ends at the recorded `head` (hash, count)."""
    if (last, count) == head:
        return None
    return Broken(count + 1 if count < head[1] else count,
                  f"the incident recorded {head[1]} events ending in {head[0][:12]}…, the timeline has {count} "
                  f"ending in {last[:12]}…: events were removed from the end or the head was changed")
