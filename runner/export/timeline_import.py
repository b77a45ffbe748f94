"""`ir timeline INCIDENT --import FILE`: events made elsewhere (an EDR's export, notes kept on paper) added to an
incident's timeline, so that the review has one timeline.

A file is CSV with a header row, or JSONL (one JSON object a line, as Timesketch reads them). Each row needs a
`message` and a time: `datetime` (ISO 8601 with an offset, or a date and time followed by an IANA zone name) or
`timestamp` (integer microseconds since the epoch). `timestamp_desc` and `actor` are kept as such; every other
column goes into the event's `data.fields`. A time without a zone is refused unless a zone is given.

Every row is checked before anything is written: a file with a bad row changes nothing. The file is read once, a
row at a time, each row kept as checked; then they are all added in one transaction (every row or none), made
into events one at a time. Memory grows with the rows, a few hundred bytes each.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from ir.errors import IrError
from ir.store.records import Draft, Store
from ir.times import EPOCH, aware, moment, parse_time

KNOWN = frozenset(("datetime", "timestamp", "message", "timestamp_desc", "actor"))
SHOWN = 20  # problems listed; the rest are counted
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def import_file(store: Store, incident_id: str, path: Path, *, source: str | None, tz: tzinfo | None,
                actor: str) -> tuple[int, int, int]:
    """Check every row of `path`, then append them as `imported` events; returns how many, and the first and
    last event numbers."""
    store.incident(incident_id)
    source = source or path.name
    problems: list[str] = []
    rows: list[Row] = []
    for item in _rows(path, tz):
        if isinstance(item, str):
            problems.append(item)
            rows.clear()
        elif not problems:
            rows.append(item)
    if problems:
        shown = problems[:SHOWN] + ([f"... and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else [])
        raise IrError(f"{path}: {len(problems)} bad row(s), nothing was imported:\n" + "\n".join(shown),
                      hint="fix the rows listed and import the file again")
    if not rows:
        raise IrError(f"{path}: no rows to import", hint="a CSV file needs a header row and at least one row")
    drafts = (Draft("imported", by or actor, message, occurred_at=occurred,
                    data={"source": source, "line": line, "fields": fields} | (
                        {"timestamp_desc": description} if description else {}))
              for line, occurred, message, by, description, fields in rows)
    last = store.record(incident_id, drafts).seq  # one transaction: every row or none, made events one by one
    return len(rows), last - len(rows) + 1, last


# A checked row: its line, its time (ISO 8601 with its offset), message, actor, timestamp_desc, the other columns.
# A tuple of text and a dict of text, which the garbage collector soon stops tracking: a large file's rows cost it
# nothing while they wait for the transaction.
Row = tuple[int, str, str, str | None, str | None, dict[str, Any]]


def _rows(path: Path, tz: tzinfo | None) -> Iterator[Row | str]:
    """Each row of the file, checked, or a problem (`file:line: what`)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise IrError(f"{path}: cannot tell its format from the name",
                      hint="name a CSV file *.csv and a JSON-lines file *.jsonl")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            records = _csv(path, fh) if kind == "csv" else _jsonl(path, fh)
            for line, record, fields in records:
                if isinstance(record, str):
                    yield f"{path}:{line}: {record}"
                    continue
                try:
                    yield _row(line, record, fields, tz)
                except ValueError as exc:
                    yield f"{path}:{line}: {exc}"
    except OSError as exc:
        raise IrError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise IrError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                      hint="save the file as UTF-8") from None


# What a reader gives for each row: its line, its values by column (or the problem with it), the columns other than
# KNOWN.
Record = tuple[int, dict[str, Any] | str, dict[str, Any]]


def _csv(path: Path, fh: Any) -> Iterator[Record]:
    reader = csv.reader(fh, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        missing = [n for n in ("message",) if n not in names]
        if "datetime" not in names and "timestamp" not in names:
            missing.append("datetime (or timestamp)")
        doubled = sorted({n for n in names if names.count(n) > 1})
        if missing or doubled or "" in names:
            what = (f"the header lacks {', '.join(missing)}" if missing else
                    f"the header names {', '.join(doubled)} twice" if doubled else "the header has an empty name")
            raise IrError(f"{path}:1: {what}", hint="the first row names the columns: datetime,message,...")
        end, others = reader.line_num, [(n, i) for i, n in enumerate(names) if n not in KNOWN]
        for values in reader:
            line, end = end + 1, reader.line_num
            if not values:
                continue
            if len(values) != len(names):
                yield line, f"{len(values)} values, the header has {len(names)} columns", {}
            else:
                yield line, dict(zip(names, values)), {n: values[i] for n, i in others}
    except csv.Error as exc:
        raise IrError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None


def _jsonl(path: Path, fh: Any) -> Iterator[Record]:
    for line, text in enumerate(fh, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, f"not valid JSON ({exc.msg} at column {exc.colno})", {}
            continue
        if not isinstance(record, dict):
            yield line, "not a JSON object", {}
        else:
            yield line, _unicode(text, record) or record, {k: v for k, v in record.items() if k not in KNOWN}


def _unicode(text: str, record: Any) -> str | None:
    """Why a JSON line's values are not text that can be stored, or None. Only an escape (`"\\ud800"`) can make a
    lone surrogate: a line read as UTF-8 holds none as such (and a CSV file's values are such text)."""
    if "\\u" not in text:
        return None
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate ({exc.object[exc.start:exc.end]!a}) is not text"
    return None


_TEXT = (str, type(None))


def _row(line: int, record: dict[str, Any], fields: dict[str, Any], tz: tzinfo | None) -> Row:
    message = record.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValueError("`message` is missing or empty")
    by, description = record.get("actor"), record.get("timestamp_desc")
    if not (isinstance(by, _TEXT) and isinstance(description, _TEXT)):
        raise ValueError(f"`{'actor' if not isinstance(by, _TEXT) else 'timestamp_desc'}` must be text")
    return line, _time(record, tz).isoformat(), message, by or None, description or None, fields


def _time(record: dict[str, Any], tz: tzinfo | None) -> datetime:
    text, micros = record.get("datetime"), record.get("timestamp")
    if text not in (None, ""):
        if not isinstance(text, str):
            raise ValueError("`datetime` must be text, e.g. 2026-03-29T14:02:00-07:00")
        return _aware(text, tz)
    if micros in (None, ""):
        raise ValueError("no time: give `datetime` (ISO 8601 with an offset) or `timestamp` (microseconds)")
    if isinstance(micros, bool) or not isinstance(micros, (int, str)) or not str(micros).lstrip("-").isdigit():
        raise ValueError(f"`timestamp` {micros!r} is not a whole number of microseconds since 1970")
    try:
        return EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise ValueError(f"`timestamp` {micros} is out of range") from None


def _aware(text: str, tz: tzinfo | None) -> datetime:
    try:
        found = moment(text.strip())
    except ValueError:
        found = parse_time(text)  # `2026-03-29 14:02 America/Los_Angeles`; else its ValueError says why
    if found.tzinfo is None and tz is None:
        raise ValueError(f"`datetime` {text!r} has no time zone; add an offset (2026-03-29T14:02:00-07:00) "
                         "or give --tz")
    out = aware(found, tz)
    if 1 < out.year < 9999:  # an offset is less than a day: only a time in the first or last year can be outside
        return out
    try:
        _ = out.astimezone(UTC) - EPOCH  # every export shows it in UTC, or as microseconds since 1970
    except OverflowError:
        raise ValueError(f"`datetime` {text!r} is outside the years 1 to 9999 (UTC) that exports can show") from None
    return out
