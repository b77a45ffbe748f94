"""Exporting an incident: the post-incident report (Markdown, HTML) and its timeline (JSON, CSV, Timesketch).

Every format reads the incident once, then streams its events (those up to the head read with it, so an event
added meanwhile cannot make an export inconsistent) and writes as it goes. Output depends only on the store's
content and the display zone: the same incident exports byte-identical files. The JSON export carries the hash
chain and the playbooks, so `ir verify --file` checks it offline (ir.export.verify).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from ir.errors import IrError
from ir.export import html, markdown
from ir.export.report import build
from ir.sinks import csv_row
from ir.store.records import Incident, Store, events_to_head
from ir.store.timeline import Event, canonical_json, compact_json
from ir.tabletop import aar
from ir.times import EPOCH, moment

VERSION = "ir-export/1"
CSV_FIELDS = ("incident", "exercise", "seq", "occurred_at", "recorded_at", "actor", "kind", "phase", "step", "message",
              "data", "prev_hash", "hash")
# Values from an event's data that analysts filter on, as attributes of their own (empty when an event has none).
SKETCH_DATA = ("choice", "rationale", "integration", "action", "sha256", "source")
SKETCH_FIELDS = ("message", "datetime", "timestamp_desc", "timestamp", "incident", "exercise", "seq", "kind", "actor",
                 "phase", "step", *SKETCH_DATA, "occurred_at", "recorded_at", "data", "hash")

_EVENT_FIELDS = tuple(field.name for field in fields(Event))  # in the order of ir.store.timeline.Stored
Writer = Callable[[Store, Incident, TextIO, tzinfo], None]


def _cells(row: Sequence[Any], raw: bool) -> Sequence[Any]:
    """A CSV row; unless `raw`, a cell that a spreadsheet would run as a formula starts with `'`."""
    return row if raw else csv_row(row)


_dumps = canonical_json


def seal(head_hash: str, header: dict[str, Any]) -> str:
    """The JSON export's `head.incident`: the SHA-256 of the head hash and the `incident` member as canonical
    JSON, so that an edit of the incident's fields (its title, severity, status...) shows in `ir verify --file`."""
    return hashlib.sha256((head_hash + _dumps(header)).encode()).hexdigest()


