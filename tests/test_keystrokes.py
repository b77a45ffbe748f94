"""Fewer keystrokes, same record (issue 16): the roles in one table, a whole checklist at once, a note on the same
line as `c`, a decision's reason beside its number, an example taken with Enter, and notify steps that go on by
themselves unless held or skipped. Each is driven through a pseudo-terminal; the timeline is read afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from pseudo import Pty
from runs import timeline

QUICK = """\
id: quick
title: Quick
version: "1.0.0"
inputs:
  - {id: vendor, example: 3CX, label: Vendor}
roles:
  - {id: commander, title: Incident commander}
  - {id: scribe, title: Scribe}
  - {id: legal, title: Legal counsel}
steps:
  - id: look
    kind: manual
    title: Look
    phase: detection-analysis
    instructions: Look at {{ inputs.vendor }}.
    checklist: ["EDR", "Proxy", "DNS"]
  - id: tell
    kind: notify
    title: Tell
    phase: detection-analysis
    message: "Looking at {{ inputs.vendor }}"
  - id: tell_again
    kind: notify
    title: Tell again
    phase: detection-analysis
    message: "Still looking"
  - id: go
    kind: decision
    title: Go?
    phase: containment
    question: Contain?
    choices:
      - {id: "yes", label: "Yes"}
      - {id: "no", label: "No"}
"""


@pytest.fixture
def quick(isolated: Path) -> Path:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "quick.yaml").write_text(QUICK)
    return isolated


def test_roles_in_one_table_checklist_at_once_a_note_beside_c_and_notify_steps_that_go_on(run_ir, quick):
    tty = Pty("run", "quick", "--dry-run", env={"IR_SEND_DELAY": "20"})
    tty.expect("Opened ")
    incident = tty.expect(":")
    tty.answer("Vendor (string)\n  > [Enter: 3CX] ", "")
    tty.expect("Roles (who holds each; Enter: done, the rest left open)\n  1. Incident commander\n  2. Scribe\n"
               "  3. Legal counsel\n")
    prompt = "  roles: number=name, several with ; (e.g. 1=Dana Reyes; 2=Lee Park) >"
    tty.answer(prompt, "1=Dana Reyes; 9=Nobody")
    tty.answer("  9=Nobody: not number=name, with a number of the table (1-3); nothing of this line was taken\n"
               + prompt, "1=Dana Reyes; 3=Tom Becker")
    tty.answer("  1. Incident commander = Dana Reyes\n  3. Legal counsel = Tom Becker\n" + prompt, "")
    tty.expect("Look at 3CX.")
    tty.answer("  ☐ EDR  done? [Y/n; a: all done] >", "a")
    tty.expect("  ✓ Proxy\n  ✓ DNS\n")
    tty.answer("[p]ause >", "c all three clean")
    tty.expect("Looking at 3CX")
    tty.answer("  goes in 20 s: Enter now, [s]kip, [h]old >", "s")
    tty.answer("  why skip it? >", "told them by phone")
    tty.expect("Still looking")
    tty.answer("  goes in 20 s: Enter now, [s]kip, [h]old >", "h")
    tty.answer("  held: c sends it, s skips it\n", "c")
    tty.answer("  choice number (and why, optional: 2 no EDR there)", "1 EDR saw a beacon")
    assert tty.close() == 0
    assert "Traceback" not in tty.seen
    events = timeline(run_ir, incident)
    assert [(e["data"]["name"], e["data"]["value"]) for e in events if e["kind"] in ("input.set", "role.assigned")] \
        == [("inputs.vendor", "3CX"), ("roles.commander", "Dana Reyes"), ("roles.scribe", None),
            ("roles.legal", "Tom Becker")]
    assert [e["message"] for e in events if e["kind"] == "checklist.checked"] == ["done: EDR", "done: Proxy",
                                                                                "done: DNS"]
    ended = [(e["kind"], e["step"], e["message"]) for e in events if e["kind"] in ("step.completed", "step.skipped")]
    assert ended == [("step.completed", "look", "all three clean"), ("step.skipped", "tell", "told them by phone"),
                     ("step.completed", "tell_again", ""), ("step.completed", "go", "EDR saw a beacon")]
    assert [e["data"]["rationale"] for e in events if e["kind"] == "decision"] == ["EDR saw a beacon"]


def to_the_first_notify_step(delay: str, vendor: str) -> tuple[Pty, str]:
    """`ir run quick` at a terminal, answered up to its first notify step (IR_SEND_DELAY `delay`): the terminal and
    the incident."""
    tty = Pty("run", "quick", "--dry-run", env={"IR_SEND_DELAY": delay})
    tty.expect("Opened ")
    incident = tty.expect(":")
    tty.answer("Vendor (string)\n  > [Enter: 3CX] ", vendor)
    tty.answer("(e.g. 1=Dana Reyes; 2=Lee Park) >", "")
    tty.answer("done? [Y/n; a: all done] >", "a")
    tty.answer("[p]ause >", "c")
    return tty, incident


def test_a_notify_step_not_held_goes_on_by_itself(run_ir, quick):
    tty, incident = to_the_first_notify_step("0.5", "ACME")
    tty.expect("Looking at ACME\n  goes in 0.5 s: Enter now, [s]kip, [h]old >")
    tty.expect("Still looking\n  goes in 0.5 s: Enter now, [s]kip, [h]old >")
    tty.answer("  choice number", "p")
    assert tty.close() == 0
    sent = [e["step"] for e in timeline(run_ir, incident) if e["kind"] == "integration.dry_run"]
    assert sent == ["tell", "tell_again"]


def test_a_key_typed_by_mistake_at_the_pause_holds_the_message_and_c_sends_it(run_ir, quick):
    """Found in review: any key but s, h and p at a notify step's pause sent the message."""
    tty, incident = to_the_first_notify_step("20", "")
    tty.answer("Looking at 3CX\n  goes in 20 s: Enter now, [s]kip, [h]old >", "x")
    tty.answer("  'x' is not an answer here; held: c sends it, s skips it\n", "c")
    tty.answer("Still looking\n  goes in 20 s: Enter now, [s]kip, [h]old >", "c")
    tty.answer("  choice number", "p")
    assert tty.close() == 0
    events = timeline(run_ir, incident)
    assert [(e["kind"], e["step"]) for e in events if e["kind"] in ("integration.dry_run", "step.completed")] == [
        ("step.completed", "look"), ("integration.dry_run", "tell"), ("step.completed", "tell"),
        ("integration.dry_run", "tell_again"), ("step.completed", "tell_again")]


@pytest.mark.parametrize("delay", ["soon", "nan", "inf", "-1", "601"])
def test_a_pause_that_is_not_seconds_is_refused_before_anything_is_stored(run_ir, quick, delay):
    """Found in review: a word was taken as 3 s without a word, and nan or inf waited for ever."""
    done = run_ir("run", "quick", "--dry-run", env={"IR_SEND_DELAY": delay}, input="3CX\n")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: IR_SEND_DELAY={delay!r} is not a pause in seconds\n"
                           "  fix: set it to seconds from 0 (no pause) to 600, or unset it for 3\n")
    assert run_ir("incidents", "--json").stdout.strip() == "[]"
