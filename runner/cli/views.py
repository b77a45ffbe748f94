"""Readable terminal renderings (rich) of playbooks."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from ir.format.model import DecisionStep, IncludeStep, ManualStep, NotifyStep, Playbook, PromptStep, TicketStep
from ir.sinks import terminal


def show_playbook(playbook: Playbook, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{_shown(playbook.title)}[/]  "
                  + _shown(f"({playbook.id} {playbook.version}, severity {playbook.severity})"))
    if playbook.description:
        console.print(Markdown(terminal(playbook.description, one_line=False), hyperlinks=False))
    if playbook.owners or playbook.tags:
        owners, tags = ", ".join(playbook.owners) or "-", ", ".join(playbook.tags) or "-"
        console.print(terminal(f"owners: {owners}   tags: {tags}"), markup=False)
    if playbook.inputs:
        table = Table("input", "type", "required", "default / example", "help", title="Inputs", title_justify="left")
        for v in playbook.inputs:
            shown = v.default if v.default is not None else (f"e.g. {v.example}" if v.example is not None else "")
            table.add_row(_shown(v.id), v.type, "yes" if v.required else "no", _shown(shown),
                          _shown(v.help or v.label or ""))
        console.print(table)
    if playbook.roles:
        console.print("[bold]Roles[/]")
        for r in playbook.roles:
            console.print(terminal(f"  {r.id}: {r.title}" + (f" - {r.description}" if r.description else "")),
                          markup=False)
    number = 0
    for phase, steps in playbook.by_phase():
        console.rule(f"[bold]{_shown(phase)}")
        for step in steps:
            number += 1
            extras = [x for x in (step.role and f"role {step.role}", step.sla and f"SLA {step.sla}",
                                  step.when and f"when {step.when}", step.milestone and f"milestone {step.milestone}")
                      if x]
            console.print(f"[bold]{number}. {_shown(step.title)}[/]  [dim]"
                          + _shown(f"{step.id} · {step.kind}" + (" · " + " · ".join(extras) if extras else ""))
                          + "[/]", highlight=False)
            for line in _details(step):
                console.print(terminal(f"   {line}"), highlight=False, markup=False)


def _shown(text: object) -> str:
    return escape(terminal(text))


def _details(step: object) -> list[str]:
    if isinstance(step, ManualStep):
        first = step.instructions.strip().splitlines()[0] if step.instructions.strip() else ""
        return [first] + [f"[ ] {item}" for item in step.checklist] + [f"evidence: {e.description}"
                                                                        for e in step.evidence]
    if isinstance(step, PromptStep):
        return [f"? {q.label or q.id} ({q.type})" for q in step.questions]
    if isinstance(step, DecisionStep):
        return [step.question] + [f"- {c.label} -> {c.next or 'next step'}" for c in step.choices]
    if isinstance(step, NotifyStep):
        return [f"{step.via} {step.action} {step.channel or 'incident channel'}: {step.message or ''}".rstrip(": ")]
    if isinstance(step, TicketStep):
        detail = step.summary or step.comment or step.transition or step.link or ""
        return [f"{step.via} {step.action}: {detail}"]
    if isinstance(step, IncludeStep):
        return [f"runs playbook {step.playbook}"]
    return []
