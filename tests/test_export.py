"""`ir export` and `ir verify --file`: the report's lines, every format read back by what reads it (the csv module,
JSON Schema, Timesketch's import rules, a real headless Chromium), determinism, and tamper detection offline."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import zlib
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator
from test_run import ANSWERS  # the demo's answers: inputs, a role, a decision's rationale, a skipped step

from ir.export.formats import FORMATS as WRITERS
from ir.export.verify import Members
from ir.run.incidents import open_incident
from ir.store.records import Draft, Incident
from ir.store.sqlite import SqliteStore
from ir.store.timeline import KINDS, Event, canonical_json

from runs import incident_id, install_demo, timeline

FORMATS = [name for name in WRITERS if name != "aar"]  # every export format; aar is for exercises only
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def incident(run_ir, isolated: Path) -> str:
    """The demo playbook run from an answers file, a note with its own time, a follow-up, evidence, closed."""
    install_demo(isolated)
    (isolated / "answers.yaml").write_text(ANSWERS)
    result = run_ir("run", "demo", "--answers", "answers.yaml", "--non-interactive", "--dry-run", "--as", "Sam Ortiz")
    assert result.returncode == 0, result.stderr
    found = incident_id(result)
    (isolated / "triage.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    for args in (("note", found, "first beacon seen", "--at", "2026-03-29 14:02 America/Los_Angeles"),
                 ("note", found, "follow-up: rotate the vendor's API keys"),
                 ("evidence", found, "triage.zip", "-d", "KAPE triage of WS-042"),
                 ("close", found, "--note", "contained and recovered")):
        assert run_ir(*args).returncode == 0
    return found


def utc(stamp: str) -> str:
    return f"{datetime.fromisoformat(stamp).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def event(events: list[dict[str, Any]], kind: str, step: str | None = None, message: str | None = None) -> dict:
    return next(e for e in events if e["kind"] == kind and (step is None or e["step"] == step)
                and (message is None or e["message"] == message))


def export(run_ir, found: str, fmt: str, *more: str) -> str:
    result = run_ir("export", found, "--format", fmt, *more)
    assert result.returncode == 0, result.stderr
    return result.stdout


# The report ------------------------------------------------------------------------------------------------
def test_the_follow_up_tasks_a_run_opened_are_follow_up_actions(run_ir, isolated):
    (isolated / "tasks.yaml").write_text('id: tasks\ntitle: Tasks\nversion: "1.0.0"\nsteps:\n'
                                         "  - {id: keys, kind: ticket, action: task, title: Keys, phase: recovery,"
                                         " summary: Rotate the vendor's API keys}\n")
    found = incident_id(run_ir("run", "tasks.yaml", "--dry-run", "--non-interactive"))
    follow_ups = export(run_ir, found, "markdown").split("## Follow-up actions\n\n", 1)[1].split("\n\n", 1)[0]
    assert follow_ups == "- task: Rotate the vendor's API keys (not opened: dry run)"


def test_the_markdown_report_has_every_section_with_the_recorded_facts(run_ir, incident, isolated):
    events = timeline(run_ir, incident)
    report = unwrapped(export(run_ir, incident, "markdown"))
    decision, note, evidence = event(events, "decision"), event(events, "note", message="first beacon seen"), \
        event(events, "evidence")
    skipped, closed = event(events, "step.skipped"), event(events, "incident.closed")
    milestone = event(events, "milestone")
    not_sent = event(events, "integration.dry_run", "tell")
    digest = hashlib.sha256((isolated / "triage.zip").read_bytes()).hexdigest()

    assert report[:3] == ["# Post-incident report: Compromised ACME Softphone software", "",
                          "> **Dry run**: integration actions were recorded, not sent."]
    for line in [
        f"- **Incident**: `{incident}`",
        f"- **Status**: closed {utc(closed['occurred_at'])}",
        "- **Severity**: high",
        f"- **Playbook**: `demo` 1.0.0 (SHA-256 `{events[0]['data']['hash']}`)",
        "- **Mode**: dry run",
        f"- **Opened**: {utc(events[0]['recorded_at'])} by Sam Ortiz",
        "| `commander` | Dana Reyes |",
        f"| contained | {utc(milestone['occurred_at'])} | Sam Ortiz |",
        f"| closed | {utc(closed['occurred_at'])} | tester |",
        "| detected | not reached |  |",
        "| time to declare | not reached | opened to declared |",
        f"| {decision['seq']} | {utc(decision['recorded_at'])} | `affected` | 12 hosts run it. Affected? | "
        "Yes, contain (`yes`) | beacons from two hosts | Sam Ortiz |",
        "2 not sent (dry run): 1 slack notify.post, 1 jira ticket.create; the timeline shows what each would have "
        "sent.",
        f"| {not_sent['seq']} | {utc(not_sent['recorded_at'])} | `containment` | `tell` | slack notify.post dry-run: "
        f"would post to the incident channel: Contained ACME Softphone ({incident}) | Sam Ortiz |",
        f"| {evidence['seq']} | {utc(evidence['recorded_at'])} | KAPE triage of WS-042 | `{digest}` | 22 bytes | "
        f"`{isolated / 'triage.zip'}` | tester |",
        f"| {skipped['seq']} | {utc(skipped['recorded_at'])} | `containment` | `sub/isolate` | skipped | "
        "EDR already isolated them |",
        "- rotate the vendor's API keys",
        f"| {note['seq']} | 2026-03-29 21:02:00 UTC (recorded {utc(note['recorded_at'])}) |  | first beacon seen | "
        "tester |",
        f"The hash chain verifies. {len(events)} events, head `{events[-1]['hash']}`. Check the incident with "
        f"`ir verify {incident}`, a JSON export with `ir verify --file`.",
    ]:
        assert line in report, line
    headings = [line for line in report if line.startswith("## ")]
    assert headings == ["## Summary", "## Participants and roles", "## Milestones", "## Timeline", "## Decisions",
                        "## Tickets and channels", "## Evidence", "## Skipped and failed steps",
                        "## Follow-up actions", "## Notes", "## Integrity"]
    contain = next(line for line in report if line.startswith("| time to contain |"))
    assert re.fullmatch(r"\| time to contain \| \d+s \| opened to contained \|", contain)
    # the timeline section puts the note at the time it happened, months before the run
    rows = [line for line in report[report.index("## Timeline"):report.index("## Decisions")]
            if re.match(r"\| \d+ \|", line)]
    assert rows[0].startswith(f"| {note['seq']} | 2026-03-29 21:02:00 UTC")


def unwrapped(markdown: str) -> list[str]:
    """The report's lines, a paragraph or list item wrapped at 80 columns joined again into one line."""
    out: list[str] = []
    for line in markdown.splitlines():
        if out and out[-1] and line and not line.startswith(("|", "#", "- ", ">")) and not out[-1].startswith(
                ("|", "#")):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def test_tz_shows_times_in_that_zone_with_its_offset(run_ir, incident):
    note = event(timeline(run_ir, incident), "note", message="first beacon seen")
    report = unwrapped(export(run_ir, incident, "markdown", "--tz", "America/Los_Angeles"))
    recorded = datetime.fromisoformat(note["recorded_at"]).astimezone(ZoneInfo("America/Los_Angeles"))
    offset = f"{recorded:%z}"[:3] + ":" + f"{recorded:%z}"[3:]
    assert f"| {note['seq']} | 2026-03-29 14:02:00 PDT (-07:00) (recorded {recorded:%Y-%m-%d %H:%M:%S %Z} ({offset})) " \
           "|  | first beacon seen | tester |" in report
    assert "- **Times**: shown in America/Los_Angeles; a second time in brackets is when ir recorded it" in report


