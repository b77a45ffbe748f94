"""A Mermaid flowchart of a playbook's steps and branches (`ir graph`), grouped by phase."""

from __future__ import annotations

from ir.format.model import END, DecisionStep, IncludeStep, Playbook
from ir.format.rules import successors

_END_NODE = "_end"  # `end` is a Mermaid keyword; step ids cannot start with "_"
_SHAPES = {"decision": ("{", "}"), "include": ("[[", "]]"), "notify": (">", "]"), "ticket": ("[/", "/]")}


def mermaid(playbook: Playbook) -> str:
    lines = ["flowchart TD"]
    for phase, steps in playbook.by_phase():
        lines.append(f"  subgraph {phase.replace('-', '_')}[\"{phase}\"]")
        for step in steps:
            left, right = _SHAPES.get(step.kind, ("[", "]"))
            label = step.title if not isinstance(step, IncludeStep) else f"{step.title} ({step.playbook})"
            lines.append(f"    {step.id}{left}\"{_escape(label)}\"{right}")
        lines.append("  end")
    lines.append(f"  {_END_NODE}((end))")
    for i, step in enumerate(playbook.steps):
        labelled: dict[str, str] = {}
        if isinstance(step, DecisionStep):
            for choice in step.choices:
                labelled.setdefault(choice.next or _default(playbook, i), choice.label)
        if step.on_failure not in ("stop", "continue"):
            labelled.setdefault(step.on_failure, "on failure")
        for target in successors(playbook, i):
            edge = labelled.get(target)
            arrow = f" -->|{_escape(edge)}| " if edge else " --> "
            lines.append(f"  {step.id}{arrow}{_END_NODE if target == END else target}")
    return "\n".join(lines) + "\n"


def _default(playbook: Playbook, index: int) -> str:
    return playbook.steps[index + 1].id if index + 1 < len(playbook.steps) else END


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")