def _markdown(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    markdown.render(build(incident, events_to_head(store, incident)), out, tz)


def _html(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    html.render(build(incident, events_to_head(store, incident)), out, tz)


def _json(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    """`format`, `incident`, `playbooks`, then the events one per line, then `head`: valid JSON, streamed."""
    header = {k: v for k, v in asdict(incident).items() if k not in ("head_hash", "event_count")}
    playbooks = {pid: text.decode("utf-8") for pid, text in store.bundle(incident.id).items()}
    out.write(f'{{"format":{_dumps(VERSION)},\n"incident":{_dumps(header)},\n"playbooks":{_dumps(playbooks)},\n'
              '"events":[')
    separator, names, loads = "\n", _EVENT_FIELDS, json.loads
    for stored in store.stored(incident.id, incident.event_count):
        event: dict[str, Any] = dict(zip(names, stored))
        event["data"] = loads(event["data"])  # parsed, so that only JSON reaches the file, whatever the store holds
        out.write(separator + _dumps(event))
        separator = ",\n"
    head = {"count": incident.event_count, "hash": incident.head_hash, "incident": seal(incident.head_hash, header)}
    out.write(f'\n],\n"head":{_dumps(head)}}}\n')


def _csv(store: Store, incident: Incident, out: TextIO, tz: tzinfo, raw: bool = False) -> None:
    """One row per event, the values as stored (`data` as JSON; a formula-like cell prefixed with `'` unless
    `raw`), each saying whether it is an exercise's."""
    writer = csv.writer(out, lineterminator="\n")  # it writes None as an empty cell
    writer.writerow(CSV_FIELDS)
    exercise = incident.exercise
    for who, seq, kind, occurred, recorded, actor, message, phase, step, data, prev, sealed in store.stored(
            incident.id, incident.event_count):
        writer.writerow(_cells((who, exercise, seq, occurred, recorded, actor, kind, phase, step, message, data, prev,
                                sealed), raw))


def _sketch(store: Store, incident: Incident, tz: tzinfo) -> Iterator[dict[str, Any]]:
    """Each event's Timesketch line: message, datetime with its offset, timestamp_desc, integer microseconds,
    attributes (an exercise's every line says so). The keys are in sorted order, so the line encoded as it is is
    canonical JSON."""
    exercise, loads, shown, wanted = incident.exercise, json.loads, frozenset(SKETCH_DATA), _SKETCHED

    @functools.lru_cache(maxsize=1024)  # events recorded together share their times
    def when(text: str) -> tuple[datetime, str, int]:
        found = moment(text)
        return found, found.astimezone(tz).isoformat(), (found - EPOCH) // _MICROSECOND

    for who, seq, kind, occurred_at, recorded_at, actor, message, phase, step, text, _, sealed in store.stored(
            incident.id, incident.event_count):
        data = loads(text) if wanted(text) else {}
        occurred, datetime_, timestamp = when(occurred_at)
        if kind == "imported":
            description = str(data.get("timestamp_desc") or "Event Time")
        else:
            same = occurred_at == recorded_at or occurred == when(recorded_at)[0]
            description = "Event Recorded" if same else "Event Occurred"
        where = f" {step}" if step else ""
        row = {"action": "", "actor": actor, "choice": "", "data": text, "datetime": datetime_, "exercise": exercise,
               "hash": sealed, "incident": who, "integration": "", "kind": kind,
               "message": f"{kind}{where}: {message}" if message else f"{kind}{where}", "occurred_at": occurred_at,
               "phase": phase or "", "rationale": "", "recorded_at": recorded_at, "seq": seq, "sha256": "",
               "source": "", "step": step or "", "timestamp": timestamp, "timestamp_desc": description}
        for name, value in data.items():
            if name in shown and isinstance(value, (str, int, float, bool)):
                row[name] = value
        yield row


_MICROSECOND = timedelta(microseconds=1)
# Whether an event's data (canonical JSON, which writes these names as they are) may hold a value a Timesketch line
# shows: most events' data is not parsed at all.
_SKETCHED = re.compile(f'"(?:{"|".join((*SKETCH_DATA, "timestamp_desc"))})":').search
_line = compact_json(sort_keys=False)  # canonical_json without the sorting


def _sketch_jsonl(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    for row in _sketch(store, incident, tz):
        out.write(_line(row) + "\n")


def _sketch_csv(store: Store, incident: Incident, out: TextIO, tz: tzinfo, raw: bool = False) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SKETCH_FIELDS)
    cells = operator.itemgetter(*SKETCH_FIELDS)
    for row in _sketch(store, incident, tz):
        writer.writerow(_cells(cells(row), raw))


def _aar(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    aar.write(store, incident, out, tz)


FORMATS: dict[str, Writer] = {"markdown": _markdown, "html": _html, "json": _json, "csv": _csv,
                              "timesketch-jsonl": _sketch_jsonl, "timesketch-csv": _sketch_csv, "aar": _aar}


CSV_FORMATS = {"csv": _csv, "timesketch-csv": _sketch_csv}


def export(store: Store, incident_id: str, fmt: str, out: TextIO, tz: tzinfo, *, raw: bool = False) -> Incident:
    """Write the export; `raw` keeps CSV cells that start like a spreadsheet formula as they are."""
    incident = store.incident(incident_id)
    if fmt in CSV_FORMATS:
        CSV_FORMATS[fmt](store, incident, out, tz, raw)
    else:
        FORMATS[fmt](store, incident, out, tz)
    return incident


def export_file(store: Store, incident_id: str, fmt: str, path: Path, tz: tzinfo, *, raw: bool = False) -> Incident:
    """Write the export to `path` (private, 0600) through a temporary file: a failed export leaves no half file."""
    path = path.expanduser()
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise IrError(f"{path}: cannot write it ({exc.strerror})", hint="check the folder exists and is writable") \
            from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            incident = export(store, incident_id, fmt, out, tz, raw=raw)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return incident
