"""Answers files: a run's inputs, decisions and step outcomes written down in advance (YAML or JSON), for
automation, tabletop rehearsals and tests.

    inputs: {vendor: 3CX}                    # the playbook's inputs (`--var vendor=3CX` overrides)
    roles: {commander: Dana Reyes}
    steps:
      declare: escalate                      # a decision: the choice id ...
      contain: {choice: isolate, rationale: C2 seen on two hosts}   # ... or with a rationale
      scope: {hosts: 12, first_seen: 2026-03-29 14:02 America/Los_Angeles}   # a prompt's questions
      reimage: {status: skipped, reason: no affected hosts}         # any step's outcome
      intrusion/contain: {status: completed, note: done}            # a step inside an included playbook

`check` finds every problem with the file and every value a non-interactive run would lack, before anything
runs. `AnswersResponder` is the responder that answers from it (and from a person, or from defaults, when it is silent).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from ir.errors import InvalidPlaybook, IrError, Problem
from ir.format import values
from ir.format.load import schema_problems
from ir.format.model import DecisionStep, Duration, ManualStep, Model, Playbook, PromptStep, Step, Variable, step_paths
from ir.format.source import Source, parse, read_limited
from ir.run.responder import Outcome, Place, Responder, Session
from ir.times import parse_time

OUTCOME_KEYS = {"status", "note", "reason", "at"}
DECISION_KEYS = {"choice", "rationale"}
STATUSES = ("completed", "skipped", "failed")


class Observation(Model):
    step: str
    """The step it is about (a step path)."""
    kind: Literal["strength", "gap"]
    """A strength, or a gap (an area for improvement)."""
    text: str
    """What was seen."""
    root_cause: str | None = None
    """A gap's root cause: why it happened (the missing plan, owner, tool or training), not what happened."""

    @model_validator(mode="after")
    def _root_cause_of_a_gap(self) -> Observation:
        if self.root_cause and self.kind != "gap":
            raise ValueError("only a gap has a root cause")
        return self


CapabilityElement = Literal["planning", "organization", "equipment", "training", "exercise"]
CAPABILITY_ELEMENTS: tuple[str, ...] = get_args(CapabilityElement)


class CorrectiveAction(Model):
    action: str
    """What is to be done."""
    capability: CapabilityElement | None = None
    """The capability element it improves, as HSEEP's improvement plan names them: planning, organization,
    equipment, training or exercise."""
    owner: str | None = None
    """Who does it."""
    start: date | None = None
    """When the work starts."""
    due: date | None = None
    """By when it is done."""

    @model_validator(mode="after")
    def _starts_before_due(self) -> CorrectiveAction:
        if self.start and self.due and self.start > self.due:
            raise ValueError(f"the action starts ({self.start}) after it is due ({self.due})")
        return self


RATINGS = {"P": "performed without challenges", "S": "performed with some challenges",
           "M": "performed with major challenges", "U": "unable to be performed"}


class Rating(Model):
    """How the room met one of the scenario's objectives, on HSEEP's scale."""

    objective: Annotated[int, Field(ge=1)]
    """The objective's number in the scenario's list (1: the first)."""
    rating: Literal["P", "S", "M", "U"]
    """P: performed without challenges; S: with some challenges; M: with major challenges; U: unable to be
    performed."""
    why: str | None = None
    """What the rating rests on."""


class Improvement(Model):
    """An area for improvement named in the hotwash, with its root cause."""

    text: str
    """What should improve."""
    root_cause: str | None = None
    """Why it happened."""


class Hotwash(Model):
    went_well: list[str] = []
    """What went well."""
    improve: list[str | Improvement] = []
    """What should improve: text, or `{text, root_cause}`."""
    ratings: list[Rating] = []
    """The scenario's objectives rated P, S, M or U."""


