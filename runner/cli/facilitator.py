"""The facilitator's controls in an interactive tabletop exercise: next inject, ad-hoc inject, jump, observation,
and the hotwash at the end."""

from __future__ import annotations

from typing import Any

from ir.cli.terminal import Terminal
from ir.run.responder import Outcome, Run, Session
from ir.tabletop.exercise import Exercise


class Facilitator:
    """The facilitator's controls, offered at every step of an interactive exercise."""

    def __init__(self, exercise: Exercise, terminal: Terminal):
        self.exercise, self.terminal = exercise, terminal

    def controls(self) -> dict[str, tuple[str, Any]]:
        return {"i": ("next [i]nject", self._next), "a": ("[a]d-hoc inject", self._adhoc),
                "j": ("[j]ump", self._jump), "b": ("o[b]servation", self._observe)}

    def _next(self, session: Session) -> None:
        self.exercise.next_inject(session.run, session.place)

    def _adhoc(self, session: Session) -> None:
        self.exercise.adhoc(session.run, session.place, self.terminal.read_required("  inject id (from the scenario) or text >"))

    def _observe(self, session: Session) -> None:
        kind = ""
        while kind not in ("strength", "gap"):
            kind = {"s": "strength", "g": "gap"}.get(self.terminal.read("  [s]trength or [g]ap? >").lower(), "")
        self.exercise.observe(session.run, session.place, kind, self.terminal.read_required("  observation >"))

    def _jump(self, session: Session) -> Outcome | None:
        path = self.terminal.read("  jump to which step (its path)? >")
        if path not in session.run.paths():
            self.terminal.say(f"no step {path!r}; steps: {', '.join(session.run.paths())}")
            return None
        return Outcome("skipped", f"facilitator jumped to {path}", jump=path)

    def debrief(self, run: Run) -> None:
        """The hotwash, asked at the end of an interactive exercise."""
        self.terminal.say("Hotwash. One item per line; an empty line ends the list.")
        went_well = self._lines("What went well?")
        improve = self._lines("What should improve?")
        actions: list[dict[str, str | None]] = []
        while action := self.terminal.read("Corrective action (empty to finish) >"):
            actions.append({"action": action, "owner": self.terminal.read("  owner >") or None,
                            "due": self.terminal.read("  due date (YYYY-MM-DD) >") or None})
        self.exercise.hotwash(run, went_well, improve, actions)

    def _lines(self, question: str) -> list[str]:
        self.terminal.say(question)
        out = []
        while line := self.terminal.read("  >"):
            out.append(line)
        return out
