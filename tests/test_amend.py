"""Correct and back-date (issue 16): `u` at the terminal and `ir correct` correct an earlier answer, the timeline
keeps both and later steps use the new value; a milestone step takes when it really happened and `ir milestone
--at` sets one afterwards, and the report's durations follow; `ir severity` changes it mid-incident; `ir verify`
passes after each. Refusals say why and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pseudo import Pty
from runs import timeline

BACKDATE = """\
id: backdate
title: Backdate
version: "1.0.0"
inputs:
  - {id: severity, type: choice, choices: [low, medium, high, critical], default: high}
steps:
  - id: count
    kind: prompt
    title: Count
    phase: detection-analysis
    questions:
      - {id: hosts, type: integer, min: 0, label: Hosts affected}
  - id: detect
    kind: manual
    title: Detect
    phase: detection-analysis
    milestone: detected
    instructions: Confirm it.
  - id: contain
    kind: manual
    title: Contain
    phase: containment
    milestone: contained
    instructions: "Isolate {{ answers.hosts }} hosts."
  - id: done
    kind: note
    title: Done
    phase: containment
    message: "contained {{ answers.hosts }} hosts"
"""


@pytest.fixture
def backdate(isolated: Path) -> Path:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "backdate.yaml").write_text(BACKDATE)
    return isolated


def durations(run_ir, incident: str) -> list[str]:
    """The report's durations, each as its first three cells (measure, time, from-to): the fourth says how long it
    was as recorded, where the times recorded differ."""
    report = run_ir("export", incident, "--format", "markdown").stdout
    return ["| " + " | ".join(line.strip("|").split(" | ")[:3]).strip() + " |" for line in report.splitlines()
            if line.startswith("| time to ")]


def test_u_corrects_an_answer_and_a_milestone_step_is_back_dated(run_ir, backdate):
    tty = Pty("run", "backdate", "--dry-run", env={"IR_TZ": "Europe/Berlin"})
    tty.expect("Opened ")
    incident = tty.expect(":")
    tty.answer("[default: high]", "")
    tty.answer("Hosts affected (integer, at least 0)\n  > ", "3")
    tty.answer("[u] correct [p]ause >", "u")
    which = "  correct which? (inputs.ID, roles.ID or STEP.QUESTION; Enter: none) >"
    tty.answer(which, "count.nothing")
    tty.answer("  the right value >", "4")
    tty.answer("  why? >", "recount")
    tty.expect("  count.nothing: no input, role or question of that name in playbook backdate; nothing changed\n")
    tty.answer("[p]ause >", "u")
    tty.answer(which, "count.hosts")
    tty.answer("  the right value >", "-3")
    tty.answer("  why? >", "recount")
    tty.expect("  count.hosts: '-3' is refused: -3 is less than the minimum, 0; nothing changed\n")
    tty.answer("[p]ause >", "u")
    tty.answer(which, "count.hosts")
    tty.answer("  the right value >", "4")
    tty.answer("  why? >", "WS-9 was missed")
    tty.expect("  corrected: answers.hosts = 4 (was 3): WS-9 was missed\n")
    tty.answer("[p]ause >", "c")
    tty.answer("  detected: when did this happen? [Enter: now; or e.g. 2026-03-29 14:02 America/Los_Angeles] >",
               "2023-03-22 09:00 PST")
    tty.answer("  PST is ambiguous: use America/Los_Angeles or -08:00\n", "2023-03-22 09:00")
    tty.expect("  no zone given: read in Europe/Berlin (IR_TZ) as 2023-03-22 09:00:00 CET (+01:00)\n")
    tty.expect("Isolate 4 hosts.")
    tty.answer("[p]ause >", "c")
    tty.answer("  contained: when did this happen?", "2023-03-22 11:30 UTC")
    tty.expect("contained 4 hosts")
    assert tty.close() == 0
    assert "Traceback" not in tty.seen
    events = timeline(run_ir, incident)
    answered = [(e["kind"], e["data"]["value"]) for e in events if e["data"].get("name") == "answers.hosts"]
    assert answered == [("input.set", 3), ("input.corrected", 4)]  # the timeline keeps both
    assert [(e["message"], e["occurred_at"]) for e in events if e["kind"] == "milestone"] == [
        ("detected", "2023-03-22T09:00:00+01:00"), ("contained", "2023-03-22T11:30:00+00:00")]
    assert "| time to contain | 3h 30m | detected to contained |" in durations(run_ir, incident)
    assert run_ir("verify", incident).returncode == 0


def test_ir_correct_milestone_and_severity_afterwards(run_ir, backdate):
    (backdate / "answers.yaml").write_text("steps:\n  count: {hosts: 3}\n  detect: {at: '2023-03-22T09:00:00Z'}\n"
                                           "  contain: {at: '2023-03-22T10:00:00Z'}\n")
    run = run_ir("run", "backdate", "--dry-run", "--non-interactive", "--answers", "answers.yaml")
    assert run.returncode == 0, run.stderr
    incident = run.stdout.split()[1].rstrip(":")
    assert "| time to contain | 1h 00m | detected to contained |" in durations(run_ir, incident)

    def refused(*args: str) -> str:
        before = run_ir("timeline", incident, "--json").stdout
        result = run_ir(*args)
        assert result.returncode == 1 and result.stdout == ""
        assert run_ir("timeline", incident, "--json").stdout == before  # nothing changed
        return result.stderr

    assert refused("correct", incident, "count.hosts", "x", "--reason", "r") == (
        "error: count.hosts: 'x' is refused: a whole number is needed\n  fix: give a value of its type, within its "
        "bounds\n")
    assert refused("correct", incident, "count.hosts", "3", "--reason", "r") == (
        "error: count.hosts is 3 already: there is nothing to correct\n")
    assert refused("correct", incident, "count.hosts", "5", "--reason", " ") == (
        "error: a correction of count.hosts needs a reason\n  fix: say why with --reason\n")
    assert refused("milestone", incident, "fixed", "--at", "2023-03-22 12:00 UTC") == (
        "error: 'fixed' is not a milestone\n  fix: use one of detected, declared, contained, eradicated, recovered\n")
    assert refused("milestone", incident, "contained") == (
        "error: milestone contained needs the time it happened\n  fix: give it with --at\n")
    assert refused("severity", incident, "urgent", "--reason", "r") == (
        "error: 'urgent' is not a severity\n  fix: use one of low, medium, high, critical\n")
    assert refused("severity", incident, "high", "--reason", "r") == (
        f"error: {incident} is high already: there is nothing to change\n")

    fixed = run_ir("correct", incident, "count.hosts", "5", "--reason", "two laptops offline")
    assert fixed.stdout.startswith(f"{incident}: answers.hosts = 5 (was 3): two laptops offline (event ")
    moved = run_ir("milestone", incident, "contained", "--at", "2023-03-22 11:30 America/New_York")
    assert moved.stdout.startswith(f"{incident}: milestone contained at 2023-03-22T11:30:00-04:00 (event ")
    raised = run_ir("severity", incident, "critical", "--reason", "data left the network")
    assert raised.stdout.startswith(f"{incident}: severity high -> critical: data left the network (event ")
    assert "| time to contain | 6h 30m | detected to contained |" in durations(run_ir, incident)
    assert "severity critical" in run_ir("status", incident).stdout
    assert run_ir("verify", incident).returncode == 0
    kinds = [e["kind"] for e in timeline(run_ir, incident)]
    assert kinds[-3:] == ["input.corrected", "milestone", "severity.changed"]


PLAIN = """\
id: plain
title: Plain
version: "1.0.0"
steps:
  - {id: look, kind: manual, title: Look, phase: detection-analysis, instructions: Look at it.}
  - {id: wrap, kind: manual, title: Wrap, phase: recovery, instructions: Done.}
