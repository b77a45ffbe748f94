"""Playbooks and helpers shared by the runner's tests: a small playbook that uses every step kind, and readers
for what the CLI prints."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

DEMO = """\
id: demo
title: Demo response
version: "1.0.0"
incident_title: "Compromised {{ inputs.vendor }} software"
roles:
  - {id: commander, title: Incident commander}
inputs:
  - {id: vendor, type: string, example: 3CX}
  - {id: severity, type: choice, choices: [low, medium, high, critical], default: high}
  - {id: first_seen, type: datetime, required: false}
steps:
  - id: intake
    kind: manual
    title: Intake
    phase: detection-analysis
    role: commander
    sla: 15m
    instructions: "Look at **{{ inputs.vendor }}** installs."
    checklist: ["Check EDR", "Check proxy logs"]
  - id: scope
    kind: prompt
    title: Scope
    phase: detection-analysis
    questions:
      - {id: hosts, type: integer, example: 3}
  - id: affected
    kind: decision
    title: Affected?
    phase: detection-analysis
    question: "{{ answers.hosts }} hosts run it. Affected?"
    default: "yes"
    choices:
      - {id: "yes", label: "Yes, contain", next: sub}
      - {id: "no", label: "No, close", next: end}
  - id: sub
    kind: include
    title: Containment
    phase: containment
    playbook: sub
    inputs: {what: "{{ inputs.vendor }}"}
  - id: tell
    kind: notify
    title: Tell the channel
    phase: containment
    milestone: contained
    message: "Contained {{ inputs.vendor }} ({{ incident.id }})"
  - id: ticket
    kind: ticket
    action: create
    title: Open the ticket
    phase: recovery
    summary: "{{ incident.title }}"
"""

# Its steps' own phase is detection-analysis; run from demo's `sub` step they are recorded in containment.
SUB = """\
id: sub
title: Containment sub-playbook
version: "1.0.0"
inputs:
  - {id: what, type: string}
steps:
  - id: log
    kind: note
    title: Log it
    phase: detection-analysis
    message: "containing {{ inputs.what }}"
  - id: isolate
    kind: manual
    title: Isolate hosts
    phase: detection-analysis
    instructions: "Isolate the hosts running {{ inputs.what }}."
"""


def store_with_incident(path: Path | Any, mode: str = "dry-run") -> Any:
    """A store (an SQLite file at `path`, or the store given) holding one incident, IR-1, with its opening event."""
    from ir.store.records import Draft, Incident
    from ir.store.sqlite import SqliteStore

    store = SqliteStore(path) if isinstance(path, Path) else path
    store.create(Incident("IR-1", "demo", "1.0.0", "h" * 64, "Beacon", "high", mode, False,
                          "2026-03-29T21:00:00.000Z", "dana"), {}, Draft("incident.opened", "dana", "opened"))
    return store


def install_demo(work: Path) -> None:
    """The demo playbooks in ./playbooks, where `ir` finds them."""
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / "demo.yaml").write_text(DEMO)
    (work / "playbooks" / "sub.yaml").write_text(SUB)


def incident_id(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"^Opened (IR-\d{8}-[0-9A-Z]{6})", result.stdout, re.M)
    assert match, f"no incident opened:\n{result.stdout}\n{result.stderr}"
    return match.group(1)


def timeline(run_ir: Any, incident: str) -> list[dict[str, Any]]:
    result = run_ir("timeline", incident, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def unsealed(data: dict[str, Any]) -> dict[str, Any]:
    """An event's data without the seals of the state rows it wrote (ir.store.state), which every event that
    changes state carries."""
    return {k: v for k, v in data.items() if k != "state"}


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['kind']} {e['step']}" if e["step"] else e["kind"] for e in events]


# A process that opens the store its environment names (IR_STORE, else the file in IR_HOME) and lists its incidents,
# as `ir incidents` does, without the command line's start-up: processes started together meet at the store sooner,
# and each costs a tenth of the CPU (`python -c OPEN_STORE`).
OPEN_STORE = """
import os
from ir.store.location import open_store
store = open_store(os.environ.get("IR_STORE"))
store.incidents()
store.close()
"""
