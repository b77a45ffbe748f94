"""A step done ahead of the run: while one process drives an incident, anyone else (on their own machine, with
the same store) may tick a step's checklist items, answer its questions, make its decision, or complete or skip
it (`ir step`). It is recorded in one transaction; when the run reaches the step it records that the step was
done ahead (`step.passed`) and goes on without asking again."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from ir.errors import IrError, UsageError
from ir.format import values
from ir.format.bundle import Bundle
from ir.format.model import DecisionStep, IncludeStep, ManualStep, NoteStep, PromptStep, Step
from ir.store.records import Change, Draft, StepState, Store
from ir.store.timeline import format_recorded, utc_now

DONE = ("completed", "skipped")


def marker(path: str) -> tuple[str, str]:
    """The variable that says who did the step at `path` ahead of the run (None once the run has passed it)."""
    return "", f"ahead.{path}"


def done_by(path: str, state: StepState | None, variables: Mapping[tuple[str, str], object]) -> str | None:
    """Who completed or skipped the step at `path` ahead of the run, when someone did and the run has not passed
    it yet."""
    by = variables.get(marker(path))
    return str(by) if by and state is not None and state.status in DONE else None


@dataclass(frozen=True)
class Contribution:
    """What a responder does to a step from outside the run; at least one of them."""

    complete: bool = False
    skip: str | None = None  # the reason
    ticks: tuple[int, ...] = ()  # checklist items, from 1
    answers: Mapping[str, str] = field(default_factory=dict)  # question id -> the raw answer
    choice: str | None = None  # a decision's choice id
    note: str | None = None
    at: str | None = None  # when it happened (ISO 8601), else now


def contribute(store: Store, incident_id: str, path: str, actor: str, given: Contribution) -> list[str]:
    """Record `given` on the step at `path`, in one transaction; the lines saying what was recorded."""
    incident = store.incident(incident_id)
    if incident.status == "closed":
        raise IrError(f"{incident_id} is closed", hint="a closed incident's steps cannot change; add a note instead")
    steps = dict(Bundle.from_stored(store.bundle(incident_id), incident.playbook_id, incident_id).paths())
    step = steps.get(path)
    if step is None:
        close = difflib.get_close_matches(path, list(steps), n=1)
        raise UsageError(f"{incident_id} has no step {path!r}",
                         hint=f"did you mean {close[0]!r}?" if close else "`ir status` shows the steps; inside an "
                              "included playbook a step is named include_step/step")
    state = store.steps(incident_id).get(path) or StepState(path, "started")
    if state.status in DONE:
        raise IrError(f"step {path} is {state.status} already (at {state.finished_at})", hint="nothing was changed")
    _allowed(step, path, given)
    now = format_recorded(utc_now())
    drafts: list[Draft] = []
    variables: dict[tuple[str, str], object] = {}
    said: list[str] = []
    scope = path.rpartition("/")[0]
    phase = step.phase

    def draft(kind: str, message: str, data: dict[str, object] | None = None) -> None:
        drafts.append(Draft(kind, actor, message, given.at, phase, path, {**(data or {}), "ahead": True,
                                                                           "role": step.role}))

    if given.ticks:
        assert isinstance(step, ManualStep)
        for item in given.ticks:
            if not 1 <= item <= len(step.checklist):
                raise UsageError(f"--tick {item}: step {path} has {len(step.checklist)} checklist item(s)")
            draft("checklist.checked", f"done: {step.checklist[item - 1]}", {"item": item - 1})
            said.append(f"ticked {item}: {step.checklist[item - 1]}")
        state = replace(state, checked=tuple(sorted({*state.checked, *(i - 1 for i in given.ticks)})))
    if given.answers:
        assert isinstance(step, PromptStep)
        questions = {q.id: q for q in step.questions}
        for name, raw in given.answers.items():
            question = questions.get(name)
            if question is None:
                raise UsageError(f"--answer {name}: step {path} asks {', '.join(questions)}")
            try:
                value = values.to_json(values.parse(question, raw))
            except ValueError as exc:
                raise UsageError(f"--answer {name}: {exc}") from None
            variables[(scope, f"answers.{name}")] = value
            draft("input.set", f"answers.{name} = {value}", {"name": f"answers.{name}", "scope": scope,
                                                              "value": value})
            said.append(f"answered {name}: {value}")
    if given.choice:
        assert isinstance(step, DecisionStep)
        choice = step.choice(given.choice) if given.choice in {c.id for c in step.choices} else None
        if choice is None:
            raise UsageError(f"--choice {given.choice}: step {path} offers {', '.join(c.id for c in step.choices)}")
        draft("decision", f"{step.question} -> {choice.label}", {"choice": choice.id, "label": choice.label,
                                                                  "rationale": given.note})
        state = replace(state, decision=choice.id, note=given.note)
        said.append(f"decided: {choice.label}")
    if given.complete or given.choice or given.skip is not None:
        if isinstance(step, PromptStep) and given.skip is None:
            recorded = store.variables(incident_id)
            unanswered = [q for q in step.questions if (scope, f"answers.{q.id}") not in recorded
                          and (scope, f"answers.{q.id}") not in variables]
            missing = [q.id for q in unanswered if q.required and q.default is None]
            if missing:
                raise UsageError(f"step {path} needs an answer to {', '.join(missing)} first",
                                 hint=" ".join(f"--answer {name}=VALUE" for name in missing))
            for question in unanswered:  # what Enter would give at the prompt: the default, or nothing
                value = None if question.default is None else values.to_json(values.parse(question, question.default))
                variables[(scope, f"answers.{question.id}")] = value
                draft("input.set", f"answers.{question.id} = {'not given' if value is None else value}",
                      {"name": f"answers.{question.id}", "scope": scope, "value": value})
        status = "skipped" if given.skip is not None else "completed"
        note = given.skip if given.skip is not None else given.note
        draft(f"step.{status}", note or f"{status} ahead of the run")
        if step.milestone and status == "completed":
            draft("milestone", step.milestone, {"milestone": step.milestone})
        finished = format_recorded(datetime.fromisoformat(given.at)) if given.at else now
        state = replace(state, status=status, finished_at=finished, note=note)
        variables[marker(path)] = actor
        said.append(f"{status}; the run goes on past it without asking")
    elif given.note:
        draft("note", given.note)
        said.append("note recorded")
    store.record(incident_id, drafts, Change(steps=(state,), variables=variables, open_steps=(path,)))
    return said


def _allowed(step: Step, path: str, given: Contribution) -> None:
    """What can be done to this kind of step from outside the run: integration steps only the run does."""
    if not (given.complete or given.skip is not None or given.ticks or given.answers or given.choice or given.note):
        raise UsageError("say what to do: --complete, --skip REASON, --tick N, --answer QUESTION=VALUE, --choice ID "
                         "or --note TEXT")
    if isinstance(step, IncludeStep | NoteStep) or step.kind in ("notify", "ticket"):
        raise UsageError(f"step {path} is a {step.kind} step: the run does it (it sends or enters for everyone)",
                         hint="complete or skip a manual, prompt or decision step; add a note with `ir note`")
    wrong = [(flag, kind) for flag, used, kind in (("--tick", given.ticks, ManualStep),
                                                   ("--answer", given.answers, PromptStep),
                                                   ("--choice", given.choice, DecisionStep))
             if used and not isinstance(step, kind)]
    if wrong:
        raise UsageError(f"{wrong[0][0]}: step {path} is a {step.kind} step")
    if isinstance(step, DecisionStep) and given.complete and not given.choice:
        raise UsageError(f"step {path} is a decision: --choice {'|'.join(c.id for c in step.choices)}")
