"""Every bundled scenario delivers each inject before the decision it tests.

What "tests a decision" means. The scenario format links an inject to no decision: `expected_decisions` names the
decisions, and an inject has a trigger (`at`) and the actions expected after it (`expect`). The convention, for
every scenario in playbooks/scenarios/: **an inject tests decision D when one of its `expect` items names D's step
path in backticks** (for example "Decide `data_exposure` now: ..."), D being a decision of the scenario's playbook
(`include_step/decision` inside an included playbook). Backticked text that is not a decision's path (`ir note`)
names nothing.

What "before" means, from docs/tabletop.md's triggers. The playbook's steps, with each included playbook's steps
after its include step, are in the order a run can meet them (`next` may only lead forward, so a step listed later
never runs before one listed earlier):
- `{step: S}` is delivered when S starts: S must be D itself (the room hears it before answering) or come before D;
- `{decision: T}` right after T is taken: T must come before D;
- `{phase: P}` at the first step of P that runs: P's first step must come before D or be D;
- `{clock: ...}` and `{adhoc: true}` depend on the pace of the room or on the facilitator, so an inject with one of
  them cannot promise to arrive before a decision: it must not name one.
Then, for each scenario with an answers file in tests/answers/tabletop/, the unattended run shows it: every such
inject that arrived arrived before D was taken.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runs import timeline

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_FILES = sorted((ROOT / "playbooks" / "scenarios").glob("*.yaml"))
TABLETOP_ANSWERS = Path(__file__).parent / "answers" / "tabletop"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def ordered_steps(playbook_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """The playbook's steps in order, each with its `path`; an include step is followed by its playbook's steps."""
    out = []
    for step in _load(ROOT / "playbooks" / f"{playbook_id}.yaml")["steps"]:
        out.append({**step, "path": prefix + step["id"]})
        if step["kind"] == "include":
            out += ordered_steps(step["playbook"], f"{prefix}{step['id']}/")
    return out


def decisions_named(inject: dict[str, Any], decisions: set[str]) -> list[str]:
    named = [name for item in inject.get("expect", []) for name in re.findall(r"`([^`]+)`", item)]
    return [name for name in dict.fromkeys(named) if name in decisions]


def delivery(trigger: dict[str, Any], steps: list[dict[str, Any]]) -> tuple[int | None, bool]:
    """(position of the step at which the inject arrives, whether it arrives before that step's decision is
    taken); None when the trigger has no place in the step order (clock, ad hoc)."""
    position = {s["path"]: n for n, s in enumerate(steps)}
    if "step" in trigger and trigger["step"]:
        return position[trigger["step"]], True
    if trigger.get("decision"):
        return position[trigger["decision"]], False
    if trigger.get("phase"):
        return next(n for n, s in enumerate(steps) if s["phase"] == trigger["phase"]), True
    return None, False


CASES = []
for _file in SCENARIO_FILES:
    _scenario = _load(_file)
    _steps = ordered_steps(_scenario["playbook"])
    _decisions = {s["path"] for s in _steps if s["kind"] == "decision"}
    CASES += [(_file.stem, inject["id"], decision) for inject in _scenario["injects"]
              for decision in decisions_named(inject, _decisions)]


def test_every_bundled_scenario_is_checked():
    assert SCENARIO_FILES
    untested = {f.stem for f in SCENARIO_FILES} - {scenario for scenario, _, _ in CASES}
    assert untested == set(), "each scenario names, in an inject's `expect`, at least one decision it tests"
    for file in SCENARIO_FILES:  # the triggers name steps and decisions the playbook has
        scenario = _load(file)
        paths = {s["path"] for s in ordered_steps(scenario["playbook"])}
        for inject in scenario["injects"]:
            at = inject["at"]
            assert at.get("step", next(iter(paths))) in paths and at.get("decision", next(iter(paths))) in paths


def test_the_3cx_scenario_tests_its_key_decisions_with_injects():
    tested = {decision for scenario, _, decision in CASES if scenario == "3cx-2023"}
    assert {"exclusion_audit", "data_exposure", "hands_on_keyboard", "gate"} <= tested


@pytest.mark.parametrize("case", CASES, ids=[f"{s}:{i}->{d}" for s, i, d in CASES])
def test_an_inject_arrives_before_the_decision_it_tests(case):
    name, inject_id, decision = case
    scenario = _load(ROOT / "playbooks" / "scenarios" / f"{name}.yaml")
    inject = next(i for i in scenario["injects"] if i["id"] == inject_id)
    steps = ordered_steps(scenario["playbook"])
    where, before_its_own_decision = delivery(inject["at"], steps)
    assert where is not None, f"{inject_id} tests `{decision}` but arrives on the clock or ad hoc: give it a step"
    target = next(n for n, s in enumerate(steps) if s["path"] == decision)
    assert where < target or (where == target and before_its_own_decision), (
        f"{inject_id} arrives at {steps[where]['path']}, after `{decision}` is taken")


@pytest.mark.parametrize("file", [f for f in SCENARIO_FILES if (TABLETOP_ANSWERS / f.name).exists()],
                         ids=lambda f: f.stem)
def test_in_the_unattended_run_each_inject_arrives_before_the_decision_it_tests(file, run_ir):
    scenario = _load(file)
    result = run_ir("tabletop", scenario["playbook"], "--scenario", str(file), "--non-interactive",
                    "--answers", str(TABLETOP_ANSWERS / file.name))
    assert result.returncode == 0, result.stderr
    incident = re.search(r"^Opened exercise (\S+?):", result.stdout, re.M).group(1)
    events = timeline(run_ir, incident)
    arrived = {e["data"]["inject"]: n for n, e in enumerate(events) if e["kind"] == "inject" and e["data"]["inject"]}
    decided = {e["step"]: n for n, e in enumerate(events) if e["kind"] == "decision"}
    checked = [(i, d) for s, i, d in CASES if s == file.stem and i in arrived and d in decided]
    assert checked, "the unattended run delivers none of the injects that name a decision, or takes none of them"
    assert [(i, d) for i, d in checked if arrived[i] > decided[d]] == []
