"""`ir timeline INCIDENT --import FILE`: events made elsewhere join the incident's timeline, each checked and marked
with its source; a file with one bad row changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from runs import incident_id, install_demo, timeline

EDR_CSV = """\
datetime,message,actor,host,process
2026-03-29T14:30:00-07:00,Beacon to 3cx-update.example,CrowdStrike,WS-042,3CXDesktopApp.exe
2026-03-29T21:45:10.250+00:00,"Second stage, written to disk",,WS-042,"ffmpeg.dll"
2026-03-30 09:00 Europe/Berlin,Host isolated,,WS-042,
"""


@pytest.fixture
def incident(run_ir, isolated: Path) -> str:
    install_demo(isolated)
    result = run_ir("run", "demo", "--dry-run", "--non-interactive")
    assert result.returncode == 0, result.stderr
    return incident_id(result)


def test_a_csv_file_is_imported_row_by_row_with_its_source_and_line(run_ir, incident, isolated):
    (isolated / "edr.csv").write_text(EDR_CSV)
    before = timeline(run_ir, incident)
    result = run_ir("timeline", incident, "--import", "edr.csv", "--source", "CrowdStrike Falcon")
    assert result.returncode == 0, result.stderr
    n = len(before)
    assert result.stdout == f"{incident}: 3 events imported from edr.csv as events {n + 1} to {n + 3}\n"
    added = timeline(run_ir, incident)[n:]
    assert [(e["kind"], e["actor"], e["occurred_at"], e["message"], e["phase"], e["step"]) for e in added] == [
        ("imported", "CrowdStrike", "2026-03-29T14:30:00-07:00", "Beacon to 3cx-update.example", None, None),
        ("imported", "tester", "2026-03-29T21:45:10.250000+00:00", "Second stage, written to disk", None, None),
        ("imported", "tester", "2026-03-30T09:00:00+02:00", "Host isolated", None, None),
    ]
    assert [e["data"] for e in added] == [
        {"source": "CrowdStrike Falcon", "line": 2, "fields": {"host": "WS-042", "process": "3CXDesktopApp.exe"}},
        {"source": "CrowdStrike Falcon", "line": 3, "fields": {"host": "WS-042", "process": "ffmpeg.dll"}},
        {"source": "CrowdStrike Falcon", "line": 4, "fields": {"host": "WS-042", "process": ""}},
    ]
    assert run_ir("verify", incident).returncode == 0
    report = run_ir("export", incident).stdout.splitlines()
    assert f"| {n + 1} | 2026-03-29 21:30:00 UTC (recorded " in "\n".join(report)
    assert any(line.endswith(" |  |  | imported from CrowdStrike Falcon (line 2): Beacon to 3cx-update.example | "
                             "CrowdStrike |") for line in report)
    assert "| CrowdStrike Falcon | 3 | 2026-03-29 21:30:00 UTC | 2026-03-30 07:00:00 UTC |" in report


def test_a_jsonl_file_in_timesketch_form_keeps_its_timestamp_desc(run_ir, incident, isolated):
    lines = [{"message": "Logon from 203.0.113.7", "timestamp": 1680123720000000, "timestamp_desc": "Logon Time",
              "user": "jdoe", "event_id": 4624},
             {"message": "Paper note: phoned the vendor", "datetime": "2026-03-30T08:15:00+01:00"}]
    (isolated / "notes.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    result = run_ir("timeline", incident, "--import", "notes.jsonl", "--as", "Dana Reyes")
    assert result.returncode == 0, result.stderr
    added = timeline(run_ir, incident)[-2:]
    assert [(e["occurred_at"], e["actor"], e["data"]) for e in added] == [
        ("2023-03-29T21:02:00+00:00", "Dana Reyes", {"source": "notes.jsonl", "line": 1, "timestamp_desc": "Logon Time",
                                                     "fields": {"user": "jdoe", "event_id": 4624}}),
        ("2026-03-30T08:15:00+01:00", "Dana Reyes", {"source": "notes.jsonl", "line": 2, "fields": {}}),
    ]
    sketch = [json.loads(line) for line in run_ir("export", incident, "-f", "timesketch-jsonl").stdout.splitlines()]
    assert (sketch[-2]["timestamp_desc"], sketch[-2]["timestamp"]) == ("Logon Time", 1680123720000000)


def test_a_bad_row_is_named_with_its_line_and_nothing_is_written(run_ir, incident, isolated):
    (isolated / "edr.csv").write_text(EDR_CSV + "2026-03-31 10:00,no zone here,,,\n,no time,,,\n"
                                      "2026-03-31T10:00:00Z,,,,\n2026-03-31T10:00:00Z,too many,,,,\n")
    before = timeline(run_ir, incident)
    result = run_ir("timeline", incident, "--import", "edr.csv")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: edr.csv: 4 bad row(s), nothing was imported:\n"
        "edr.csv:5: `datetime` '2026-03-31 10:00' has no time zone; add an offset (2026-03-29T14:02:00-07:00) or "
        "give --tz\n"
        "edr.csv:6: no time: give `datetime` (ISO 8601 with an offset) or `timestamp` (microseconds)\n"
        "edr.csv:7: `message` is missing or empty\n"
        "edr.csv:8: 6 values, the header has 5 columns\n"
        "  fix: fix the rows listed and import the file again\n")
    assert timeline(run_ir, incident) == before


def test_tz_gives_times_without_a_zone_their_zone(run_ir, incident, isolated):
    (isolated / "paper.csv").write_text("datetime,message\n2026-03-29 14:02,first call from the SOC\n")
    result = run_ir("timeline", incident, "--import", "paper.csv", "--tz", "America/Los_Angeles")
    assert result.returncode == 0, result.stderr
    assert timeline(run_ir, incident)[-1]["occurred_at"] == "2026-03-29T14:02:00-07:00"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.csv", "when,what\n2026-03-29T14:02:00Z,x\n", "a.csv:1: the header lacks message, datetime (or timestamp)\n"
                                                     "  fix: the first row names the columns: datetime,message,..."),
    ("a.jsonl", '{"message": "x", "timestamp": "soon"}\n[1]\n{"message": "x", "datetime": 5}\n',
     "a.jsonl: 3 bad row(s), nothing was imported:\n"
     "a.jsonl:1: `timestamp` 'soon' is not a whole number of microseconds since 1970\n"
     "a.jsonl:2: not a JSON object\n"
     "a.jsonl:3: `datetime` must be text, e.g. 2026-03-29T14:02:00-07:00\n"
     "  fix: fix the rows listed and import the file again"),
    ("a.txt", "x\n", "a.txt: cannot tell its format from the name\n"
                     "  fix: name a CSV file *.csv and a JSON-lines file *.jsonl"),
    ("a.csv", "datetime,message\n", "a.csv: no rows to import\n"
                                    "  fix: a CSV file needs a header row and at least one row"),
])
def test_files_that_cannot_be_imported(run_ir, incident, isolated, name, text, message):
    (isolated / name).write_text(text)
    before = timeline(run_ir, incident)
    result = run_ir("timeline", incident, "--import", name)
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    assert timeline(run_ir, incident) == before


def test_one_incident_timesketch_export_imports_into_another(run_ir, incident, isolated):
    (isolated / "a.jsonl").write_text(run_ir("export", incident, "-f", "timesketch-jsonl").stdout)
    other = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive"))
    result = run_ir("timeline", other, "--import", "a.jsonl", "--source", incident)
    assert result.returncode == 0, result.stderr
    source, copied = timeline(run_ir, incident), timeline(run_ir, other)[-len(timeline(run_ir, incident)):]
    # the same moments, written as ISO 8601 with an offset (a whole second has no fraction: 22:50:16+00:00)
    assert [datetime.fromisoformat(e["occurred_at"]) for e in copied] == [
        datetime.fromisoformat(e["occurred_at"]) for e in source]
    assert all(e["occurred_at"].endswith("+00:00") for e in copied)
    assert copied[0]["data"]["fields"]["hash"] == source[0]["hash"]
    assert run_ir("verify", other).returncode == 0
