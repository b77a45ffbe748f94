"""Checks beyond the schema: references between the parts of a playbook, and the shape of its step graph.

Pure: takes a schema-valid `Playbook` and its `Source` (for positions) and returns every problem found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ir.errors import IncludeProblem, Problem
from ir.format import templates, values
from ir.format.model import (
    END,
    DecisionStep,
    IncludeStep,
    ManualStep,
    NotifyStep,
    Playbook,
    PromptStep,
    Step,
    TicketStep,
    Variable,
)
from ir.format.source import Source

Loc = tuple[Any, ...]


def check_playbook(playbook: Playbook, source: Source) -> list[Problem]:
    problems = [
        *_duplicates(playbook, source),
        *_references(playbook, source),
        *_values(playbook, source),
        *_templates(playbook, source),
    ]
    if not problems:  # the graph checks assume every target exists
        problems += _graph(playbook, source)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def successors(playbook: Playbook, index: int) -> list[str]:
    """Where step `index` can lead: its explicit targets, plus the default next step when the step can fall
    through (no `next`, a choice without `next`, or a `when` that can skip it)."""
    step = playbook.steps[index]
    default = step.next or (playbook.steps[index + 1].id if index + 1 < len(playbook.steps) else END)
    out = step.targets()
    falls_through = not step.next and (
        not isinstance(step, DecisionStep) or any(c.next is None for c in step.choices) or step.when)
    if falls_through or step.on_failure == "continue":
        out.append(default)
    return list(dict.fromkeys(out))


def _values(playbook: Playbook, source: Source) -> Iterator[Problem]:
    """Each input's and question's `default` and `example` must be a value of its type: a run would use them."""
    variables: list[tuple[Loc, Variable]] = [(("inputs", i), v) for i, v in enumerate(playbook.inputs)]
    variables += [(("steps", i, "questions", j), q) for i, s in enumerate(playbook.steps) if isinstance(s, PromptStep)
                  for j, q in enumerate(s.questions)]
    for loc, var in variables:
        for name in ("default", "example"):
            value = getattr(var, name)
            if value is None:
                continue
            try:
                values.parse(var, value)
            except ValueError as exc:
                yield source.problem((*loc, name), f"{name} {value!r} is not a valid {var.type}: {exc}",
                                     f"give a value of type {var.type}, or remove `{name}:`")


def _duplicates(playbook: Playbook, source: Source) -> Iterator[Problem]:
    groups: list[tuple[Loc, Iterable[Any]]] = [
        (("inputs",), playbook.inputs), (("roles",), playbook.roles), (("steps",), playbook.steps)]
    for i, step in enumerate(playbook.steps):
        if isinstance(step, DecisionStep):
            groups.append((("steps", i, "choices"), step.choices))
        if isinstance(step, PromptStep):
            groups.append((("steps", i, "questions"), step.questions))
        if isinstance(step, ManualStep) and step.evidence:
            groups.append((("steps", i, "evidence"), step.evidence))
    for loc, items in groups:
        seen: dict[str, int] = {}
        for j, item in enumerate(items):
            if item.id in seen:
                yield source.problem((*loc, j, "id"), f"duplicate id {item.id!r} (first used at "
                                     f"{loc[-1]}[{seen[item.id]}])", "give each one its own id")
            seen.setdefault(item.id, j)
    answer_owner: dict[str, str] = {}
    for i, step in enumerate(playbook.steps):
        for j, q in enumerate(step.questions if isinstance(step, PromptStep) else []):
            if answer_owner.setdefault(q.id, step.id) != step.id:
                yield source.problem(("steps", i, "questions", j, "id"),
                                     f"answers.{q.id} is already set by step {answer_owner[q.id]!r}",
                                     "give the question its own id")


def _references(playbook: Playbook, source: Source) -> Iterator[Problem]:
    step_ids = [s.id for s in playbook.steps]
    roles = {r.id for r in playbook.roles}
    for i, step in enumerate(playbook.steps):
        if step.role and step.role not in roles:
            hint = f"declare it under `roles:` (declared: {', '.join(sorted(roles))})" if roles else \
                "declare it under `roles:`"
            yield source.problem(("steps", i, "role"), f"role {step.role!r} is not declared", hint)
        targets: list[tuple[Loc, str]] = []
        if step.next:
            targets.append((("steps", i, "next"), step.next))
        if step.on_failure not in ("stop", "continue"):
            targets.append((("steps", i, "on_failure"), step.on_failure))
        if isinstance(step, DecisionStep):
            targets += [(("steps", i, "choices", j, "next"), c.next) for j, c in enumerate(step.choices) if c.next]
        for loc, target in targets:
            if target == step.id:
                yield source.problem(loc, f"step {step.id!r} leads to itself", "point it at a later step or `end`")
            elif target != END and target not in step_ids:
                extra = "stop, continue, " if loc[-1] == "on_failure" else ""
                yield source.problem(loc, f"no step has id {target!r}",
                                     f"use one of: {extra}{', '.join(step_ids)}, end")


_TEMPLATED = ("title", "instructions", "question", "channel", "message", "summary", "description", "comment",
              "transition", "link", "due")
_TEMPLATED_LISTS = ("checklist", "invite")


def template_fields(step: Step) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path inside the step, template text) for every templated field of a step."""
    fields = type(step).model_fields  # only the step kind's own fields: a missing one is a slow miss in pydantic
    for name in _TEMPLATED:
        value = getattr(step, name) if name in fields else None
        if isinstance(value, str):
            yield (name,), value
    for name in _TEMPLATED_LISTS:
        for j, value in enumerate((getattr(step, name) if name in fields else None) or []):
            yield (name, j), value
    if isinstance(step, IncludeStep):
        for key, value in step.inputs.items():
            if isinstance(value, str):
                yield ("inputs", key), value