class ExerciseAnswers(Model):
    """A tabletop exercise run without a facilitator at the keyboard (`ir tabletop --non-interactive`)."""

    observations: list[Observation] = []
    """The facilitator's observations, each tied to a step."""
    adhoc: dict[str, list[str]] = {}
    """Ad-hoc injects, by the step path at whose start they are sent."""
    hotwash: Hotwash = Hotwash()
    """The hotwash at the end."""
    actions: list[CorrectiveAction] = []
    """Corrective actions for the improvement plan."""
    pace: Duration | None = None
    """Room time each step takes (`10m`): the exercise clock advances by it, times the scenario's
    `time_compression`, at every step, so injects on the exercise clock arrive where they would in the room.
    Without it the clock is the wall clock, and a run over in seconds reaches no clock inject."""


class AnswersFile(Model):
    inputs: dict[str, Any] = {}
    """Values of the playbook's inputs, by id."""
    roles: dict[str, str] = {}
    """Who holds each role, by role id."""
    steps: dict[str, Any] = {}
    """By step path: a decision's choice, a prompt's answers, or a step's outcome."""
    exercise: ExerciseAnswers | None = None
    """For tabletop exercises: observations, ad-hoc injects, the hotwash (with the objectives' ratings) and
    corrective actions."""


@dataclass
class Answers:
    inputs: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Source | None = None
    exercise: ExerciseAnswers | None = None

    @classmethod
    def load(cls, path: Path) -> Answers:
        try:
            raw = read_limited(path)
        except OSError as exc:
            raise IrError(f"{path}: cannot read the answers file ({exc.strerror})", hint="check the path") from None
        source = parse(raw, str(path))
        if source.data is None:
            return cls(source=source)
        if not isinstance(source.data, dict):
            raise InvalidPlaybook([source.problem((), "an answers file is a mapping",
                                                  "start it with `inputs:`, `roles:` or `steps:`")])
        try:
            parsed = AnswersFile.model_validate(source.data)
        except ValidationError as exc:
            raise InvalidPlaybook(schema_problems(exc, source, AnswersFile.model_json_schema())) from None
        steps = {path: a if isinstance(a, dict) else {"choice": a} for path, a in parsed.steps.items()}
        return cls(dict(parsed.inputs), dict(parsed.roles), steps, source, parsed.exercise)

    def with_vars(self, assignments: list[str]) -> Answers:
        """`--var NAME=VALUE` (repeatable) sets inputs, over what the file says."""
        inputs = dict(self.inputs)
        for item in assignments:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise IrError(f"--var {item!r} is not NAME=VALUE", hint="write e.g. --var vendor=3CX",
                              exit_code=2)
            inputs[name.strip()] = value
        return Answers(inputs, self.roles, self.steps, self.source, self.exercise)

    def over(self, inputs: dict[str, Any], roles: dict[str, str]) -> Answers:
        """These answers over other values (a scenario's inputs and players): what these say wins."""
        return Answers({**inputs, **self.inputs}, {**roles, **self.roles}, self.steps, self.source, self.exercise)

    def problem(self, loc: tuple[Any, ...], message: str, hint: str | None = None) -> Problem:
        return self.source.problem(loc, message, hint) if self.source else Problem(message, path=".".join(
            str(p) for p in loc), hint=hint)


