"""`ir run` and `ir resume` end to end, as a responder sees them: real subprocesses, real SQLite files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runs import incident_id, install_demo, kinds, timeline, unsealed

ANSWERS = """\
inputs: {vendor: ACME Softphone, first_seen: "2026-03-29 14:02 America/Los_Angeles"}
roles: {commander: Dana Reyes}
steps:
  intake: {status: completed, note: EDR and proxy checked, at: "2026-03-29T15:00:00-07:00"}
  scope: {hosts: 12}
  affected: {choice: "yes", rationale: beacons from two hosts}
  sub/isolate: {status: skipped, reason: EDR already isolated them}
"""


@pytest.fixture
def demo(isolated: Path) -> Path:
    install_demo(isolated)
    return isolated


def test_a_non_interactive_dry_run_walks_every_step_and_says_what_it_would_send(run_ir, demo):
    result = run_ir("run", "demo", "--dry-run", "--non-interactive")
    assert result.returncode == 0, result.stderr
    incident = incident_id(result)
    assert result.stdout.splitlines() == [
        f"Opened {incident}: Demo response (dry run: nothing is sent)",
        "[1/7] detection-analysis: Intake",
        "[2/7] detection-analysis: Scope",
        "[3/7] detection-analysis: Affected?",
        "[4/7 · Containment sub-playbook 1/2] containment: Log it",  # its place in the incident, and in its playbook
        "containing 3CX",
        "[5/7 · Containment sub-playbook 2/2] containment: Isolate hosts",
        "[6/7] containment: Tell the channel",
        f"would post to the incident channel: Contained 3CX ({incident})",
        "[7/7] recovery: Open the ticket",
        "would open the incident ticket in jira: Compromised 3CX software",
        f"Playbook finished for {incident}. Review with `ir timeline {incident}`; close with `ir close {incident}`.",
    ]
    assert result.stderr == ""
    events = timeline(run_ir, incident)
    assert kinds(events) == [
        "incident.opened", "input.set", "input.set", "input.set", "role.assigned", "incident.updated",
        "step.started intake", "step.completed intake",
        "step.started scope", "input.set scope", "step.completed scope",
        "step.started affected", "decision affected", "step.completed affected",
        "step.started sub", "input.set sub", "note sub",
        "step.started sub/log", "note sub/log", "step.completed sub/log",
        "step.started sub/isolate", "step.completed sub/isolate", "step.completed sub",
        "step.started tell", "integration.requested tell", "integration.dry_run tell", "step.completed tell",
        "milestone tell",
        "step.started ticket", "integration.requested ticket", "integration.dry_run ticket",
        "step.completed ticket",
    ]
    assert {e["actor"] for e in events} == {"tester"}
    assert events[1]["message"] == "inputs.vendor = 3CX"  # the input's example: a dry run without a person
    assert events[5]["message"] == "title: Compromised 3CX software"
    assert events[7]["message"] == "acknowledged without a person (non-interactive run)"
    assert unsealed(events[12]["data"]) == {"choice": "yes", "label": "Yes, contain",
                                  "rationale": "not answered: the playbook's default"}
    assert run_ir("verify", incident).returncode == 0


def test_answers_file_sets_inputs_roles_decisions_and_outcomes_with_their_own_times(run_ir, demo):
    (demo / "answers.yaml").write_text(ANSWERS)
    result = run_ir("run", "demo", "--answers", "answers.yaml", "--non-interactive", "--as", "Sam Ortiz")
    assert result.returncode == 0, result.stderr
    events = {(e["kind"], e["step"]): e for e in timeline(run_ir, incident_id(result))}
    assert events[("input.set", None)]["actor"] == "Sam Ortiz"
    assert events[("role.assigned", None)]["message"] == "roles.commander = Dana Reyes"
    completed = events[("step.completed", "intake")]
    assert (completed["message"], completed["occurred_at"]) == ("EDR and proxy checked", "2026-03-29T15:00:00-07:00")
    assert completed["recorded_at"].startswith("2026-") and completed["recorded_at"].endswith("Z")
    assert events[("input.set", "scope")]["data"]["value"] == 12
    assert events[("decision", "affected")]["data"]["rationale"] == "beacons from two hosts"
    assert events[("step.skipped", "sub/isolate")]["message"] == "EDR already isolated them"
    # Not a dry run, and nothing is configured: the run says so once per integration and sends nothing.
    lines = result.stdout.splitlines()
    assert lines.count("slack is not configured, so its actions are shown and recorded, not sent: "
                       "set SLACK_BOT_TOKEN to a bot token (xoxb-...) to send to Slack") == 1
    assert lines.count("jira is not configured, so its actions are shown and recorded, not sent: "
                       "set JIRA_URL, and JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)") == 1
    first_seen = next(e for e in timeline(run_ir, incident_id(result)) if e["message"].startswith("inputs.first_seen"))
    assert first_seen["data"]["value"] == "2026-03-29T14:02:00-07:00[America/Los_Angeles]"


def test_incidents_lists_each_in_three_short_lines(run_ir, demo):
    finished = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive", "--as", "Dana Reyes"))
    paused = incident_id(run_ir("run", "demo", "--dry-run", input="ACME\n"))  # end of input after the first answer
    listed = {i["id"]: i for i in json.loads(run_ir("incidents", "--json").stdout)}
    opened = {key: listed[key]["opened_at"][:16].replace("T", " ") for key in (finished, paused)}
    result = run_ir("incidents")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"{finished}  open, high, dry run  {opened[finished]} UTC\n  Compromised 3CX software\n"
        "  playbook demo 1.0.0, the playbook has ended; opened by Dana Reyes\n"
        f"{paused}  open, medium, dry run  {opened[paused]} UTC\n  Demo response\n"
        f"  playbook demo 1.0.0, at step intake; opened by {listed[paused]['opened_by']}\n")
    assert max(map(len, result.stdout.splitlines())) <= 80


def test_incidents_filter_by_status_playbook_mode_and_text(run_ir, demo, tree):
    zoom = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive", "--var", "vendor=Zoom"))
    _write(demo, "live.yaml", "roles: {commander: Dana Reyes}\nsteps: {scope: {hosts: 3}}\n")
    live = incident_id(run_ir("run", "demo", "--non-interactive", "--var", "vendor=ACME", "--answers", "live.yaml"))
    drill = run_ir("tabletop", "demo", "--non-interactive").stdout.split()[2].rstrip(":")
    other = incident_id(run_ir("run", "sub", "--dry-run", "--non-interactive", "--var", "what=laptops"))
    assert run_ir("close", zoom).returncode == 0

    def ids(*filters: str) -> list[str]:
        result = run_ir("incidents", "--json", *filters)
        assert result.returncode == 0, result.stderr
        return [i["id"] for i in json.loads(result.stdout)]

    assert ids() == [zoom, live, drill, other]
    assert ids("--status", "closed") == [zoom]
    assert ids("--status", "open", "--playbook", "demo") == [live, drill]
    assert ids("--mode", "live") == [live] and ids("--mode", "exercise") == [drill]
    assert ids("--mode", "dry-run") == [zoom, other]
    assert ids("--search", "zOOm") == [zoom] and ids("--search", "LAPTOP") == []  # titles, not inputs
    assert ids("--search", other[-6:].lower()) == [other]
    none = run_ir("incidents", "--playbook", "ransomware")
    assert (none.returncode, none.stdout) == (0, "None of the 4 incident(s) matches; `ir incidents` lists them all.\n")
    before = tree()
    for bad, said in (("--status", "paused"), ("--mode", "test")):
        refused = run_ir("incidents", bad, said)
        allowed = "open, closed, discarded" if bad == "--status" else "live, dry-run, exercise"
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2, "", f"error: {bad} {said!r} is not one of {allowed}\n  fix: write e.g. {bad} {allowed.split(', ')[0]}\n")
    assert tree() == before


def test_a_decision_can_end_the_playbook(run_ir, demo):
    result = run_ir("run", "demo", "--dry-run", "--non-interactive", "--var", "vendor=Zoom",
                    "--answers", str(_write(demo, "no.yaml", "steps: {affected: 'no'}\n")))
    assert result.returncode == 0, result.stderr
    assert "[4/7" not in result.stdout and "Playbook finished" in result.stdout
    events = timeline(run_ir, incident_id(result))
    assert kinds(events)[-2:] == ["decision affected", "step.completed affected"]
    assert unsealed(events[-1]["data"]) == {"next": None}
    assert "inputs.vendor = Zoom" in [e["message"] for e in events]


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text)
    return folder / name


def test_a_value_not_given_renders_as_nothing_and_takes_its_default(run_ir, isolated):
    _write(isolated, "gaps.yaml", """\