def _bounds(var: Variable) -> Iterator[tuple[str, str]]:
    """A variable's `min` and `max` that are templates."""
    for name in ("min", "max"):
        if isinstance(bound := getattr(var, name), str):
            yield name, bound


def _templates(playbook: Playbook, source: Source) -> Iterator[Problem]:
    known = {
        "inputs": {v.id for v in playbook.inputs},
        "answers": {q.id for s in playbook.steps if isinstance(s, PromptStep) for q in s.questions},
        "steps": {s.id for s in playbook.steps},
        "roles": {r.id for r in playbook.roles},
        "incident": templates.INCIDENT_FIELDS,
        "playbook": templates.PLAYBOOK_FIELDS,
    }
    fields: list[tuple[Loc, str, bool, dict[str, Any]]] = []
    if playbook.incident_title:  # rendered as the incident opens, before any answer, step or role holder
        opening = {**known, "answers": set(), "steps": set(), "roles": set()}
        fields.append((("incident_title",), playbook.incident_title, False, opening))
    for i, step in enumerate(playbook.steps):
        fields += [(("steps", i, *loc), text, False, known) for loc, text in template_fields(step)]
        if step.when:
            fields.append((("steps", i, "when"), step.when, True, known))
        for j, question in enumerate(step.questions if isinstance(step, PromptStep) else []):
            fields += [(("steps", i, "questions", j, bound), text, False, known) for bound, text in _bounds(question)]
    for j, var in enumerate(playbook.inputs):  # asked as the incident opens, from the other inputs only
        fields += [(("inputs", j, bound), text, False, {**known, "answers": set(), "steps": set(), "roles": set()})
                   for bound, text in _bounds(var)]
    for where, text, expression, names in fields:
        if not expression and "{" not in text:
            continue  # plain text: nothing to parse, and rendering passes it through as it is
        error = templates.syntax_error(text, expression=expression)
        if error:
            yield source.problem(where, f"template syntax error: {error}", "fix the Jinja2 syntax")
            continue
        for name, attr in templates.references(text, expression=expression):
            problem = _undefined(name, attr, names)
            if problem:
                yield source.problem(where, problem[0], problem[1])


