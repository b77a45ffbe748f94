"""`ir verify --file`: a JSON export (`ir export --format json`) checked offline. The hash chain is recomputed
event by event (ir.store.timeline.verify) against the head the export records, every event must be of the exported
incident, the incident's fields must match the seal in the head (ir.export.formats.seal), and the playbooks it
carries must hash to what the incident opened with.

The file is read once, a member at a time and the events one by one: the chain is checked as the events are read,
and compared with the head (which follows them) at the end; so an export of any size is checked in little memory,
whatever its layout or white space.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ir.errors import IrError
from ir.export.formats import VERSION, seal
from ir.store.header import HEADER_KINDS, from_events, header_problem
from ir.store.records import Incident
from ir.store.timeline import GENESIS, Event, canonical_json, ends_at, verify_links

CHUNK = 1 << 16
_SPACE = re.compile(r"[ \t\n\r]*")
_BETWEEN = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")  # between an array's items, or after the last
_HINT = "give the file `ir export --format json` wrote"


@dataclass(frozen=True)
class Checked:
    """What `ir verify --file` found."""

    incident: str
    count: int
    head: str
    problem: str | None


class Members:
    """One JSON object read from a text stream member by member, its `events` array item by item."""

    def __init__(self, stream: TextIO, chunk: int = CHUNK):
        self.stream, self.chunk, self.buffer, self.pos = stream, chunk, "", 0
        self.decoder = json.JSONDecoder(object_pairs_hook=_unique)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for each member; the value of `events` is an iterator, to be used up before the next."""
        self._expect("{")
        if self._next() == "}":
            return
        seen: set[str] = set()
        while True:
            name = self._value()
            if not isinstance(name, str):
                raise ValueError("a member name is not a string")
            if name in seen:  # a last-wins reader would see a second one, this check the first
                raise ValueError(f"the member {name!r} is there twice")
            seen.add(name)
            self._expect(":")
            yield name, (self._array() if name == "events" else self._value())
            if self._expect(",}") == "}":
                return

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        if self._next() == "]":
            self.pos += 1
            return
        decode, between = self.decoder.raw_decode, _BETWEEN.match
        while True:
            try:  # most often the item is all there, at the position
                value, end = decode(self.buffer, self.pos)
            except json.JSONDecodeError:  # white space first, cut by the chunk's end, or not JSON: read it as any value
                value, end = self._value(), -1
            if end == len(self.buffer):  # a number may go on in the next chunk
                value = self._value()
            elif end > 0:
                self.pos = end
            yield value
            found = between(self.buffer, self.pos)  # most often all there, with the next item's start after it
            if found is None or found.end() == len(self.buffer):
                if self._expect(",]") == "]":
                    return
            elif found.group(1) == "]":
                self.pos = found.end(1)
                return
            else:
                self.pos = found.end()

    def _more(self) -> bool:
        chunk = self.stream.read(self.chunk)
        self.buffer, self.pos = self.buffer[self.pos:] + chunk, 0
        return bool(chunk)

    def _next(self) -> str:
        """The next character that is not white space, not consumed ("" at the end)."""
        while True:
            self.pos = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer) or not self._more():
                return self.buffer[self.pos:self.pos + 1]

    def _expect(self, allowed: str) -> str:
        found = self._next()
        if not found or found not in allowed:
            raise ValueError(f"expected {' or '.join(map(repr, allowed))}, found {found or 'the end'!r}")
        self.pos += 1
        return found

    def _value(self) -> Any:
        self._next()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():  # the value goes on in the next chunk
                    continue
                raise ValueError(exc.msg) from None
            if end == len(self.buffer) and self._more():  # a number may, too
                continue
            self.pos = end
            return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):  # a name is there twice: which one
        names = [name for name, _ in pairs]
        twice = next(name for n, name in enumerate(names) if name in names[:n])
        raise ValueError(f"the member {twice!r} is there twice in one object")
    return out


_EVENT_TYPES: dict[str, type | tuple[type, ...]] = {
    "incident": str, "seq": int, "kind": str, "occurred_at": str, "recorded_at": str, "actor": str, "message": str,
    "phase": (str, type(None)), "step": (str, type(None)), "data": dict, "prev_hash": str, "hash": str}


_FIELDS = tuple(sorted(_EVENT_TYPES))  # an event as `ir export` writes it: canonical JSON, its keys sorted
_SHAPES = frozenset(tuple({"phase": phase, "step": step}.get(name, _EVENT_TYPES[name]) for name in _FIELDS)
                    for phase in (str, type(None)) for step in (str, type(None)))  # each value's exact type


