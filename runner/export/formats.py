"""Exporting an incident: the post-incident report (Markdown, HTML) and its timeline (JSON, CSV, Timesketch).

Every format reads the incident once, then streams its events (those up to the head read with it, so an event
added meanwhile cannot make an export inconsistent) and writes as it goes. Output depends only on the store's
content and the display zone: the same incident exports byte-identical files. The JSON export carries the hash
chain and the playbooks, so `ir verify --file` checks it offline (ir.export.verify).
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from ir.errors import IrError
from ir.export import html, markdown
from ir.export.report import build
from ir.sinks import csv_cell
from ir.store.records import Incident, Store, events_to_head
from ir.store.timeline import Event, canonical_json
from ir.tabletop import aar
from ir.times import EPOCH, moment

VERSION = "ir-export/1"
CSV_FIELDS = ("incident", "exercise", "seq", "occurred_at", "recorded_at", "actor", "kind", "phase", "step", "message",
              "data", "prev_hash", "hash")
# Values from an event's data that analysts filter on, as attributes of their own (empty when an event has none).
SKETCH_DATA = ("choice", "rationale", "integration", "action", "sha256", "source")
SKETCH_FIELDS = ("message", "datetime", "timestamp_desc", "timestamp", "incident", "exercise", "seq", "kind", "actor",
                 "phase", "step", *SKETCH_DATA, "occurred_at", "recorded_at", "data", "hash")

Writer = Callable[[Store, Incident, TextIO, tzinfo], None]


def _cells(row: list[Any], raw: bool) -> list[Any]:
    """A CSV row; unless `raw`, a cell that a spreadsheet would run as a formula starts with `'`."""
    return row if raw else [csv_cell(cell) for cell in row]


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
    separator = "\n"
    for event in events_to_head(store, incident):
        out.write(separator + _dumps(event.as_dict()))
        separator = ",\n"
    head = {"count": incident.event_count, "hash": incident.head_hash, "incident": seal(incident.head_hash, header)}
    out.write(f'\n],\n"head":{_dumps(head)}}}\n')


def _csv(store: Store, incident: Incident, out: TextIO, tz: tzinfo, raw: bool = False) -> None:
    """One row per event, the values as stored (`data` as JSON; a formula-like cell prefixed with `'` unless
    `raw`), each saying whether it is an exercise's."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for event in events_to_head(store, incident):
        row = event.as_dict() | {"data": _dumps(event.data), "exercise": incident.exercise}
        writer.writerow(_cells(["" if row[name] is None else row[name] for name in CSV_FIELDS], raw))


def sketch_row(event: Event, tz: tzinfo, exercise: bool) -> dict[str, Any]:
    """A Timesketch line: message, datetime with its offset, timestamp_desc, integer microseconds, attributes
    (an exercise's every line says so)."""
    occurred, data = moment(event.occurred_at), event.data
    where = f" {event.step}" if event.step else ""
    if event.kind == "imported":
        description = str(data.get("timestamp_desc") or "Event Time")
    else:
        same = event.occurred_at == event.recorded_at or occurred == moment(event.recorded_at)
        description = "Event Recorded" if same else "Event Occurred"
    row = {"message": f"{event.kind}{where}: {event.message}" if event.message else f"{event.kind}{where}",
           "datetime": occurred.astimezone(tz).isoformat(), "timestamp_desc": description,
           "timestamp": (occurred - EPOCH) // _MICROSECOND, "incident": event.incident,
           "exercise": exercise, "seq": event.seq, "kind": event.kind, "actor": event.actor,
           "phase": event.phase or "", "step": event.step or ""}
    for name in SKETCH_DATA:
        value = data.get(name)
        row[name] = value if isinstance(value, (str, int, float, bool)) else ""
    row.update(occurred_at=event.occurred_at, recorded_at=event.recorded_at, data=_dumps(data), hash=event.hash)
    return row


_MICROSECOND = timedelta(microseconds=1)


def _sketch_jsonl(store: Store, incident: Incident, out: TextIO, tz: tzinfo) -> None:
    for event in events_to_head(store, incident):
        out.write(_dumps(sketch_row(event, tz, incident.exercise)) + "\n")


def _sketch_csv(store: Store, incident: Incident, out: TextIO, tz: tzinfo, raw: bool = False) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SKETCH_FIELDS)
    for event in events_to_head(store, incident):
        row = sketch_row(event, tz, incident.exercise)
        writer.writerow(_cells([row[name] for name in SKETCH_FIELDS], raw))


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