def check(answers: Answers, playbooks: dict[str, Playbook], root: str, *, complete: bool,
          examples: bool) -> list[Problem]:
    """Everything wrong with `answers` for this playbook; with `complete`, also every value a run without a
    person would lack (a required input or question, or a decision with no answer and no default)."""
    playbook, out = playbooks[root], []
    known_inputs = {v.id: v for v in playbook.inputs}
    for name, raw in answers.inputs.items():
        var = known_inputs.get(name)
        if var is None:
            out.append(answers.problem(("inputs", name), f"the playbook {root} has no input {name!r}",
                                       f"its inputs: {', '.join(known_inputs) or 'none'}"))
        else:
            out += _parse(answers, ("inputs", name), var, raw)
    roles = {r.id for r in playbook.roles}
    out += [answers.problem(("roles", r), f"the playbook {root} has no role {r!r}",
                            f"its roles: {', '.join(sorted(roles)) or 'none'}")
            for r in answers.roles if r not in roles]
    if complete:
        out += [Problem(f"no value for input {v.id!r} ({v.label or v.id})",
                        hint=f"give it under `inputs:` in an answers file, or pass --var {v.id}=VALUE")
                for v in playbook.inputs if v.id not in answers.inputs and _lacks(v, examples)]
    steps = dict(step_paths(playbooks, root))
    for path in answers.steps:
        if path not in steps:
            out.append(answers.problem(("steps", path), f"no step {path!r} in {root}",
                                       "use step ids (`include_step/step` inside an included playbook)"))
    for path, step in steps.items():
        out += _check_step(answers, path, step, complete=complete, examples=examples)
    out += _bound_problems(answers, steps)
    if answers.exercise:
        out += [answers.problem(("exercise", "observations", n, "step"), f"no step {o.step!r} in {root}")
                for n, o in enumerate(answers.exercise.observations) if o.step not in steps]
        out += [answers.problem(("exercise", "adhoc", path), f"no step {path!r} in {root}")
                for path in answers.exercise.adhoc if path not in steps]
    return sorted(out, key=lambda p: (p.line or 0, p.column or 0))


def _bound_problems(answers: Answers, steps: dict[str, Step]) -> list[Problem]:
    """Answers out of a bound that names another value the same file gives (`max: "{{ answers.hosts_installed }}"`),
    found before anything runs; a bound on a value the file does not give is checked when the run asks."""
    given: dict[tuple[str, str], Any] = {("", f"inputs.{k}"): v for k, v in answers.inputs.items()}
    for path, step in steps.items():
        if isinstance(step, PromptStep):
            scope = path.rpartition("/")[0]
            given |= {(scope, f"answers.{k}"): v for k, v in answers.steps.get(path, {}).items()}
    out = []
    for path, step in steps.items():
        scope = path.rpartition("/")[0]
        for q in step.questions if isinstance(step, PromptStep) else []:
            raw = answers.steps.get(path, {}).get(q.id)
            limits = [given.get((scope, _BOUND_NAME.sub(r"\1", b))) if isinstance(b, str) and _BOUND_NAME.fullmatch(b)
                      else None for b in (q.min, q.max)]
            if raw is None or limits == [None, None]:
                continue
            try:
                number, (low, high) = values.parse(q, raw), (None if v is None else int(v) for v in limits)
            except (TypeError, ValueError):
                continue  # a value that is not a number is reported as such
            try:
                values.within(number, low, high, *(_BOUND_NAME.sub(r"\1", str(b)) for b in (q.min, q.max)))
            except ValueError as exc:
                out.append(answers.problem(("steps", path, q.id), f"{raw!r} is out of bounds: {exc}"))
    return out


_BOUND_NAME = re.compile(r"\s*\{\{\s*((?:inputs|answers)\.[a-z][a-z0-9_]*)\s*\}\}\s*")


def _lacks(var: Variable, examples: bool) -> bool:
    return var.required and var.default is None and not (examples and var.example is not None)


def _parse(answers: Answers, loc: tuple[Any, ...], var: Variable, raw: Any) -> list[Problem]:
    try:
        values.parse(var, raw)
    except ValueError as exc:
        return [answers.problem(loc, f"{raw!r} is not a valid {var.type}: {exc}")]
    return []