def test_an_exercise_is_marked_as_such(run_ir, isolated):
    found = _crafted(exercise=True)
    report = export(run_ir, found, "markdown").splitlines()
    assert report[:3] == ["# Post-incident report: Tabletop: vendor compromise (exercise)", "",
                          "> **Exercise**: this was an exercise, not a real incident."]
    assert "- **Mode**: live, exercise" in report
    assert "EXERCISE: this was an exercise, not a real incident." in export(run_ir, found, "html")


def test_a_tampered_store_is_said_in_the_report(run_ir, incident):
    with sqlite3.connect(Path(os.environ["IR_HOME"]) / "ir.db") as db:
        db.execute("UPDATE events SET message = 'nothing happened' WHERE incident = ? AND seq = 5", (incident,))
    db.close()
    report = "\n".join(unwrapped(export(run_ir, incident, "markdown")))
    assert "**The timeline does NOT verify**: event 5: was altered after it was recorded (its hash does not match " \
           "its content)." in report
    assert "The timeline does NOT verify: event 5" in export(run_ir, incident, "html")


def _crafted(*, exercise: bool = False) -> str:
    """An incident made through the library: a Jira action with a web link (and one with a bad one), a note that
    tries to be markup."""
    store = SqliteStore()
    try:
        found = open_incident(store, "demo", "1.0.0", "Tabletop: vendor compromise", "low", {"demo": b"id: demo\n"},
                              "intake", actor="tester", live=True, exercise=exercise).id
        key, bad = f"{found}/ticket/create", f"{found}/tell/post"
        store.record(found, [
            Draft("integration.requested", "tester", "jira ticket.create requested", phase="recovery", step="ticket",
                  data={"key": key, "integration": "jira", "action": "ticket.create"}),
            Draft("integration.done", "tester", "opened IR-42", phase="recovery", step="ticket",
                  data={"key": key, "integration": "jira", "action": "ticket.create",
                        "ref": {"key": "IR-42", "url": "https://jira.example.com/browse/IR-42"}}),
            Draft("integration.requested", "tester", "slack notify.post requested", phase="containment", step="tell",
                  data={"key": bad, "integration": "slack", "action": "notify.post"}),
            Draft("integration.done", "tester", "posted", phase="containment", step="tell",
                  data={"key": bad, "integration": "slack", "action": "notify.post",
                        "ref": {"ts": "1.2", "url": "javascript:alert(1)"}}),
            Draft("note", "tester", "<script>alert('x')</script> | *bold* [link](https://evil.example)"),
        ])
    finally:
        store.close()
    return found


