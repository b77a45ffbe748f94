"""A Mermaid flowchart of a playbook's steps and branches (`ir graph`), grouped by phase.

Every label is quoted (a bare label ends at the first parenthesis or bracket), and ids Mermaid reads as keywords
are renamed; tests/test_graph.py checks the output with Mermaid's own parser.
"""

from __future__ import annotations

from ir.format.model import END, DecisionStep, IncludeStep, Playbook
from ir.format.rules import successors

# Step ids cannot start with "_", so these names cannot meet a step's: the end node (`end` is a keyword), the phases'
# subgraphs (a node with a subgraph's id would sit inside itself), and the steps whose ids are Mermaid keywords.
_END_NODE = "_end"
_KEYWORDS = frozenset({"end", "graph", "flowchart", "subgraph", "style", "class", "click", "call", "href",
                       "interpolate"})
_SHAPES = {"decision": ("{", "}"), "include": ("[[", "]]"), "notify": (">", "]"), "ticket": ("[/", "/]")}


def mermaid(playbook: Playbook) -> str:
    lines = ["flowchart TD"]
    for phase, steps in playbook.by_phase():
        lines.append(f"  subgraph _{phase.replace('-', '_')}[\"{phase}\"]")
        for step in steps:
            left, right = _SHAPES.get(step.kind, ("[", "]"))
            label = step.title if not isinstance(step, IncludeStep) else f"{step.title} ({step.playbook})"
            lines.append(f"    {_node(step.id)}{left}{_quoted(label)}{right}")
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
            arrow = f" -->|{_quoted(edge)}| " if edge else " --> "
            lines.append(f"  {_node(step.id)}{arrow}{_END_NODE if target == END else _node(target)}")
    return "\n".join(lines) + "\n"


def _node(step_id: str) -> str:
    return f"_step_{step_id}" if step_id in _KEYWORDS else step_id


def _default(playbook: Playbook, index: int) -> str:
    return playbook.steps[index + 1].id if index + 1 < len(playbook.steps) else END


def _quoted(text: str) -> str:
    """A label in Mermaid's quotes: `#` (which starts an entity), quotes and line breaks written as entities."""
    text = " ".join(text.split())
    return '"' + text.replace("#", "#35;").replace('"', "#quot;") + '"'