def _undefined(name: str, attr: str | None, known: dict[str, set[str] | frozenset[str]]) -> tuple[str, str] | None:
    if name not in templates.CONTEXT_NAMES:
        if name in templates.GLOBALS:
            return None
        return (f"template variable {name!r} is not defined",
                f"use one of: {', '.join(sorted(templates.CONTEXT_NAMES))} (for example inputs.{name})")
    if attr is None or name == "now" or attr in known[name]:
        return None
    where = {"inputs": "declare it under `inputs:`", "answers": "ask it in a `prompt` step's questions",
             "steps": "use an existing step id", "roles": "declare it under `roles:`"
             }.get(name, "use one of the fields")
    choices = f"defined: {', '.join(sorted(known[name]))}" if known[name] else "none defined yet"
    return f"{name}.{attr} is never defined", f"{where} ({choices})"


def _graph(playbook: Playbook, source: Source) -> Iterator[Problem]:
    index = {s.id: i for i, s in enumerate(playbook.steps)}
    edges = {s.id: [t for t in successors(playbook, i) if t != END] for i, s in enumerate(playbook.steps)}
    loop = _find_cycle(edges)
    if loop:
        yield source.problem(("steps", index[loop[-2]], "next"), f"the steps loop: {' -> '.join(loop)}",
                             "playbooks run forward; point `next` at a later step or `end`")
    reached, todo = {playbook.steps[0].id}, [playbook.steps[0].id]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    for i, step in enumerate(playbook.steps):
        if step.id not in reached:
            yield source.problem(("steps", i, "id"), f"step {step.id!r} can never be reached",
                                 "point a `next` or a decision choice at it, or remove it")


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """The first loop found by an iterative depth-first search (playbooks may be long), as a path."""
    done: set[str] = set()
    for root in edges:
        if root in done:
            continue
        path, stack = [root], [iter(edges[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                done.add(path.pop())
                stack.pop()
            elif nxt in path:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in done:
                path.append(nxt)
                stack.append(iter(edges[nxt]))
    return None


def check_links(playbook: Playbook, source: Source, *, integrations: dict[str, frozenset[str]],
                resolve: Callable[[str], Playbook]) -> list[Problem]:
    """Checks that need the world outside the file: integrations named in `via`, and included playbooks
    (`resolve(id)` returns the included `Playbook` or raises `IncludeProblem`)."""
    problems = []
    for i, step in enumerate(playbook.steps):
        if isinstance(step, (NotifyStep, TicketStep)):
            handles = integrations.get(step.via)
            if handles is None:
                problems.append(source.problem(("steps", i, "via"), f"no integration is named {step.via!r}",
                                               f"use one of: {', '.join(sorted(integrations))}"))
            elif step.kind not in handles:
                problems.append(source.problem(("steps", i, "via"),
                                               f"integration {step.via!r} does not handle {step.kind} steps",
                                               "use an integration that handles them: " + ", ".join(
                                                   sorted(n for n, h in integrations.items() if step.kind in h))))
        if isinstance(step, IncludeStep):
            try:
                included = resolve(step.playbook)
            except IncludeProblem as exc:
                problems.append(source.problem(("steps", i, "playbook"), exc.message, exc.hint))
                continue
            declared = {v.id: v for v in included.inputs}
            for name in step.inputs:
                if name not in declared:
                    problems.append(source.problem(("steps", i, "inputs", name),
                                                   f"playbook {step.playbook!r} has no input {name!r}",
                                                   f"its inputs: {', '.join(declared) or 'none'}"))
            for var in declared.values():
                if var.required and var.default is None and var.id not in step.inputs:
                    problems.append(source.problem(("steps", i, "inputs"),
                                                   f"playbook {step.playbook!r} needs input {var.id!r}",
                                                   f"add `{var.id}:` under this step's `inputs:`"))
    return problems
