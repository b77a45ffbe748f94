"""The facilitator at a real pseudo-terminal: jumps that never crash (over the questions a step reads, into an
included playbook), the scenario's inputs and players filled in, injects listed by id, an exercise ended early."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_docs import sections
from test_tabletop import DRILL, DRILL_SCENARIO

from pseudo import Pty
from runs import install_demo, kinds, timeline

MENU = "o[b]servation  end: [h]otwash >"


def opened(tty: Pty) -> str:
    tty.expect("Opened exercise ")
    return tty.expect(":")


def test_a_jump_over_the_questions_a_decision_reads_asks_them_and_resume_goes_on(run_ir):
    tty = Pty("tabletop", "supply-chain", "--scenario", "3cx-2023")
    incident = opened(tty)
    before = tty.answer("Channel for announcements to affected users (string)\n", "")  # the only input asked
    assert "Vendor" not in before and "who?" not in before  # the scenario's inputs and players are not asked
    assert tty.answer_each("done? [Y/n", "n", MENU) == 6  # intake's checklist, left open
    tty.child.sendline("j")
    tty.answer("  jump to which step (its path)? >", "affected")
    said = "affected reads answers.{}, never asked (the exercise jumped over inventory_counts): asking it now\n"
    tty.expect(said.format("hosts_installed"))
    tty.answer("Hosts with the product installed (any version) since the window started (integer, at least 0)\n"
               "  > [Enter: 212] ", "40")
    tty.expect(said.format("hosts_affected"))
    tty.answer("Hosts that had an affected version (integer, at least 0)\n  > [Enter: 14] ", "50")
    tty.answer("  50 is more than the maximum, 40 (answers.hosts_installed)\n", "4")
    tty.expect(said.format("hosts_not_covered"))
    tty.answer("  > [Enter: 3] ", "1")
    tty.answer("(inventory: 4 of 40 hosts; 1 not covered)\n", "p")
    assert tty.close() == 0
    assert "Traceback" not in tty.seen and "'dict object'" not in tty.seen

    resumed = Pty("resume", incident)
    resumed.answer("(inventory: 4 of 40 hosts; 1 not covered)\n", "2")
    resumed.answer("Document why we are not affected; block the bad builds 10/124", "p")  # at the checklist
    assert resumed.close() == 0
    events = timeline(run_ir, incident)
    given = {e["data"]["name"]: (e["step"], e["data"]["value"]) for e in events if e["kind"] in ("input.set",
                                                                                               "role.assigned")}
    assert given["answers.hosts_affected"] == ("inventory_counts", 4)
    assert given["inputs.vendor"] == (None, "3CX") and given["roles.commander"] == (None, "Dana Reyes")
    assert given["roles.risk"] == (None, "Ruth Adler")  # each of the scenario's 13 players holds their role
    assert "decision affected" in kinds(events)
    report = run_ir("export", incident, "--format", "markdown").stdout
    assert "not assigned" not in sections(report).get("Roles", report)


def test_a_jump_into_an_included_playbook_sets_the_inputs_its_include_step_gives(run_ir, isolated):
    install_demo(isolated)
    tty = Pty("tabletop", "demo")
    incident = opened(tty)
    tty.answer("vendor (string)\n  > [Enter: 3CX] ", "ACME")
    tty.answer("severity (choice)", "")
    tty.answer("first_seen (datetime, optional)", "")
    tty.answer("Incident commander: who?", "")
    tty.answer_each("done? [Y/n", "y", MENU)
    tty.child.sendline("j")
    tty.answer("  jump to which step (its path)? >", "sub/isolate")
    tty.answer("Isolate the hosts running ACME.\n", "p")
    assert tty.close() == 0
    events = timeline(run_ir, incident)
    assert [(e["step"], e["message"]) for e in events if e["kind"] == "input.set" and e["step"]] == [
        ("sub", "sub/inputs.what = ACME")]


@pytest.fixture
def drill(isolated: Path) -> Path:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "drill.yaml").write_text(DRILL)
    (isolated / "scenarios").mkdir()
    (isolated / "scenarios" / "drill-one.yaml").write_text(DRILL_SCENARIO.format(compression=1))
    return isolated


def test_adhoc_lists_the_injects_not_delivered_yet(run_ir, drill):
    tty = Pty("tabletop", "drill", "--scenario", "drill-one")
    opened(tty)
    tty.answer(MENU, "i")
    tty.answer(MENU, "a")
    tty.answer("  injects not delivered yet:\n    press: A reporter calls\n    recovery: Recovery begins\n"
               "    watching: Watching\n    one_minute: A minute in\n  inject id (from the scenario) or text >", "press")
    tty.answer("INJECT press (sent by the facilitator): A reporter calls", "p")
    assert tty.close() == 0


def test_the_facilitator_ends_the_exercise_early_and_goes_to_the_hotwash(run_ir, drill):
    tty = Pty("tabletop", "drill", "--scenario", "drill-one")
    incident = opened(tty)
    tty.answer(MENU, "h")
    end = ("  Ending the exercise here skips intake and every step after it; the hotwash follows.\n"
           "  End the exercise now? [y/N] >")
    tty.answer(end, "")     # not confirmed: back to the step
    tty.answer(MENU, "h")
    tty.answer(end, "y")
    tty.expect("inject beacon did not arrive (step isolate)\n")
    tty.answer("Hotwash. One item per line; an empty line ends the list.\nObjective 1: Isolate the host within the "
               "hour.\n", "U")
    tty.answer("  why >", "ended before containment")
    tty.answer("What went well?\n  >", "")
    tty.answer("What should improve?\n  >", "")
    tty.answer("Corrective action (empty to finish) >", "")
    tty.expect(f"Exercise finished: {incident}.")
    assert tty.close() == 0
    events = timeline(run_ir, incident)
    assert [e["message"] for e in events if e["kind"] == "step.skipped"] == ["facilitator ended the exercise at intake"]
    assert "step.started decide" not in kinds(events) and "hotwash" in kinds(events)
    resumed = run_ir("resume", incident)  # the hotwash is held once
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("the hotwash was held already\nExercise finished: ")
    assert kinds(timeline(run_ir, incident)).count("hotwash") == 1


def test_the_end_of_input_during_the_hotwash_is_no_crash_and_resume_holds_it(run_ir, drill):
    tty = Pty("tabletop", "drill", "--scenario", "drill-one")
    incident = opened(tty)
    tty.answer(MENU, "h")
    tty.answer("  End the exercise now? [y/N] >", "y")
    tty.expect("Objective 1: Isolate the host within the hour.\n")
    tty.child.sendeof()
    tty.expect("the hotwash was interrupted; nothing of it was recorded: `ir resume` holds it again\n")
    assert tty.close() == 0
    resumed = Pty("resume", incident)
    resumed.answer("Objective 1: Isolate the host within the hour.\n", "")
    for prompt in ("What went well?\n  >", "What should improve?\n  >", "Corrective action (empty to finish) >"):
        resumed.answer(prompt, "")
    assert resumed.close() == 0
    assert kinds(timeline(run_ir, incident)).count("hotwash") == 1


def test_a_scenario_input_the_playbook_lacks_or_of_the_wrong_type_is_refused_with_its_line(run_ir, isolated, tree):
    (isolated / "bad.yaml").write_text('id: bad-drill\ntitle: Bad\nversion: "1.0.0"\nplaybook: supply-chain\n'
                                       "inputs:\n  vendr: 3CX\n  advisory_url: not a url\n  lookback_from: next friday\n")
    before = tree()
    result = run_ir("tabletop", "supply-chain", "--scenario", "bad.yaml", "--non-interactive")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "bad.yaml:6:10: inputs.vendr: the playbook supply-chain has no input 'vendr'\n"
        "  fix: its inputs: severity, vendor, product, search_term, process_name, suspect_files, c2_domains, "
        "c2_lookup_path, affected_versions, advisory_url, ioc_source, lookback_from, detection_source, users_channel\n"
        "bad.yaml:7:17: inputs.advisory_url: 'not a url' is not a valid url: a full http(s):// URL is needed\n"
        "bad.yaml:8:18: inputs.lookback_from: 'next friday' is not a valid date: a date like 2026-07-22 is needed\n")
    assert tree() == before


def test_tabletop_list_shows_the_scenarios_and_their_playbooks(run_ir, drill):
    result = run_ir("tabletop", "--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SCENARIO", "PLAYBOOK", "TITLE", "SOURCE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["3cx-2023", "supply-chain"], ["infostealer-dev-laptop", "malware-host"], ["ivanti-2024", "edge-compromise"],
        ["leaked-key-public-repo", "cloud-credential"], ["telemessage-2025", "exploited-vulnerability"],
        ["vendor-support-breach", "vendor-breach-notice"], ["drill-one", "drill"]]
    assert lines[-1].endswith(f"  local: {drill}/scenarios/drill-one.yaml")
    missing = run_ir("tabletop")
    assert (missing.returncode, missing.stderr) == (2, "error: give the playbook to exercise\n"
                                                       "  fix: run `ir tabletop --list` for the scenarios and their "
                                                       "playbooks\n")


JUMPY = """\
id: jumpy
title: Jumpy
version: "1.0.0"
steps:
  - {id: start, kind: manual, title: Start, phase: detection-analysis, instructions: go}
  - id: ask
    kind: prompt
    title: Ask
    phase: detection-analysis
    questions:
      - {id: hosts, type: integer, label: Hosts}
  - {id: target, kind: manual, title: Target, phase: containment, instructions: here}
  - {id: later, kind: manual, title: Later, phase: containment, instructions: "n", when: "answers.hosts > 0"}