"""


def test_d_completes_a_step_with_when_it_really_happened_in_any_zone(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "plain.yaml").write_text(PLAIN)
    tty = Pty("run", "plain", "--dry-run")
    tty.expect("Opened ")
    incident = tty.expect(":")
    tty.answer("[u] correct [p]ause >", "d")
    tty.answer("done: when did this happen? [Enter: now; or e.g. 2026-03-29 14:02 America/Los_Angeles] >", "2026-03-29 14:02 PST")
    assert "PST is ambiguous: use America/Los_Angeles or -08:00" in tty.expect("when did this happen?")
    tty.child.sendline("2026-03-29 14:02 America/Los_Angeles")
    tty.answer("[u] correct [p]ause >", "p")
    assert tty.close() == 0
    [done] = [e for e in timeline(run_ir, incident) if e["kind"] == "step.completed" and e["step"] == "look"]
    assert done["occurred_at"] == "2026-03-29T14:02:00-07:00" and done["recorded_at"].startswith("20")
    assert done["recorded_at"] != done["occurred_at"]
    assert run_ir("verify", incident).returncode == 0


HELD = """\
id: held
title: Held
version: "1.0.0"
roles: [{id: commander, title: Incident commander}]
steps:
  - {id: look, kind: manual, title: Look, phase: detection-analysis, instructions: "Ask {{ roles.commander }}."}
"""


def test_a_corrected_role_holder_is_who_the_report_and_the_after_action_report_name(run_ir, isolated):
    """Found in review: `ir correct roles.X` changed what later steps read, but the report and the after-action
    report kept naming the holder first given."""
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "held.yaml").write_text(HELD)
    (isolated / "answers.yaml").write_text("roles: {commander: Dana Reyes}\n")
    for command in ("run", "tabletop"):
        ran = run_ir(command, "held", *(["--dry-run"] if command == "run" else []), "--non-interactive",
                     "--answers", "answers.yaml")
        assert ran.returncode == 0, ran.stderr
        incident = ran.stdout.split("Opened ")[1].split()[0 if command == "run" else 1].rstrip(":")
        fixed = run_ir("correct", incident, "roles.commander", "Lee Park", "--reason", "Dana is on leave")
        assert fixed.returncode == 0, fixed.stderr
        if command == "run":
            report = run_ir("export", incident, "--format", "markdown").stdout
            people = report.split("## Participants and roles")[1].split("##")[0]
            assert "| `commander` | Lee Park |" in people and "Dana" not in people, people
        else:
            people = run_ir("export", incident, "--format", "aar").stdout.split("## Participants")[1].split("##")[0]
            assert "| Lee Park | commander |" in people and "Dana" not in people, people
        assert run_ir("verify", incident).returncode == 0
