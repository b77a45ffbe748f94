"""Corrections after the fact (issue 16): an earlier answer or input corrected, a milestone set afterwards with when
it really happened, the severity changed mid-incident. Each is one append-only event beside what it corrects (the
timeline keeps both) with the state it changes, so templates, later steps and the report read the new value; the
incident's header follows from the events (ir.store.header), so `ir verify` still passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from ir.errors import IrError
from ir.format import values
from ir.format.bundle import Bundle
from ir.format.model import SEVERITIES, Milestone, PromptStep, Variable
from ir.run import reading
from ir.store.header import sets_severity
from ir.store.records import Change, Draft, Incident

MILESTONES: tuple[str, ...] = get_args(Milestone)
NAMES_HINT = "name it as inputs.ID, roles.ID, answers.ID or STEP.QUESTION (`ir timeline INCIDENT --kind input.set`)"


def target(bundle: Bundle, name: str) -> tuple[str, str, Variable]:
    """(scope, variable, its definition) that NAME corrects: `inputs.ID`, `roles.ID`, `answers.ID` (a question of
    the incident's own playbook) or `STEP_PATH.QUESTION` (any step, included playbooks' too)."""
    root = bundle.playbook
    kind, _, key = name.partition(".")
    if kind == "inputs" and (var := next((v for v in root.inputs if v.id == key), None)):
        return "", name, var
    if kind == "roles" and any(r.id == key for r in root.roles):
        return "", name, Variable(id=key, required=False)
    path, _, question = name.rpartition(".")
    for step_path, step in bundle.paths():
        if not isinstance(step, PromptStep):
            continue
        found = next((q for q in step.questions if q.id == question), None)
        if found and (step_path == path or path == "answers" and "/" not in step_path):
            return step_path.rpartition("/")[0], f"answers.{question}", found
    raise IrError(f"{name}: no input, role or question of that name in playbook {root.id}", hint=NAMES_HINT)


def _shown(value: Any) -> str:
    return "not given" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _recorded(variables: Mapping[tuple[str, str], Any], scope: str) -> dict[str, Any]:
    """The inputs and answers recorded in `scope`, as a bound's template reads them."""
    found: dict[str, Any] = {"inputs": {}, "answers": {}}
    for (where, name), value in variables.items():
        kind, _, key = name.partition(".")
        if where == scope and kind in found:
            found[kind][key] = value
    return found


def correction(bundle: Bundle, variables: Mapping[tuple[str, str], Any], name: str, raw: str, reason: str,
               actor: str) -> tuple[Draft, Change]:
    """The event and change that correct NAME to `raw`; refused (changing nothing) when NAME was never answered,
    the value is not one of its type or bounds, it is the value already, or no reason is given."""
    scope, key, var = target(bundle, name)
    if (scope, key) not in variables:
        raise IrError(f"{name} was never answered: there is nothing to correct", hint="answer it when the run asks")
    if not reason.strip():
        raise IrError(f"a correction of {name} needs a reason", hint="say why with --reason")
    try:
        value = values.parse(var, raw)
        if var.type == "integer":  # its bounds, those that name an earlier answer read from what is recorded
            value = values.within(value, *reading.bounds(var, _recorded(variables, scope)))
    except ValueError as exc:
        raise IrError(f"{name}: {raw!r} is refused: {exc}",
                      hint="give a value of its type, within its bounds") from None
    stored, was = values.to_json(value), variables[(scope, key)]
    if stored == was:
        raise IrError(f"{name} is {_shown(was)} already: there is nothing to correct")
    shown = f"{scope}/{key}" if scope else key
    incident = {"severity": stored} if sets_severity(key, scope) and stored in SEVERITIES else {}
    draft = Draft("input.corrected", actor, f"{shown} = {_shown(stored)} (was {_shown(was)}): {reason.strip()}",
                  data={"name": key, "scope": scope, "value": stored, "was": was, "reason": reason.strip()})
    changed = {(scope, key): stored}
    if key.startswith("roles.") and (person := (scope, f"people.{key.removeprefix('roles.')}")) in variables:
        changed[person] = None  # the Slack user found for the holder before is not the new holder
    return draft, Change(variables=changed, incident=incident)


def role_holder(kind: str, data: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(role, who) when an event of `kind` gives a role its holder: assigned by the run, or corrected afterwards
    (`roles.ID`); who is None for a role left open. Else None."""
    name = str(data.get("name", ""))
    if kind in ("role.assigned", "input.corrected") and name.startswith("roles."):
        return name.removeprefix("roles."), data.get("value")
    return None


def severity_change(incident: Incident, level: str, reason: str, actor: str) -> tuple[Draft, Change]:
    """The event and change that set the incident's severity to `level` mid-incident."""
    if level not in SEVERITIES:
        raise IrError(f"{level!r} is not a severity", hint=f"use one of {', '.join(SEVERITIES)}")
    if level == incident.severity:
        raise IrError(f"{incident.id} is {level} already: there is nothing to change")
    if not reason.strip():
        raise IrError("a change of severity needs a reason", hint="say why with --reason")
    draft = Draft("severity.changed", actor, f"severity {incident.severity} -> {level}: {reason.strip()}",
                  data={"severity": level, "was": incident.severity, "reason": reason.strip()})
    return draft, Change(incident={"severity": level})


def milestone_set(name: str, at: str | None, actor: str, reason: str | None = None) -> Draft:
    """A milestone set afterwards, at the moment it really happened (`at`, as stored): the report measures from it
    instead of an earlier one of the same name."""
    if name not in MILESTONES:
        raise IrError(f"{name!r} is not a milestone", hint=f"use one of {', '.join(MILESTONES)}")
    if at is None:
        raise IrError(f"milestone {name} needs the time it happened", hint="give it with --at")
    return Draft("milestone", actor, name + (f": {reason.strip()}" if reason and reason.strip() else ""),
                 occurred_at=at, data={"milestone": name, "afterwards": True})