"""


def test_a_step_after_the_one_a_jump_lands_on_asks_what_it_reads_and_the_jump_went_over(isolated, make_store):
    """Found in review: only the landing step caught up, so `later` (whose condition reads an answer the jump went
    over) failed on every resume."""
    from ir.format.catalog import Catalog
    from ir.integrations.registry import capabilities
    from ir.run.drive import drive, start
    from ir.run.outbox import open_outbox
    from ir.run.responder import Outcome

    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "jumpy.yaml").write_text(JUMPY)
    asked: list[str] = []
    said: list[str] = []

    class Facilitator:
        def value(self, var, key, problem):  # noqa: ANN001, ANN201
            asked.append(key)
            return "3"

        def roles(self, asked):  # noqa: ANN001, ANN201
            pass

        def decide(self, place, question, session):  # noqa: ANN001, ANN201
            raise AssertionError("no decision here")

        def act(self, place, text, checklist, session):  # noqa: ANN001, ANN201
            return Outcome("skipped", "jumped", jump="target") if place.path == "start" else Outcome("completed")

        def heading(self, *shown):  # noqa: ANN002, ANN201
            pass

        def say(self, text):  # noqa: ANN001, ANN201
            said.append(text)

    store = make_store()
    bundle = Catalog(capabilities).bundle("jumpy")
    incident = start(store, bundle, "dana", live=False, exercise=True)
    outbox = open_outbox(store, bundle, incident, "dana", say=said.append)
    assert drive(store, bundle, incident.id, "dana", Facilitator(), outbox, wait=1).status == "finished"
    assert asked == ["ask.hosts"]
    assert "later reads answers.hosts, never asked (the exercise jumped over ask): asking it now" in said
    assert store.steps(incident.id)["later"].status == "completed"  # its condition read 3 > 0
