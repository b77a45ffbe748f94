"""What a step's templates read from the run: a scope's `steps` (made as a template reads them), an integer's
`min` and `max` from the values recorded so far, and the answers a step reads that nobody gave (after a jump)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ir.format import templates
from ir.format.model import PromptStep, Variable
from ir.format.rules import template_fields
from ir.run.responder import Place
from ir.store.records import StepState


def bounds(var: Variable, context: dict[str, Any]) -> tuple[int | None, int | None, str, str]:
    """An integer's `min` and `max` as numbers (a template's evaluated in `context`; one whose value was never
    recorded is no bound), with the expression each came from."""
    found: list[Any] = []
    for bound in (var.min, var.max):
        if not isinstance(bound, str):
            found += [bound, ""]
            continue
        expression = bound.strip().removeprefix("{{").removesuffix("}}").strip()
        number = templates.evaluate(expression, context)  # a value never recorded is None
        if number is None or isinstance(number, str) and not number.strip():
            found += [None, ""]
            continue
        try:
            found += [int(number), expression]
        except (TypeError, ValueError):
            raise templates.TemplateProblem(f"the bound {bound} of {var.id} is {number!r}, not a whole number",
                                            hint="make `min` and `max` templates of integer values") from None
    return found[0], found[2], found[1], found[3]


def unanswered(place: Place, answers: Mapping[str, Any]) -> Iterator[tuple[Place, Variable]]:
    """The questions of the step's playbook whose answers the step's templates read and `answers` lacks, each with
    the place of the prompt step that asks it, in the playbook's order."""
    step = place.step
    texts = [text for _, text in template_fields(step)] + ([step.when] if step.when else [])
    wanted = {attr for text in texts for name, attr in templates.references(text, expression=text == step.when)
              if name == "answers" and attr and attr not in answers}
    for n, asker in enumerate(place.playbook.steps):
        for question in asker.questions if isinstance(asker, PromptStep) else []:
            if question.id in wanted:
                path = f"{place.scope}/{asker.id}" if place.scope else asker.id
                yield Place(path, place.scope, place.playbook, n, place.phase), question


class Steps(Mapping[str, dict[str, Any]]):
    """A context's `steps`: the steps of one scope that have a state, each made when a template reads it (making
    them all for every template made a run quadratic in its length)."""

    def __init__(self, states: Mapping[str, StepState], prefix: str, labels: Mapping[tuple[str, str], str]):
        self.states, self.prefix, self.labels = states, prefix, labels

    def __getitem__(self, step_id: str) -> dict[str, Any]:
        state = None if "/" in step_id else self.states.get(self.prefix + step_id)
        if state is None:
            raise KeyError(step_id)
        return {"status": state.status, "decision": state.decision, "note": state.note,
                "label": self.labels.get((step_id, state.decision or "")), "completed_at": state.finished_at}

    def __iter__(self) -> Iterator[str]:
        return (path[len(self.prefix):] for path in list(self.states)
                if path.startswith(self.prefix) and "/" not in path[len(self.prefix):])

    def __len__(self) -> int:
        return sum(1 for _ in self)
