"""Know where you are and what is due (issue 16): the heading names the included playbook and the step's place in
the whole incident; `o` lists what is done, what is next and what is overdue, with phase progress that counts the
branch taken; a step past its SLA inside an included playbook is announced at the terminal and flagged by
`ir status`."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from pseudo import Pty

MENU = "[f]ailed [n]ote [e]vidence [o]verview [u] correct [p]ause >"

OUTER = """\
id: outer
title: Outer
version: "1.0.0"
steps:
  - id: triage
    kind: decision
    title: Triage
    phase: detection-analysis
    question: Real?
    choices:
      - {id: "yes", label: "Yes", next: report}
      - {id: "no", label: "No"}
  - id: dismiss
    kind: manual
    title: Dismiss
    phase: detection-analysis
    instructions: Close it.
  - id: report
    kind: include
    title: Report
    phase: containment
    playbook: sitrep
  - id: wrap
    kind: manual
    title: Wrap up
    phase: recovery
    instructions: Done.
"""
SITREP = """\
id: sitrep
title: Situation report
version: "1.0.0"
steps:
  - id: draft
    kind: manual
    title: Draft it
    phase: detection-analysis
    sla: 1s
    instructions: Write it.
  - id: send
    kind: manual
    title: Send it
    phase: detection-analysis
    instructions: Send it.
"""


@pytest.fixture
def outer(isolated: Path) -> Path:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "outer.yaml").write_text(OUTER)
    (isolated / "playbooks" / "sitrep.yaml").write_text(SITREP)
    return isolated


def test_an_overdue_step_inside_an_include_is_announced_listed_and_flagged_by_status(run_ir, outer):
    tty = Pty("run", "outer", "--dry-run")
    tty.expect("Opened ")
    incident = tty.expect(":")
    tty.answer("choice number", "1")
    heading = tty.answer(MENU, "o")
    assert "Draft it 3/5 · Situation report 1/2 · containment · SLA 1s" in heading
    assert "Draft it report" not in heading  # not the include step's id with a counter of its own
    shown = tty.expect(MENU)
    assert re.search(r"│ detection-analysis │ 1 +│ 1 +│", shown)  # the branch taken: dismiss is not counted
    assert re.search(r"│ containment +│ 0 +│ 2 +│", shown)
    assert "done: 1 step(s), the last: triage\nnext: report/send, wrap\n" in shown
    time.sleep(2.2)
    tty.child.sendline("o")
    shown = tty.expect(MENU)
    assert re.search(r"overdue: report/draft \(SLA 1s, \ds over\)\n", shown)  # in the overview
    assert re.search(r"\n  overdue: report/draft \(SLA 1s, \ds over\)\n", shown)  # announced, once
    tty.child.sendline("o")
    again = tty.expect(MENU)
    assert "\n  overdue:" not in again
    status = run_ir("status", incident).stdout
    assert re.search(r"overdue: report/draft \(SLA 1s, \d+s over\)", status)
    tty.child.sendline("p")
    assert tty.close() == 0
    assert "Traceback" not in tty.seen


STATUS = """\
id: status
title: Status
version: "1.0.0"
inputs:
  - {id: interval_minutes, type: integer, default: 0}
steps:
  - {id: post, kind: note, title: Post it, phase: detection-analysis, message: "status posted"}
"""
UPDATED = """\
id: updated
title: Updated
version: "1.0.0"
steps:
  - {id: update, kind: include, title: Status update, phase: detection-analysis, playbook: status}
  - {id: work, kind: manual, title: Work, phase: containment, instructions: Work.}
  - {id: again, kind: include, title: Next update, phase: containment, playbook: status}
  - {id: more, kind: manual, title: More work, phase: containment, instructions: More.}
"""


def test_a_status_update_due_is_announced_once_until_the_next_one(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "status.yaml").write_text(STATUS)
    (isolated / "playbooks" / "updated.yaml").write_text(UPDATED)
    tty = Pty("run", "updated", "--dry-run")
    tty.expect("status posted")
    at_work = tty.expect(MENU)
    found = re.findall(r"\n  status update due since (\d\d:\d\d) UTC \(every 0 minutes; the last: update\)\n",
                       at_work)
    assert len(found) == 1
    tty.child.sendline("o")
    assert "\n  status update due" not in tty.expect(MENU)  # said once
    tty.child.sendline("c")
    tty.expect("status posted")
    at_more = tty.expect(MENU)
    assert re.search(r"\n  status update due since \d\d:\d\d UTC \(every 0 minutes; the last: again\)\n", at_more)
    tty.child.sendline("p")
    assert tty.close() == 0
    incident = tty.seen.split("Opened ", 1)[1].split(":", 1)[0]
    assert re.search(r"\nstatus update due since \d\d:\d\d UTC \(every 0 minutes; the last: again\)\n",
                     run_ir("status", incident).stdout)
    assert "Traceback" not in tty.seen


LIVE_UPDATED = """\
id: updated
title: Updated
version: "1.0.0"
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: update, kind: include, title: Status update, phase: detection-analysis, playbook: status}
  - {id: work, kind: manual, title: Work, phase: containment, instructions: Work.}
"""


def test_a_status_update_due_in_a_live_incident_is_posted_once_to_its_channel(run_ir, isolated, slack_server):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "status.yaml").write_text(STATUS)
    (isolated / "playbooks" / "updated.yaml").write_text(LIVE_UPDATED)
    (isolated / "ir.toml").write_text("[slack]\ntimeout = 5\n")
    env = {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url, "IR_SEND_DELAY": "0"}
    tty = Pty("run", "updated", env=env)
    tty.expect("status posted")
    at_work = tty.expect(MENU)
    [due] = re.findall(r"\n  (status update due since \d\d:\d\d UTC \(every 0 minutes; the last: update\))\n", at_work)
    tty.child.sendline("o")  # back at the menu: said once, posted once
    tty.expect(MENU)
    tty.child.sendline("p")
    assert tty.close() == 0
    incident = tty.seen.split("Opened ", 1)[1].split(":", 1)[0]
    resumed = Pty("resume", incident, env=env)  # a new terminal says it again; Slack is not told twice
    assert "status update due since" in resumed.expect(MENU)
    resumed.child.sendline("p")
    assert resumed.close() == 0
    channel = f"ir-{incident.lower()}"
    reminders = [m["text"] for m in slack_server.messages(channel) if m["text"].startswith("Reminder:")]
    assert [r.split("\n")[0] for r in reminders] == [f"Reminder: {due}"]
    assert "Traceback" not in tty.seen + resumed.seen