@dataclass
class _Chain:
    """The export's events as links to verify (ir.store.timeline.verify_links), noting the first one, the last
    hash, how many, and the first of an incident other than the first event's."""

    path: Path
    first: Event | None = None
    stranger: Event | None = None
    header: dict[str, Any] = field(default_factory=dict)  # the incident's fields as its events set them
    last: str = GENESIS
    count: int = 0

    def links(self, items: Iterator[Any]) -> Iterator[tuple[int, str, str, str]]:
        fields, shapes, encode, sha256 = _FIELDS, _SHAPES, canonical_json, hashlib.sha256
        for item in items:
            if isinstance(item, dict) and tuple(item) == fields and tuple(map(type, item.values())) in shapes:
                # the form ir writes, every value of its type (the parser makes no subclasses): hashed as it is
                sealed = item.pop("hash")
                actual = sha256(encode(item).encode()).hexdigest()
                if item["kind"] in HEADER_KINDS or self.first is None or (
                        item["incident"] != self.first.incident and self.stranger is None):
                    self._note(Event(**item, hash=sealed))
            else:
                event = self._event(item)
                sealed, actual = event.hash, event.digest()
                self._note(event)
            self.last, self.count = sealed, self.count + 1
            yield item["seq"], item["prev_hash"], sealed, actual

    def _event(self, item: Any) -> Event:
        try:
            event = Event(**item)
        except TypeError as exc:
            raise IrError(f"{self.path}: event {self.count + 1} is not an event ({exc})", hint=_HINT) from None
        wrong = next((name for name, types in _EVENT_TYPES.items()
                      if not isinstance(getattr(event, name), types) or isinstance(getattr(event, name), bool)), None)
        if wrong:
            raise IrError(f"{self.path}: event {self.count + 1} is not an event (its {wrong} is "
                          f"{type(getattr(event, wrong)).__name__})", hint=_HINT)
        return event

    def _note(self, event: Event) -> None:
        if event.kind in HEADER_KINDS:  # folded in as they come: an input.set every few events adds up
            self.header = from_events([event], self.header)
        if self.first is None:
            self.first = event
        elif event.incident != self.first.incident and self.stranger is None:
            self.stranger = event


def check_file(path: Path) -> Checked:
    from ir.format.bundle import bundle_hash  # with the playbook models: not needed to read the events

    header: dict[str, Any] = {}
    chain, broken = _Chain(path), None
    with _reading(path) as members:  # one pass: the chain is checked as it is read, the head compared after it
        for name, value in members.items():
            if name == "events":
                if "format" in header:
                    _format(path, header)
                stream = chain.links(value)
                broken = verify_links(stream)
                for _ in stream:  # a broken chain stops the check; the members after the events are still read
                    pass
            else:
                header[name] = value
    _format(path, header)
    try:
        incident_id, recorded = str(header["incident"]["id"]), header["incident"]["playbook_hash"]
        head, count = header["head"]["hash"], header["head"]["count"]
        playbooks = {pid: text.encode() for pid, text in header["playbooks"].items()}
        if not (isinstance(head, str) and isinstance(count, int) and not isinstance(count, bool)
                and isinstance(header["incident"], dict)):
            raise TypeError("head.hash is not text, head.count not a whole number, or incident not an object")
    except (KeyError, TypeError, AttributeError) as exc:
        raise IrError(f"{path}: not a complete ir export ({type(exc).__name__}: {exc})",
                      hint="validate it against runner/schemas/export.schema.json") from None
    broken = broken or ends_at((head, count), chain.last, chain.count)
    problem = str(broken) if broken else None
    stranger = chain.first if chain.first and chain.first.incident != incident_id else chain.stranger
    if problem is None and stranger:
        problem = f"event {stranger.seq} belongs to {stranger.incident}, the export is of {incident_id}"
    sealed = header["head"].get("incident")  # an optional member of ir-export/1: older exports have none
    if problem is None and sealed is not None and sealed != seal(head, header["incident"]):
        problem = "the incident's fields (title, severity, status...) were edited: they do not match head.incident"
    if problem is None:
        try:
            problem = header_problem(Incident(**header["incident"]), chain.header)
        except TypeError as exc:
            raise IrError(f"{path}: the incident member is not an incident ({exc})", hint=_HINT) from None
    opened = chain.first.data.get("hash") if chain.first and chain.first.kind == "incident.opened" else None
    actual = bundle_hash(playbooks)
    if problem is None and not actual == recorded == opened:
        problem = (f"the playbooks in the export hash to {actual[:12]}…, the incident opened with {str(opened)[:12]}… "
                   f"(header: {str(recorded)[:12]}…): a playbook was changed")
    return Checked(incident_id, count, head, problem)


def _format(path: Path, header: dict[str, Any]) -> None:
    if header.get("format") != VERSION:
        raise IrError(f"{path}: not an ir export (format {header.get('format')!r}, expected {VERSION!r})", hint=_HINT)


@contextmanager
def _reading(path: Path) -> Iterator[Members]:
    try:
        with path.open(encoding="utf-8") as stream:
            yield Members(stream)
    except OSError as exc:
        raise IrError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:  # UnicodeDecodeError, too
        raise IrError(f"{path}: not valid JSON ({exc})", hint=_HINT) from None
