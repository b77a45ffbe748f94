"""The responder at a real pseudo-terminal: answers that check themselves, and every re-ask says why. Each test
types what a person would, waits for the exact text they would see, and reads the timeline afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pseudo import Pty
from runs import timeline, unsealed

CHECKS = """\
id: checks
title: Checks
version: "1.0.0"
inputs:
  - {id: installed, type: integer, min: 0, label: Hosts installed}
  - {id: seen, type: datetime, label: First seen}
  - {id: platforms, type: multi-choice, choices: [windows, macos, linux], default: [windows, macos]}
  - {id: summary, type: text, label: Summary}
  - {id: due, type: date, label: Due}
steps:
  - id: count
    kind: prompt
    title: Count
    phase: detection-analysis
    questions:
      - {id: affected, type: integer, min: 0, max: "{{ inputs.installed }}", label: Hosts affected}
  - id: collect
    kind: manual
    title: Collect
    phase: detection-analysis
    instructions: Collect it.
    checklist: ["Image the disk"]
    evidence:
      - {id: disk, description: The disk image}
      - {id: memory, description: A memory capture}
  - id: go
    kind: decision
    title: Go?
    phase: containment
    question: "**Contain** the `{{ answers.affected }}` hosts?"
    choices:
      - {id: "yes", label: "**Yes**", description: "When *any* host beacons"}
      - {id: "no", label: "No", next: end}
  - id: isolate
    kind: manual
    title: Isolate
    phase: containment
    on_failure: continue
    instructions: Isolate them.
