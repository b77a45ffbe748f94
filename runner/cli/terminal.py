"""The person at the terminal: Markdown instructions, checklists ticked item by item, typed questions,
decisions, and the step menu (complete, skip, failed, note, evidence, overview, pause).

End of input or Ctrl-C at any prompt pauses the run: everything answered so far is already in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from ir.errors import IrError
from ir.format.model import DecisionStep, ManualStep, Variable
from ir.run import evidence
from ir.run.responder import Outcome, PauseRequested, Place, Session
from ir.sinks import terminal
from ir.times import parse_time


def _shown(text: object) -> str:
    """Untrusted text in rich markup: control characters visible, markup escaped."""
    return escape(terminal(text))


MENU = "[c]omplete  [s]kip  [f]ailed  [n]ote  [e]vidence  [o]verview  [p]ause"


class Terminal:
    """`extras` adds actions to the step menu: a letter -> (label, action); an action may end the step by
    returning an Outcome (a tabletop facilitator's jump)."""

    def __init__(self, console: Console | None = None,
                 extras: dict[str, tuple[str, Callable[[Session], Outcome | None]]] | None = None):
        self.console = console or Console(highlight=False)
        self.extras = extras or {}

    # reading ------------------------------------------------------------------------------------------
    def read(self, prompt: str) -> str:
        try:
            return self.console.input(f"{prompt} ", markup=False).strip()
        except (EOFError, KeyboardInterrupt):
            self.console.print()
            raise PauseRequested from None

    def read_required(self, prompt: str) -> str:
        while not (answer := self.read(prompt)):
            self.console.print("  [red]a reply is needed[/]")
        return answer

    # the Responder protocol -----------------------------------------------------------------------------
    def value(self, var: Variable, key: str, problem: str | None) -> Any:
        if problem:
            self.console.print(f"  [red]{_shown(problem)}[/]")
        label = var.label or var.id
        self.console.print(f"[bold]{_shown(label)}[/] [dim]({var.type}{'' if var.required else ', optional'})[/]")
        if var.help:
            self.console.print(f"  [dim]{_shown(var.help)}[/]")
        if var.choices:
            for number, choice in enumerate(var.choices, 1):
                self.console.print(f"  {number}. {_shown(choice)}")
        hints = [f"default: {terminal(var.default)}"] if var.default is not None else []
        hints += [f"e.g. {terminal(var.example)}"] if var.example is not None and var.default is None else []
        answer = self.read(f"  > {'[' + '; '.join(hints) + '] ' if hints else ''}")
        if not answer:
            return var.default
        if var.choices:
            numbers = [p.strip() for p in answer.split(",")]
            if all(p.isdigit() and 0 < int(p) <= len(var.choices) for p in numbers):
                picked = [var.choices[int(p) - 1] for p in numbers]
                return picked if var.type == "multi-choice" else picked[0]
        return answer

    def decide(self, place: Place, question: str, session: Session) -> tuple[str, str | None]:
        step = place.step
        assert isinstance(step, DecisionStep)
        while True:
            self.console.print(f"[bold]{_shown(question)}[/]")
            for number, choice in enumerate(step.choices, 1):
                mark = " [dim](default)[/]" if choice.id == step.default else ""
                about = f"\n     [dim]{_shown(choice.description)}[/]" if choice.description else ""
                self.console.print(f"  {number}. {_shown(choice.label)}{mark}{about}")
            answer = self.read("  choice number, or [n]ote [e]vidence [o]verview [p]ause >")
            picked = self._choice(step, answer)
            if picked:
                return picked, self.read("  why? (optional) >") or None
            if not self._menu_action(answer, session):
                self.console.print("  [red]pick one of the numbers[/]")

    @staticmethod
    def _choice(step: DecisionStep, answer: str) -> str | None:
        if not answer:
            return step.default
        ids = [c.id for c in step.choices]
        if answer.isdigit() and 0 < int(answer) <= len(ids):
            return ids[int(answer) - 1]
        return answer if answer in ids else None

    def act(self, place: Place, text: str, checklist: list[str], session: Session) -> Outcome:
        if isinstance(place.step, ManualStep):
            self.console.print(Markdown(terminal(text, one_line=False), hyperlinks=False))
            for item in place.step.evidence:
                self.console.print(f"  [cyan]evidence to capture:[/] {_shown(item.description)} [dim]({item.id})[/]")
        else:
            self.console.print(f"  [cyan]{_shown(text)}[/]")
        self._checklist(place, checklist, session)
        menu = "  ".join([MENU, *(label for label, _ in self.extras.values())])
        while True:
            answer = self.read(f"{menu} >").lower()
            if answer in self.extras:
                ended = self.extras[answer][1](session)
                if ended is not None:
                    return ended
                continue
            if answer in ("", "c"):
                open_items = len(checklist) - len(session.checked())
                if open_items and self.read(f"  {open_items} checklist item(s) not ticked; complete anyway? [y/N] >"
                                            ).lower() not in ("y", "yes"):
                    continue
                return Outcome("completed", self.read("  note (optional) >") or None)
            if answer == "s":
                return Outcome("skipped", self.read_required("  why skip it? >"))
            if answer == "f":
                return Outcome("failed", self.read_required("  what failed? >"))
            if not self._menu_action(answer, session):
                self.console.print(f"  [red]unknown choice {answer!r}[/]")

    def _checklist(self, place: Place, checklist: list[str], session: Session) -> None:
        for number, item in enumerate(checklist):
            if number in session.checked():
                self.console.print(f"  [green]✓[/] {_shown(item)}")
                continue
            answer = self.read(f"  ☐ {terminal(item)}  done? [Y/n] >").lower()
            if answer in ("", "y", "yes"):
                session.tick(number, item)
            else:
                self.console.print("    [dim]left open: tick it later by completing the step[/]")

    def _menu_action(self, answer: str, session: Session) -> bool:
        """The actions offered at every prompt of a step; False when `answer` is none of them."""
        if answer == "p":
            raise PauseRequested
        if answer == "n":
            text = self.read_required("  note >")
            session.note(text, self._when())
        elif answer == "e":
            self._evidence(session)
        elif answer == "o":
            self.overview(session)
        else:
            return False
        return True

    def _when(self) -> Any:
        while True:
            answer = self.read("  when did it happen? [Enter: now; or e.g. 2026-03-29 14:02 America/Los_Angeles] >")
            if not answer:
                return None
            try:
                return parse_time(answer)
            except ValueError as exc:
                self.console.print(f"  [red]{_shown(str(exc))}[/]")

    def _evidence(self, session: Session) -> None:
        path = self.read("  file (Enter: none, describe it only) >")
        record: dict[str, Any] = {}
        if path:
            copy = self.read("  keep a private copy in the incident store? [y/N] >").lower() in ("y", "yes")
            try:
                record = evidence.custody_record(Path(path), session.incident_id, copy=copy)
            except IrError as exc:  # a missing or unreadable file: say so and stay at the step
                self.console.print(f"  [red]{_shown(str(exc))}[/]")
                return
            self.console.print(f"  sha256 {record['sha256']}  {record['size']} bytes")
        session.evidence(self.read_required("  what is it? >"), record)

    def overview(self, session: Session) -> None:
        table = Table("phase", "done", "steps", title=f"{session.incident_id}: now at {session.place.path}")
        for phase, done, total in session.overview():
            table.add_row(phase, str(done), str(total))
        self.console.print(table)

    def heading(self, place: Place, title: str, position: str) -> None:
        step = place.step
        extra = " · ".join(x for x in (f"role: {step.role}" if step.role else "",
                                       f"SLA {step.sla}" if step.sla else "") if x)
        more = f" · {extra}" if extra else ""
        self.console.rule(f"[bold]{_shown(title)}[/] [dim]{position} · {place.phase}{more}[/]")

    def say(self, text: str) -> None:
        self.console.print(terminal(text, one_line=False), markup=False)