def _check_step(answers: Answers, path: str, step: Step, *, complete: bool, examples: bool) -> list[Problem]:
    given = answers.steps.get(path)
    loc = ("steps", path)
    if isinstance(step, PromptStep):
        questions = {q.id: q for q in step.questions}
        given = given or {}
        out = [answers.problem((*loc, k), f"step {path} asks no question {k!r}",
                               f"its questions: {', '.join(questions)}") for k in given if k not in questions]
        out += [p for k, raw in given.items() if k in questions for p in _parse(answers, (*loc, k), questions[k], raw)]
        if complete:
            out += [Problem(f"no answer for question {q.id!r} of step {path}",
                            hint=f"add it under `steps: {path}: {q.id}:` in the answers file")
                    for q in step.questions if q.id not in given and _lacks(q, examples)]
        return out
    if isinstance(step, DecisionStep):
        if given is None:
            return [Problem(f"no choice for decision {path!r} and it has no default",
                            hint=f"add `{path}: <choice>` under `steps:`; choices: "
                                 f"{', '.join(c.id for c in step.choices)}")] if complete and not step.default else []
        choices = [c.id for c in step.choices]
        out = [answers.problem((*loc, k), f"unknown key {k!r} for decision {path}", "use `choice` and `rationale`")
               for k in given if k not in DECISION_KEYS]
        if given.get("choice") not in choices:
            out.append(answers.problem(loc, f"{given.get('choice')!r} is not a choice of decision {path}",
                                       f"choose one of: {', '.join(choices)}"))
        return out
    if given is None:
        return []
    out = [answers.problem((*loc, k), f"unknown key {k!r} for step {path}",
                           f"use {', '.join(sorted(OUTCOME_KEYS))}") for k in given if k not in OUTCOME_KEYS]
    if given.get("status", "completed") not in STATUSES:
        out.append(answers.problem((*loc, "status"), f"status {given['status']!r} is not one of {', '.join(STATUSES)}"))
    if "at" in given:
        try:
            parse_time(str(given["at"]))
        except ValueError as exc:
            out.append(answers.problem((*loc, "at"), str(exc)))
    return out


class AnswersResponder:
    """Answers from an answers file; what it does not say comes from `person` if there is one, else from
    defaults (and, in dry runs, examples). Manual steps without a person are acknowledged, not faked."""

    def __init__(self, answers: Answers, *, person: Responder | None, examples: bool,
                 say: Callable[[str], None]):
        self.answers, self.person, self.examples, self._say = answers, person, examples, say

    def value(self, var: Variable, key: str, problem: str | None) -> Any:
        found, raw = self._lookup(key)
        if problem and (found or self.person is None):
            raise IrError(f"the value for {key} is refused: {problem}", hint="correct it in the answers file")
        if found:
            return raw
        if self.person:
            return self.person.value(var, key, problem)
        if var.default is not None:
            return var.default
        if self.examples and var.example is not None:
            return var.example
        if var.required:
            raise IrError(f"no value for {key}", hint="add it to the answers file")
        return None

    def _lookup(self, key: str) -> tuple[bool, Any]:
        kind, _, name = key.partition(".")
        if kind == "inputs":
            return name in self.answers.inputs, self.answers.inputs.get(name)
        if kind == "roles":
            return name in self.answers.roles, self.answers.roles.get(name)
        path, _, question = key.rpartition(".")
        given = self.answers.steps.get(path, {})
        return question in given, given.get(question)

    def roles(self, asked: list[Variable]) -> None:
        if self.person:
            self.person.roles([var for var in asked if var.id not in self.answers.roles])

    def decide(self, place: Place, question: str, session: Session) -> tuple[str, str | None]:
        given = self.answers.steps.get(place.path)
        if given:
            return given["choice"], given.get("rationale")
        if self.person:
            return self.person.decide(place, question, session)
        step = place.step
        assert isinstance(step, DecisionStep) and step.default  # `check` guarantees it
        return step.default, "not answered: the playbook's default"

    def act(self, place: Place, text: str, checklist: list[str], session: Session) -> Outcome:
        given = self.answers.steps.get(place.path)
        if given:
            at = parse_time(str(given["at"])) if "at" in given else None
            return Outcome(given.get("status", "completed"), given.get("note") or given.get("reason"), at)
        if self.person:
            return self.person.act(place, text, checklist, session)
        if isinstance(place.step, ManualStep):
            return Outcome("completed", "acknowledged without a person (non-interactive run)")
        return Outcome("completed")

    def heading(self, place: Place, title: str, position: str) -> None:
        if self.person:
            self.person.heading(place, title, position)
        else:
            self._say(f"[{position}] {place.phase}: {title}")

    def say(self, text: str) -> None:
        (self.person.say if self.person else self._say)(text)