"""


@pytest.fixture
def checks(isolated: Path) -> Path:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "checks.yaml").write_text(CHECKS)
    return isolated


def opened(tty: Pty) -> str:
    tty.expect("Opened ")
    return tty.expect(":")


def values_set(run_ir, incident: str) -> dict[str, object]:
    return {e["data"]["name"]: e["data"]["value"] for e in timeline(run_ir, incident) if e["kind"] == "input.set"}


def test_inputs_refuse_what_is_out_of_bounds_ambiguous_or_not_a_date_and_say_why(run_ir, checks):
    tty = Pty("run", "checks", "--dry-run", env={"IR_TZ": "Europe/Berlin"})
    incident = opened(tty)
    tty.answer("Hosts installed (integer, at least 0)\n  > ", "-3")
    tty.answer("  -3 is less than the minimum, 0\nHosts installed (integer, at least 0)\n  > ", "5")
    tty.answer("First seen (datetime)\n  > ", "2026-03-29 14:02 PST")
    tty.answer("  PST is ambiguous: use America/Los_Angeles or -08:00\n  > ", "2026-03-29 14:02 EST")
    tty.answer("  EST is ambiguous: use America/New_York or -05:00\n  > ", "2026-03-29 14:02")
    tty.expect("  no zone given: read in Europe/Berlin (IR_TZ) as 2026-03-29 14:02:00 CEST (+02:00)\n")
    tty.answer("  1. windows\n  2. macos\n  3. linux\n  several: numbers or names, e.g. 1 3 or 1,3\n"
               "  > [default: windows, macos] ", "1 3")
    tty.answer("Summary (text)\n  several lines: an empty line ends the text\n  > ", "line one")
    tty.answer("  >", "line two")
    tty.answer("  >", "")
    tty.answer("Due (date, YYYY-MM-DD)\n  > ", "next friday")
    tty.answer("  a date like 2026-07-22 is needed\nDue (date, YYYY-MM-DD)\n  > ", "20260403")
    tty.answer("  a date like 2026-07-22 is needed\nDue (date, YYYY-MM-DD)\n  > ", "2026-04-03")
    tty.answer("Hosts affected (integer, at least 0)\n  > ", "6")
    tty.answer("  6 is more than the maximum, 5 (inputs.installed)\nHosts affected (integer, at least 0)\n  > ", "5")
    tty.answer("done? [Y/n] >", "p")
    assert tty.close() == 0
    assert values_set(run_ir, incident) == {
        "inputs.installed": 5, "inputs.seen": "2026-03-29T14:02:00+02:00[Europe/Berlin]",
        "inputs.platforms": ["windows", "linux"], "inputs.summary": "line one\nline two", "inputs.due": "2026-04-03",
        "answers.affected": 5}


@pytest.mark.parametrize(("typed", "picked"), [("1,3", ["windows", "linux"]), ("Linux windows", ["linux", "windows"]),
                                               ("2", ["macos"]), ("", ["windows", "macos"])])
def test_multi_choice_takes_numbers_names_and_commas(run_ir, checks, typed, picked):
    tty = Pty("run", "checks", "--dry-run")
    incident = opened(tty)
    tty.answer("Hosts installed (integer, at least 0)\n  > ", "1")
    tty.answer("First seen (datetime)\n  > ", "2026-03-29T14:02-07:00")
    tty.answer("  > [default: windows, macos] ", typed)
    tty.answer("Summary (text)", "")
    tty.child.sendeof()
    assert tty.close() == 0
    assert values_set(run_ir, incident)["inputs.platforms"] == picked


def test_a_multi_choice_answer_that_is_not_a_choice_is_asked_again(run_ir, checks):
    tty = Pty("run", "checks", "--dry-run")
    opened(tty)
    tty.answer("Hosts installed (integer, at least 0)\n  > ", "1")
    tty.answer("First seen (datetime)\n  > ", "2026-03-29T14:02-07:00")
    tty.answer("  > [default: windows, macos] ", "1 bsd 9")
    tty.expect("  bsd, 9 not among the choices: windows, macos, linux\nplatforms (multi-choice)\n")
    tty.child.sendeof()
    assert tty.close() == 0


def test_a_time_without_a_zone_says_the_system_zone_it_was_read_in(run_ir, checks):
    tty = Pty("run", "checks", "--dry-run", env={"TZ": "America/New_York"})
    incident = opened(tty)
    tty.answer("Hosts installed (integer, at least 0)\n  > ", "1")
    tty.answer("First seen (datetime)\n  > ", "2026-03-29 14:02")
    tty.expect("  no zone given: read in America/New_York (the system zone) as 2026-03-29 14:02:00 EDT (-04:00)\n")
    tty.child.sendeof()
    assert tty.close() == 0
    assert values_set(run_ir, incident)["inputs.seen"] == "2026-03-29T14:02:00-04:00[America/New_York]"


def reach_collect(tty: Pty) -> str:
    incident = opened(tty)
    for prompt, typed in (("Hosts installed", "3"), ("First seen", "2026-03-29T14:02Z"), ("[default: windows", ""),
                          ("Summary", "s"), ("  >", ""), ("Due", "2026-04-03"), ("Hosts affected", "2")):
        tty.answer(prompt, typed)
    return incident


def test_checklist_evidence_and_failure_ask_until_the_answer_means_something(run_ir, checks, tmp_path):
    (tmp_path / "disk.img").write_bytes(b"disk")
    tty = Pty("run", "checks", "--dry-run")
    incident = reach_collect(tty)
    tty.expect("Collect it.\n  evidence to capture: The disk image (disk)\n  evidence to capture: A memory capture (memory)\n")
    tty.answer("  ☐ Image the disk  done? [Y/n] >", "?")
    hint = ("    '{}' is not an answer here: y or Enter: done; n: not yet (asked again when you complete the step); "
            "p: pause\n  ☐ Image the disk  done? [Y/n] >")
    tty.answer(hint.format("?"), "help")
    tty.answer(hint.format("help"), "x")
    tty.answer(hint.format("x"), "n")
    tty.expect("    left open: asked again when you complete the step\n")
    tty.answer("[p]ause >", "f")
    tty.answer(f"  Marking it failed stops the run here (exit 4); `ir resume {incident}` runs this step again. "
               "Mark it failed? [y/N] >", "")
    tty.answer("  not marked failed\n[c]omplete", "c")
    tty.answer("  ☐ Image the disk  done? [Y/n] >", "y")     # the open item is asked again on completing
    tty.expect("  evidence not recorded yet: The disk image (disk)\n")
    choose = "  [r]ecord it now, [n]ot captured (say why, or n and why), or [b]ack to the step >"
    tty.answer(choose, "x")
    tty.answer("    answer r, n or b\n" + choose, "r")
    tty.answer("  file (Enter: none, describe it only) >", str(tmp_path / "disk.img"))
    tty.answer("  keep a private copy in the incident store? [y/N] >", "")
    tty.answer("  what is it? >", "dd image of WS-042")
    tty.expect("  evidence not recorded yet: A memory capture (memory)\n")
    tty.answer(choose, "n")
    tty.answer("  why is it not captured? >", "host was rebooted")
    tty.expect("Contain the 2 hosts?\n  1. Yes\n     When any host beacons\n  2. No\n")
    tty.answer("  choice number", "1")
    tty.answer("[p]ause >", "f")
    tty.answer("  Marking it failed records it and goes on with the next step. Mark it failed? [y/N] >", "y")
    tty.answer("  what failed? >", "EDR offline")
    assert tty.close() == 0
    decision = tty.seen[tty.seen.index("Go? 3/4"):tty.seen.index("Isolate 4/4")]
    assert "**" not in decision and "`" not in decision and "*" not in decision
    events = timeline(run_ir, incident)
    at_collect = [(e["kind"], e["message"], unsealed(e["data"])) for e in events if e["step"] == "collect"
                  and e["kind"] in ("evidence", "note", "checklist.checked")]
    assert at_collect[0] == ("checklist.checked", "done: Image the disk", {"item": 0})
    assert at_collect[1][:2] == ("evidence", "dd image of WS-042") and at_collect[1][2]["item"] == "disk"
    assert at_collect[2] == ("note", "evidence memory not captured: host was rebooted",
                             {"evidence": "memory", "captured": False})
    assert [e["message"] for e in events if e["kind"] == "step.failed"] == ["EDR offline"]


def test_failing_a_step_that_stops_the_run_asks_first_then_stops(run_ir, checks):
    tty = Pty("run", "checks", "--dry-run")
    incident = reach_collect(tty)
    tty.answer("done? [Y/n] >", "y")
    tty.answer("[p]ause >", "f")
    tty.answer("Mark it failed? [y/N] >", "y")
    tty.answer("  what failed? >", "no disk")
    assert tty.close() == 4
    assert tty.rest().endswith(f"error: step collect failed: no disk\n  fix: fix what failed, then `ir resume "
                               f"{incident}` runs the step again\n")


def supply_chain_until_inventory(isolated: Path) -> Path:
    """An answers file for the bundled supply-chain playbook that answers everything before its inventory counts
    (inputs from their examples), so that the person at the terminal is asked the counts first."""
    from ir.format.catalog import Catalog
    from ir.integrations.registry import capabilities

    playbook = Catalog(capabilities).load("supply-chain").playbook
    steps: dict[str, object] = {}
    for step in playbook.steps[:playbook.steps.index(playbook.step("inventory_counts"))]:
        steps[step.id] = "no_exclusions" if step.kind == "decision" else {"status": "completed"}
    given = {"inputs": {v.id: v.example for v in playbook.inputs if v.example is not None},
             "roles": {r.id: "Dana Reyes" for r in playbook.roles}, "steps": steps}
    (path := isolated / "until-inventory.json").write_text(json.dumps(given))
    return path


def test_the_bundled_supply_chain_counts_stay_within_the_hosts_installed(run_ir, isolated):
    tty = Pty("run", "supply-chain", "--dry-run", "--answers", str(supply_chain_until_inventory(isolated)))
    incident = opened(tty)
    installed = "Hosts with the product installed (any version) since the window started (integer, at least 0)\n  > "
    affected = "Hosts that had an affected version (integer, at least 0)\n  > "
    tty.answer(installed, "-3")
    tty.answer("  -3 is less than the minimum, 0\n" + installed, "3")
    tty.answer(affected, "5")
    tty.answer("  5 is more than the maximum, 3 (answers.hosts_installed)\n" + affected, "2")
    tty.answer("Hosts the inventory could not cover", "4")
    tty.answer("  4 is more than the maximum, 3 (answers.hosts_installed)\n", "1")
    tty.expect("inventory: 2 of 3 hosts; 1 not covered")
    tty.child.sendeof()
    assert tty.close() == 0
    counts = {e["data"]["name"]: e["data"]["value"] for e in timeline(run_ir, incident) if e["kind"] == "input.set"
              and e["step"] == "inventory_counts"}
    assert counts == {"answers.hosts_installed": 3, "answers.hosts_affected": 2, "answers.hosts_not_covered": 1}


def test_an_answers_file_out_of_a_bound_it_names_is_refused_before_anything_runs(run_ir, isolated, tree):
    (isolated / "over.yaml").write_text("steps:\n  inventory_counts: {hosts_installed: 3, hosts_affected: 5}\n"
                                        "  hunt_findings: {hosts_executed: 2, hosts_c2: 3}\n")
    before = tree()
    result = run_ir("run", "supply-chain", "--dry-run", "--non-interactive", "--answers", "over.yaml")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "over.yaml:2:58: steps.inventory_counts.hosts_affected: 5 is out of bounds: 5 is more than the maximum, 3 "
        "(answers.hosts_installed)\n"
        "over.yaml:3:48: steps.hunt_findings.hosts_c2: 3 is out of bounds: 3 is more than the maximum, 2 "
        "(answers.hosts_executed)\n")
    assert tree() == before