id: gaps
title: Gaps
version: "1.0.0"
inputs:
  - {id: ref, type: string, required: false}
  - {id: at, type: datetime}
roles:
  - {id: commander, title: Incident commander}
steps:
  - id: brief
    title: Brief
    phase: detection-analysis
    kind: note
    message: "Lead: {{ roles.commander | default('the on-call') }}; ref [{{ inputs.ref }}]; 72 h: {{ inputs.at | add_hours(72) | timestamp }}"
""")
    result = run_ir("run", "gaps.yaml", "--dry-run", "--non-interactive", "--var", "at=2026-03-27 11:00 Europe/Berlin")
    assert result.returncode == 0, result.stderr
    events = timeline(run_ir, incident_id(result))
    assert [e["message"] for e in events if e["kind"] in ("input.set", "note")] == [
        "inputs.ref = not given", "inputs.at = 2026-03-27T11:00:00+01:00[Europe/Berlin]",
        "Lead: the on-call; ref []; 72 h: 2026-03-30 12:00 CEST (+02:00)"]


def test_the_store_is_private(run_ir, demo):
    home = Path(os.environ["IR_HOME"])
    assert run_ir("run", "demo", "--dry-run", "--non-interactive").returncode == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.glob("ir.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_home_or_store_others_can_reach_is_refused_and_left_as_it_is(run_ir, demo, isolated):
    """ir never changes the mode of a directory it did not make, and never uses a store others can reach."""
    home = isolated / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o1777)  # like /tmp
    result = run_ir("incidents", env={"IR_HOME": str(home)})
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"error: cannot use {home} for ir's files: others can reach it (mode 1777)\n"
               f"  fix: make it private with `chmod 700 {home}` (check what is in it first), or set IR_HOME to a "
               "new directory\n")
    assert stat.S_IMODE(home.stat().st_mode) == 0o1777 and list(home.iterdir()) == []
    home.chmod(0o700)
    planted = home / "ir.db"
    planted.write_bytes(b"")
    planted.chmod(0o666)  # pre-created, open to all
    result = run_ir("incidents", env={"IR_HOME": str(home)})
    assert (result.returncode, result.stderr) == (
        1, f"error: the store file {planted} is not used: others can reach it (mode 0666)\n"
           "  fix: move it aside and let ir make a new store (or restore yours from a backup)\n")
    planted.unlink()
    (home / "ir.db").symlink_to(isolated / "elsewhere.db")
    result = run_ir("incidents", env={"IR_HOME": str(home)})
    assert result.returncode == 1 and "is not used: a symbolic link" in result.stderr
    assert not (isolated / "elsewhere.db").exists()


def test_a_home_that_is_a_file_or_a_store_that_is_not_one_is_a_clear_error(run_ir, isolated):
    (isolated / "afile").write_text("not a directory")
    result = run_ir("incidents", env={"IR_HOME": "afile"})
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "error: cannot use afile for ir's files: not a directory\n"
               "  fix: set IR_HOME to a directory you can write to, or unset it\n")
    (isolated / "junk").mkdir(mode=0o700)
    junk = os.urandom(8192)
    (isolated / "junk" / "ir.db").write_bytes(junk)
    (isolated / "junk" / "ir.db").chmod(0o600)
    result = run_ir("incidents", env={"IR_HOME": "junk"})
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "error: the store junk/ir.db cannot be read: file is not a database\n"
               "  fix: it is not an ir store, or it is damaged: move it aside and restore it from a backup "
               "(IR_HOME names another store)\n")
    assert (isolated / "junk" / "ir.db").read_bytes() == junk  # left as it was


@pytest.mark.parametrize(("required", "code", "said"), [
    ("false", 0, "who: []"),
    ("true", 1, "error: step sub gives inner's required input 'who' no value\n  fix: give it one under the include "
                "step's `inputs`, or make it optional in inner; then `ir resume`\n"),
])
def test_an_include_input_given_a_value_that_was_not_given(run_ir, isolated, required, code, said):
    _write(isolated, "outer.yaml", 'id: outer\ntitle: Outer\nversion: "1.0.0"\n'
           "inputs: [{id: vendor, type: string, required: false}]\nsteps:\n"
           "  - {id: sub, kind: include, title: Sub, phase: containment, playbook: inner, "
           'inputs: {who: "{{ inputs.vendor }}"}}\n')
    (isolated / "playbooks").mkdir()
    _write(isolated / "playbooks", "inner.yaml", 'id: inner\ntitle: Inner\nversion: "1.0.0"\n'
           f"inputs: [{{id: who, type: string, required: {required}}}]\nsteps:\n"
           '  - {id: log, kind: note, title: Log, phase: containment, message: "who: [{{ inputs.who }}]"}\n')
    result = run_ir("run", "outer.yaml", "--dry-run", "--non-interactive")
    assert result.returncode == code
    if code == 0:
        assert said in result.stdout.splitlines() and result.stderr == ""
    else:
        assert result.stderr == said


def test_an_include_input_that_is_one_expression_passes_the_value_itself(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    _write(isolated / "playbooks", "outer.yaml", 'id: outer\ntitle: Outer\nversion: "1.0.0"\n'
           "inputs: [{id: seen, type: datetime}, {id: hosts, type: list}]\nsteps:\n"
           "  - {id: sub, kind: include, title: Sub, phase: containment, playbook: inner, inputs: "
           '{at: "{{ inputs.seen }}", hosts: "{{ inputs.hosts }}", label: "seen {{ inputs.seen | timestamp }}"}}\n')
    _write(isolated / "playbooks", "inner.yaml", 'id: inner\ntitle: Inner\nversion: "1.0.0"\n'
           "inputs: [{id: at, type: datetime}, {id: hosts, type: list}, {id: label, type: string}]\nsteps:\n"
           "  - {id: log, kind: note, title: Log, phase: containment, message: \"{{ inputs.at | add_hours(72) | "
           "timestamp }}; {{ inputs.hosts | join(' and ') }}; {{ inputs.label }}\"}\n")
    result = run_ir("run", "outer", "--dry-run", "--non-interactive", "--var", "seen=2026-03-27 11:00 Europe/Berlin",
                    "--var", "hosts=WS-1, WS-2")
    assert result.returncode == 0, result.stderr
    events = timeline(run_ir, incident_id(result))
    assert [e["data"]["value"] for e in events if e["kind"] == "input.set" and e["data"]["scope"] == "sub"] == [
        "2026-03-27T11:00:00+01:00[Europe/Berlin]", ["WS-1", "WS-2"], "seen 2026-03-27 11:00 CET (+01:00)"]
    assert [e["message"] for e in events if e["kind"] == "note" and e["step"] == "sub/log"] == [
        "2026-03-30 12:00 CEST (+02:00); WS-1 and WS-2; seen 2026-03-27 11:00 CET (+01:00)"]


def test_a_missing_required_value_is_named_before_anything_runs(run_ir, demo):
    result = run_ir("run", "demo", "--non-interactive")  # live: inputs' examples are not used
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("no value for input 'vendor' (vendor)\n"
                             "  fix: give it under `inputs:` in an answers file, or pass --var vendor=VALUE\n"
                             "no answer for question 'hosts' of step scope\n"
                             "  fix: add it under `steps: scope: hosts:` in the answers file\n")
    assert run_ir("incidents").stdout == "No incidents yet. Open one with `ir run PLAYBOOK`.\n"


def test_every_problem_in_an_answers_file_is_reported_with_its_line(run_ir, demo):
    _write(demo, "bad.yaml", "inputs:\n  vendor: ACME\n  colour: red\nsteps:\n  scope: {hosts: many}\n"
                             "  affected: maybe\n  nosuch: {status: completed}\n  intake: {status: done}\n")
    result = run_ir("run", "demo", "--answers", "bad.yaml", "--dry-run")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("  fix:")]
    assert lines == [
        "bad.yaml:3:11: inputs.colour: the playbook demo has no input 'colour'",
        "bad.yaml:5:18: steps.scope.hosts: 'many' is not a valid integer: a whole number is needed",
        "bad.yaml:6:13: steps.affected: 'maybe' is not a choice of decision affected",
        "bad.yaml:7:11: steps.nosuch: no step 'nosuch' in demo",
        "bad.yaml:8:20: steps.intake.status: status 'done' is not one of completed, skipped, failed",
    ]
    assert not (Path(os.environ["IR_HOME"]) / "ir.db").exists()


def test_a_mistyped_answers_section_suggests_the_answers_field(run_ir, demo):
    _write(demo, "typo.yaml", "exercize: {}\n")
    result = run_ir("run", "demo", "--answers", "typo.yaml", "--dry-run")
    assert (result.returncode, result.stderr) == (1, "typo.yaml:1:1: exercize: unknown field `exercize`\n"
                                                     "  fix: did you mean `exercise`?\n")


@pytest.mark.parametrize("junk", [b"\x00\x01\x02binary", b"- a\n- list\n", b"inputs: [1, 2]\n", b"steps:\n\t- x\n"])
def test_a_broken_answers_file_is_refused_without_a_traceback(run_ir, demo, junk):
    (demo / "junk.yaml").write_bytes(junk)
    result = run_ir("run", "demo", "--answers", "junk.yaml", "--dry-run")
    assert result.returncode == 1
    assert result.stderr.startswith("junk.yaml:1:") or result.stderr.startswith("junk.yaml:2:"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_var_is_a_usage_error(run_ir, demo):
    result = run_ir("run", "demo", "--var", "novalue", "--dry-run")
    assert (result.returncode, result.stderr) == (2, "error: --var 'novalue' is not NAME=VALUE\n"
                                                      "  fix: write e.g. --var vendor=3CX\n")


def test_interactive_prompts_reask_bad_answers_and_end_of_input_pauses(run_ir, demo):
    typed = "\n".join([
        "ACME",                                   # vendor
        "",                                       # severity: the default (high)
        "2026-03-29 14:02 Mars/Olympus",          # first_seen: unknown zone, asked again
        "2026-03-29 14:02 America/Los_Angeles",
        "Dana Reyes",                             # commander
        "y", "n",                                 # checklist: first ticked, second left open
        "n", "beacon seen", "2026-03-29 13:55 America/Los_Angeles",   # a note with its own time
        "c looked at both", "n", "y",             # complete with a note: the open item asked again, still open; anyway
        "twelve", "12",                           # hosts: not a number, asked again
        "7", "1 two hosts beacon",                # decision: 7 is not a choice; 1 is, and why
    ]) + "\n"
    result = run_ir("run", "demo", "--dry-run", input=typed)
    assert result.returncode == 0, result.stderr
    incident = incident_id(result)
    out = result.stdout
    assert "unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Berlin" in out
    assert "a whole number is needed" in out
    assert "pick one of the numbers" in out
    assert "1 checklist item(s) not ticked; complete anyway?" in out
    assert out.rstrip().endswith(f"Paused {incident}; nothing is lost. Continue with: ir resume {incident}")
    events = timeline(run_ir, incident)
    by_message = {e["message"]: e for e in events}
    assert by_message["inputs.first_seen = 2026-03-29T14:02:00-07:00[America/Los_Angeles]"]["kind"] == "input.set"
    assert by_message["inputs.severity = high"]
    assert by_message["done: Check EDR"]["kind"] == "checklist.checked"
    assert by_message["beacon seen"]["occurred_at"] == "2026-03-29T13:55:00-07:00"
    assert by_message["looked at both"]["kind"] == "step.completed"
    assert by_message["12 hosts run it. Affected? -> Yes, contain"]["data"]["rationale"] == "two hosts beacon"
    assert events[-1]["kind"] == "incident.paused" and events[-1]["message"] == "paused at sub/isolate"

    resumed = run_ir("resume", incident, input="c\n\nc\n\nc\n\n")
    assert resumed.returncode == 0, resumed.stderr
    assert "Isolate the hosts running ACME." in resumed.stdout
    assert "Intake" not in resumed.stdout  # nothing done before is asked again
    assert "Playbook finished" in resumed.stdout
    events = timeline(run_ir, incident)
    assert kinds(events).count("step.completed intake") == 1
    assert kinds(events).count("decision affected") == 1
    assert run_ir("verify", incident).returncode == 0


def test_a_failed_step_stops_the_run_and_resume_runs_it_again(run_ir, demo):
    _write(demo, "fail.yaml", "steps: {intake: {status: failed, note: EDR console down}}\n")
    result = run_ir("run", "demo", "--dry-run", "--non-interactive", "--answers", "fail.yaml")
    assert result.returncode == 4
    incident = incident_id(result)
    assert result.stderr == (f"error: step intake failed: EDR console down\n"
                             f"  fix: fix what failed, then `ir resume {incident}` runs the step again\n")
    resumed = run_ir("resume", incident, "--non-interactive")
    assert resumed.returncode == 0, resumed.stderr
    assert kinds(timeline(run_ir, incident)).count("step.completed intake") == 1


def test_a_running_incident_keeps_the_playbook_it_started_with(run_ir, demo):
    result = run_ir("run", "demo", "--dry-run", input="ACME\n\n\n\n")  # inputs, then end of input
    incident = incident_id(result)
    (demo / "playbooks" / "demo.yaml").write_text("not: [a playbook")
    resumed = run_ir("resume", incident, "--non-interactive")
    assert resumed.returncode == 0, resumed.stderr
    assert "[7/7] recovery: Open the ticket" in resumed.stdout


def test_close_records_it_and_a_closed_incident_cannot_resume(run_ir, demo):
    incident = incident_id(run_ir("run", "demo", "--dry-run", "--non-interactive"))
    closed = run_ir("close", incident, "--note", "false positive")
    assert (closed.returncode, closed.stdout) == (0, f"Closed {incident}.\n")
    resumed = run_ir("resume", incident)
    assert resumed.returncode == 1
    assert resumed.stderr.startswith(f"error: {incident} is closed\n")
    listed = json.loads(run_ir("incidents", "--json").stdout)
    assert [(i["id"], i["status"], i["mode"]) for i in listed] == [(incident, "closed", "dry-run")]
    assert listed[0]["closed_at"].endswith("Z")


def test_an_unknown_incident_is_a_clear_error(run_ir, demo):
    result = run_ir("status", "IR-20260101-NOSUCH")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no incident 'IR-20260101-NOSUCH' in ")
    assert result.stderr.endswith("  fix: run `ir incidents` to list them\n")


def test_status_shows_progress_and_the_current_step(run_ir, demo):
    incident = incident_id(run_ir("run", "demo", "--dry-run", input="ACME\n\n\n\ny\ny\nc\n"))
    result = run_ir("status", incident)
    assert result.returncode == 0, result.stderr
    assert f"{incident} Compromised ACME software" in result.stdout
    assert "at step: scope" in result.stdout
    assert "severity high" in result.stdout