def test_links_are_links_and_recorded_text_is_never_markup(run_ir, isolated):
    found = _crafted()
    report = export(run_ir, found, "markdown").splitlines()
    assert any(line.endswith("| done | [key=IR-42](<https://jira.example.com/browse/IR-42>) |") for line in report)
    assert any(line.endswith("| done | `ts=1.2, url=javascript:alert(1)` |") for line in report)  # not linked
    assert any(r"| \<script>alert('x')\</script> \| \*bold\* \[link\](https://evil.example) | tester |" in line
               for line in report)
    html = export(run_ir, found, "html")
    assert '<a href="https://jira.example.com/browse/IR-42">key=IR-42</a>' in html
    assert "<code>ts=1.2, url=javascript:alert(1)</code>" in html and 'href="javascript' not in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert loaded_resources(html) == []


# The HTML file ---------------------------------------------------------------------------------------------
class Resources(HTMLParser):
    """Everything in a page that would make a browser fetch something: any attribute that names a resource
    other than a link's href, scripts, style sheets, and url()/@import in CSS."""

    ATTRIBUTES = {"src", "srcset", "href", "xlink:href", "data", "poster", "action", "formaction", "background",
                  "manifest", "ping"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "iframe", "img", "object", "embed", "image", "use", "base"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name in self.ATTRIBUTES and not (tag == "a" and name == "href" and value
                                                and value.startswith(("https://", "http://"))):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "style" and value and re.search(r"url\(|@import", value, re.I):
                self.found.append(f"<{tag} style={value}>")

    def handle_data(self, data: str) -> None:
        if self.lasttag == "style" and re.search(r"url\(|@import", data, re.I):
            self.found.append("url() or @import in <style>")


def loaded_resources(html: str) -> list[str]:
    parser = Resources()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_html_report_is_one_self_contained_file(run_ir, incident):
    html = export(run_ir, incident, "html")
    assert html.startswith("<!DOCTYPE html>\n") and html.endswith("</html>\n")
    assert loaded_resources(html) == []
    assert "http://" not in html and "https://" not in html  # no link either: this incident recorded none
    assert "default-src 'none'" in html  # and the page forbids itself any request
    assert "@media print" in html and "<svg class=\"chart\"" in html
    assert html.count('<polygon class="decision"') == 1
    assert html.count('<rect class="dry-run"') == 2  # the two integration actions, not sent
    assert loaded_resources('<img src="x.png"><p style="background: url(x.png)">') == [
        "<img>", "<img src=x.png>", "<p style=background: url(x.png)>"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs it from Debian (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI runs this test")
    return found


def browse(browser: str, page: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Chromium headless on `page`, its background services off (they would call Google), a fresh profile."""
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", f"--user-data-dir={folder / 'profile'}", *args, page.as_uri()],
        capture_output=True, timeout=120, check=False, cwd=folder)


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page asked for: each request's start (the events that end one carry no URL). A page's requests
    carry its origin as initiator; the browser's own, such as update checks, "not an origin"."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "url" in e["params"] and e["params"].get("initiator") != "not an origin"]


def pixels(png: Path) -> tuple[int, int, list[bytearray]]:
    """Width, height and RGB(A) rows of an 8-bit PNG, decoded with zlib (the five scanline filters undone)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            header = data[pos + 8:pos + 18]
        elif kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header)
    assert depth == 8 and color in (2, 6), (depth, color)
    step = 3 if color == 2 else 4
    raw, stride, rows = zlib.decompress(b"".join(chunks)), width * step, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                guess = left if abs(p - left) <= min(abs(p - up), abs(p - corner)) else up if abs(p - up) <= abs(
                    p - corner) else corner
                line[i] = (line[i] + guess) & 255
        rows.append(line)
        previous = line
    return width, height, [bytearray(row[i:i + 3]) for row in rows for i in range(0, stride, step * 4)]


def test_chromium_renders_the_report_without_a_single_request(run_ir, incident, tmp_path):
    browser = chromium()
    page = tmp_path / "report.html"
    assert run_ir("export", incident, "--format", "html", "-o", str(page)).returncode == 0

    shot = browse(browser, page, tmp_path, "--screenshot=" + str(tmp_path / "report.png"), "--window-size=1280,2000",
                  "--hide-scrollbars")
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    width, height, sampled = pixels(tmp_path / "report.png")
    assert (width, height) == (1280, 2000)
    ink = sum(1 for r, g, b in sampled if min(r, g, b) < 200)
    colour = sum(1 for r, g, b in sampled if max(r, g, b) - min(r, g, b) > 60)
    assert ink > len(sampled) * 0.01, f"the page looks blank: {ink} dark pixels of {len(sampled)} sampled"
    assert colour > 20, "the page has no colour: the inline styles did not apply"

    dump = browse(browser, page, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'net.json'}")
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")[-2000:]
    assert "Post-incident report: Compromised ACME Softphone software" in dump.stdout.decode()
    assert page_requests(tmp_path / "net.json") == []

    # The check sees requests when there are some: a page with a remote image and style sheet.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" '
                   'href="https://example.invalid/a.css">')
    assert browse(browser, bad, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'bad.json'}").returncode == 0
    assert sorted(page_requests(tmp_path / "bad.json")) == ["http://127.0.0.1:9/x.png",
                                                             "https://example.invalid/a.css"]


# Timeline formats ------------------------------------------------------------------------------------------
def test_every_format_exports_byte_identical_files_twice(run_ir, incident, isolated):
    count = len(timeline(run_ir, incident))
    for fmt in FORMATS:
        first, second = isolated / f"a.{fmt}", isolated / f"b.{fmt}"
        result = run_ir("export", incident, "--format", fmt, "-o", str(first))
        assert result.stdout == f"{incident}: {fmt} export of {count} events written to {first}\n"
        assert run_ir("export", incident, "--format", fmt, "-o", str(second)).returncode == 0
        assert first.read_bytes() == second.read_bytes(), fmt
        assert export(run_ir, incident, fmt).encode() == first.read_bytes(), fmt


def test_a_store_written_before_issue_18_exports_and_verifies_the_same(run_ir, incident, isolated):
    """Events whose data was stored as `json.dumps(sort_keys=True)` wrote it (", " and ": "), not as the canonical
    JSON the store seals with now: the exports show the same, and `ir verify` hashes the data as read."""
    before = {fmt: export(run_ir, incident, fmt) for fmt in FORMATS}
    with sqlite3.connect(Path(os.environ["IR_HOME"]) / "ir.db") as db:
        rows = db.execute("SELECT seq, data FROM events WHERE incident = ?", (incident,)).fetchall()
        older = [(json.dumps(json.loads(data), sort_keys=True, ensure_ascii=False), seq) for seq, data in rows]
        assert db.executemany("UPDATE events SET data = ? WHERE incident = ? AND seq = ?",
                              [(data, incident, seq) for data, seq in older]).rowcount == len(rows)
    db.close()
    assert sum('": ' in data for data, _ in older) > len(rows) / 2
    assert {fmt: export(run_ir, incident, fmt) for fmt in FORMATS} == before
    assert run_ir("verify", incident).stdout.startswith(f"{incident}: timeline verifies: ")


def test_the_json_export_holds_everything_and_matches_its_published_schema(run_ir, incident):
    doc = json.loads(export(run_ir, incident, "json"))
    schema = json.loads(resources.files("ir.export").joinpath("schemas/export.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert [e.message for e in Draft202012Validator(schema).iter_errors(doc)] == []
    events = timeline(run_ir, incident)
    assert list(doc) == ["format", "incident", "playbooks", "events", "head"]
    assert doc["format"] == "ir-export/1"
    assert doc["events"] == events
    canonical = json.dumps(doc["incident"], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert doc["head"] == {"count": len(events), "hash": events[-1]["hash"],
                           "incident": hashlib.sha256((events[-1]["hash"] + canonical).encode()).hexdigest()}
    assert sorted(doc["playbooks"]) == ["demo", "sub"]
    assert doc["playbooks"]["demo"].startswith("id: demo\n")
    assert doc["incident"]["id"] == incident and doc["incident"]["status"] == "closed"


def test_the_csv_export_has_one_row_per_event(run_ir, incident):
    rows = list(csv.DictReader(export(run_ir, incident, "csv").splitlines(keepends=True)))
    events = timeline(run_ir, incident)
    assert len(rows) == len(events)
    for row, e in zip(rows, events):
        assert {k: v for k, v in row.items() if k not in ("data", "exercise")} == {
            k: "" if e[k] is None else str(e[k]) for k in row if k not in ("data", "exercise")}
        assert json.loads(row["data"]) == e["data"]
        assert row["exercise"] == "False"  # an exercise's rows say True, every one


def assert_timesketch(row: dict[str, Any]) -> None:
    """Timesketch's import rules: message, datetime (ISO 8601 with an offset), timestamp_desc; and the integer
    microseconds of that same moment."""
    assert isinstance(row["message"], str) and row["message"], row
    assert isinstance(row["timestamp_desc"], str) and row["timestamp_desc"], row
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d", row["datetime"]), row
    moment = datetime.fromisoformat(row["datetime"])
    assert int(row["timestamp"]) == (moment - EPOCH) // timedelta(microseconds=1), row


def test_timesketch_jsonl_follows_the_import_rules(run_ir, incident, isolated):
    path = isolated / "sketch.jsonl"
    assert run_ir("export", incident, "-f", "timesketch-jsonl", "-o", str(path), "--tz", "Europe/Berlin").returncode == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    events = timeline(run_ir, incident)
    assert len(lines) == len(events)
    for text, line, event in zip(path.read_text().splitlines(), lines, events):
        assert text == canonical_json(line)  # keys sorted, as the other JSON ir writes
        assert line["data"] == canonical_json(event["data"])
        assert isinstance(line["timestamp"], int)
        assert_timesketch(line)
    note = next(line for line in lines if line["message"] == "note: first beacon seen")
    assert (note["datetime"], note["timestamp_desc"], note["actor"]) == (
        "2026-03-29T23:02:00+02:00", "Event Occurred", "tester")
    assert lines[0]["timestamp_desc"] == "Event Recorded"
    # The values analysts filter on are attributes of their own, beside the event's data as JSON.
    decision = next(line for line in lines if line["kind"] == "decision")
    assert (decision["choice"], decision["rationale"], decision["action"]) == (
        json.loads(decision["data"])["choice"], json.loads(decision["data"]).get("rationale") or "", "")
    posted = next(line for line in lines if line["kind"] == "integration.dry_run")
    assert (posted["integration"], posted["action"], posted["choice"]) == ("slack", "notify.post", "")
    assert {line["exercise"] for line in lines} == {False}


def test_timesketch_csv_follows_the_import_rules(run_ir, incident, isolated):
    rows = list(csv.DictReader(export(run_ir, incident, "timesketch-csv").splitlines(keepends=True)))
    assert len(rows) == len(timeline(run_ir, incident))
    assert list(rows[0])[:4] == ["message", "datetime", "timestamp_desc", "timestamp"]
    for row in rows:
        assert_timesketch(row)


def test_exports_hold_only_what_the_store_has(run_ir, incident):
    secret = "xoxb-0000-not-for-exports"
    for fmt in FORMATS:
        result = run_ir("export", incident, "--format", fmt, env={"SLACK_BOT_TOKEN": secret, "IR_SECRET": secret})
        assert result.returncode == 0 and secret not in result.stdout, fmt


def test_export_usage_errors(run_ir, incident):
    result = run_ir("export", incident, "--format", "pdf")
    assert (result.returncode, result.stderr) == (
        2, "error: --format: unknown format 'pdf'; use one of: markdown, html, json, csv, timesketch-jsonl, "
           "timesketch-csv, aar\n")
    result = run_ir("export", incident, "--tz", "Mars/Olympus")
    assert (result.returncode, result.stderr) == (
        2, "error: --tz: unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Berlin\n")
    result = run_ir("export", "IR-20260101-AAAAAA")
    assert result.returncode == 1 and result.stderr.startswith("error: no incident 'IR-20260101-AAAAAA' in ")
    result = run_ir("export", incident, "-o", "no/such/folder/report.md")
    assert result.returncode == 1 and result.stderr.startswith("error: no/such/folder/report.md: cannot write it")


# ir verify --file ------------------------------------------------------------------------------------------
def test_verify_file_accepts_an_export_and_names_the_first_edited_event(run_ir, incident, isolated):
    path = isolated / "export.json"
    assert run_ir("export", incident, "-f", "json", "-o", str(path)).returncode == 0
    events = timeline(run_ir, incident)
    result = run_ir("verify", "--file", str(path))
    assert (result.returncode, result.stdout) == (
        0, f"{path}: export of {incident} verifies: {len(events)} events, head {events[-1]['hash']}\n")

    note = event(events, "note", message="first beacon seen")
    original = path.read_text()
    path.write_text(original.replace('"first beacon seen"', '"no beacon seen"'))
    result = run_ir("verify", "--file", str(path))
    assert (result.returncode, result.stderr) == (
        1, f"{path}: export of {incident} does NOT verify: event {note['seq']}: was altered after it was recorded "
           "(its hash does not match its content)\n")

    path.write_text(json.dumps(json.loads(original), indent=2))  # any layout: read member by member
    assert run_ir("verify", "--file", str(path)).returncode == 0

    doc = json.loads(original)
    doc["events"] = [dict(reversed(e.items())) for e in doc["events"]]  # not the order ir writes: checked apart
    path.write_text(json.dumps(doc))
    assert run_ir("verify", "--file", str(path)).returncode == 0
    doc["events"][note["seq"] - 1]["message"] = "no beacon seen"
    path.write_text(json.dumps(doc))
    assert f"does NOT verify: event {note['seq']}: was altered" in run_ir("verify", "--file", str(path)).stderr

    doc = json.loads(original)
    doc["events"].pop()
    path.write_text(json.dumps(doc))
    result = run_ir("verify", "--file", str(path))
    assert result.returncode == 1
    assert f"does NOT verify: event {len(events)}: the incident recorded {len(events)} events" in result.stderr

    doc = json.loads(original)
    doc["playbooks"]["sub"] += "# edited\n"
    path.write_text(json.dumps(doc))
    result = run_ir("verify", "--file", str(path))
    assert result.returncode == 1 and "a playbook was changed" in result.stderr

    doc = json.loads(original)
    del doc["head"]["incident"]  # as an export made before the seal: its events and playbooks are still checked
    path.write_text(json.dumps(doc))
    assert run_ir("verify", "--file", str(path)).returncode == 0

    for field, value in (("severity", "low"), ("title", "Nothing happened"), ("status", "open"), ("exercise", True)):
        doc = json.loads(original)
        doc["incident"][field] = value
        path.write_text(json.dumps(doc))
        result = run_ir("verify", "--file", str(path))
        assert (result.returncode, result.stderr) == (
            1, f"{path}: export of {incident} does NOT verify: the incident's fields (title, severity, status...) "
               "were edited: they do not match head.incident\n"), field


def test_an_export_is_read_member_by_member_in_any_chunks():
    doc = {"format": "ir-export/1", "n": 12345678, "events": [{"a": [1, 2.5, None]}, {"b": "x\\\" ,]}"}, {}],
           "head": {"hash": "0" * 64, "count": 3}, "t": True}
    for text in (json.dumps(doc), json.dumps(doc, indent=3)):
        for chunk in (1, 2, 7, 65536):
            members = {name: list(value) if name == "events" else value
                       for name, value in Members(io.StringIO(text), chunk).items()}
            assert members == doc, (chunk, text)
    with pytest.raises(ValueError, match="expected '{', found '\\['"):
        list(Members(io.StringIO("[1]")).items())


def test_verify_file_refuses_what_is_not_an_export(run_ir, incident, isolated):
    (isolated / "other.json").write_text('{"format": "something/2"}')
    result = run_ir("verify", "--file", "other.json")
    assert (result.returncode, result.stderr) == (
        1, "error: other.json: not an ir export (format 'something/2', expected 'ir-export/1')\n"
           "  fix: give the file `ir export --format json` wrote\n")
    (isolated / "cut.json").write_text(export(run_ir, incident, "json")[:5000])
    result = run_ir("verify", "--file", "cut.json")
    assert result.returncode == 1 and result.stderr.startswith("error: cut.json: not valid JSON (")
    result = run_ir("verify")
    assert (result.returncode, result.stderr) == (
        2, "error: give an incident id or --file EXPORT.json (one of them)\n")


# docs/export.md --------------------------------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "export.md"


def test_the_docs_describe_every_format_field_and_kind():
    doc = DOC.read_text()
    schema = json.loads(resources.files("ir.export").joinpath("schemas/export.schema.json").read_text())
    headings = re.findall(r"^### (.*)$", doc, re.M)
    assert sorted(f for f in WRITERS if not any(f"`{f}`" in h for h in headings)) == []
    assert set(schema["$defs"]["Incident"]["properties"]) == {f.name for f in fields(Incident)} - {
        "head_hash", "event_count"}
    assert set(schema["$defs"]["Event"]["properties"]) == {f.name for f in fields(Event)}
    for name in [*schema["properties"], *schema["$defs"]["Incident"]["properties"],
                 *schema["$defs"]["Event"]["properties"], *KINDS]:
        assert f"| `{name}` |" in doc, name


def test_the_import_examples_in_the_docs_import(run_ir, isolated):
    install_demo(isolated)
    found = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive"))
    examples = dict(re.findall(r"^```(csv|jsonl)\n(.*?)^```", DOC.read_text(), re.M | re.S))
    assert sorted(examples) == ["csv", "jsonl"]
    for kind, text in examples.items():
        (isolated / f"example.{kind}").write_text(text)
        result = run_ir("timeline", found, "--import", f"example.{kind}")
        assert result.returncode == 0, result.stderr


def test_a_report_past_a_thousand_events_a_listing_lists_the_first_and_says_where_the_rest_are(run_ir, isolated):
    store = SqliteStore()
    try:
        found = open_incident(store, "demo", "1.0.0", "Long", "low", {"demo": b"id: demo\n"}, "intake",
                              actor="tester", live=True).id
        store.record(found, [Draft("note", "tester", f"todo: look at host {n}" if n % 500 == 7 else f"note {n}",
                                   occurred_at=f"2026-03-{29 - n % 2}T14:02:00+00:00") for n in range(1005)])
    finally:
        store.close()
    report = "\n".join(unwrapped(export(run_ir, found, "markdown")))
    more = ("are not listed here (a listing shows at most 1000); the JSON and CSV exports have every event: "
            f"`ir export {found} --format json`.")
    # the opening and 1,005 notes: the timeline lists the 1,000 that happened first, the notes the first 1,000
    assert f"\n6 more events {more}\n" in report and f"\n5 more notes {more}\n" in report
    listed = report.split("## Timeline")[1].split("## Decisions")[0]
    assert listed.count("| note: ") == 1000 and "| opened" not in listed
    assert "| note: note 1003 |" in listed and "| note: note 994 |" in listed and "| note: note 996 |" not in listed
    follow_ups = report.split("## Follow-up actions")[1].split("## Notes")[0]
    assert [line for line in follow_ups.splitlines() if line] == ["- look at host 7", "- look at host 507"]
    assert f'<p class="more">6 more events {more}</p>' in export(run_ir, found, "html")
