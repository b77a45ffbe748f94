"""The facilitator's controls in an interactive tabletop exercise: next inject, ad-hoc inject, jump, observation,
and the hotwash at the end."""

from __future__ import annotations

from datetime import date
from typing import Any

from ir.cli.terminal import Terminal
from ir.format.model import END
from ir.run.answers import CAPABILITY_ELEMENTS, RATINGS, CorrectiveAction, Hotwash, Improvement, Rating
from ir.run.responder import Outcome, Run, Session
from ir.tabletop.exercise import Exercise


class Facilitator:
    """The facilitator's controls, offered at every step of an interactive exercise."""

    def __init__(self, exercise: Exercise, terminal: Terminal):
        self.exercise, self.terminal = exercise, terminal

    def controls(self) -> dict[str, tuple[str, Any]]:
        return {"i": ("next [i]nject", self._next), "a": ("[a]d-hoc inject", self._adhoc),
                "j": ("[j]ump", self._jump), "b": ("o[b]servation", self._observe),
                "h": ("end: [h]otwash", self._end)}

    def _next(self, session: Session) -> None:
        self.exercise.next_inject(session.run, session.place)

    def _adhoc(self, session: Session) -> None:
        waiting = self.exercise.waiting(session.run)
        self.terminal.say("  injects not delivered yet:" + "".join(f"\n    {i.id}: {i.title}" for i in waiting)
                          if waiting else "  every inject of the scenario has been delivered")
        text = self.terminal.read_required("  inject id (from the scenario) or text >")
        self.exercise.adhoc(session.run, session.place, text)

    def _end(self, session: Session) -> Outcome | None:
        self.terminal.say(f"  Ending the exercise here skips {session.place.path} and every step after it; "
                          "the hotwash follows.")
        if self.terminal.read("  End the exercise now? [y/N] >").lower() not in ("y", "yes"):
            return None
        return Outcome("skipped", f"facilitator ended the exercise at {session.place.path}", jump=END)

    def _observe(self, session: Session) -> None:
        kind = ""
        while kind not in ("strength", "gap"):
            kind = {"s": "strength", "g": "gap"}.get(self.terminal.read("  [s]trength or [g]ap? >").lower(), "")
        text = self.terminal.read_required("  observation >")
        cause = (self.terminal.read("  root cause (why; empty: not known yet) >") or None) if kind == "gap" else None
        self.exercise.observe(session.run, session.place, kind, text, cause)

    def _jump(self, session: Session) -> Outcome | None:
        path = self.terminal.read("  jump to which step (its path)? >")
        if path not in session.run.paths():
            self.terminal.say(f"no step {path!r}; steps: {', '.join(session.run.paths())}")
            return None
        if path == session.place.path:
            self.terminal.say(f"already at {path}")
            return None
        return Outcome("skipped", f"facilitator jumped to {path}", jump=path)

    def debrief(self, run: Run) -> None:
        """The hotwash, asked at the end of an interactive exercise: the objectives rated, what went well, what
        should improve and why, and the corrective actions of the improvement plan."""
        self.terminal.say("Hotwash. One item per line; an empty line ends the list.")
        ratings = [rating for n, objective in enumerate(self.exercise.scenario.objectives, 1)
                   if (rating := self._rating(n, objective))]
        went_well = self._lines("What went well?")
        self.terminal.say("What should improve?")
        improve: list[str | Improvement] = []
        while text := self.terminal.read("  >"):
            improve.append(Improvement(text=text, root_cause=self.terminal.read("    root cause (why) >") or None))
        actions: list[CorrectiveAction] = []
        while action := self.terminal.read("Corrective action (empty to finish) >"):
            actions.append(CorrectiveAction(
                action=action, capability=self._choose("  capability element", CAPABILITY_ELEMENTS),
                owner=self.terminal.read("  owner >") or None, start=self._date("  start date"),
                due=self._date("  due date")))
        self.exercise.hotwash(run, Hotwash(went_well=went_well, improve=improve, ratings=ratings), actions)

    def _rating(self, number: int, objective: str) -> Rating | None:
        self.terminal.say(f"Objective {number}: {objective}")
        self.terminal.say("  " + "; ".join(f"{key}: {label}" for key, label in RATINGS.items()))
        rating = self._choose("  rating", tuple(RATINGS))
        return Rating(objective=number, rating=rating, why=self.terminal.read("  why >") or None) if rating else None

    def _choose(self, question: str, choices: tuple[str, ...]) -> Any:
        """One of `choices` (any case), or None for an empty answer; asked again otherwise."""
        while answer := self.terminal.read(f"{question} ({', '.join(choices)}; empty: none) >"):
            found = [c for c in choices if c.lower() == answer.strip().lower()]
            if found:
                return found[0]
            self.terminal.say(f"  choose one of: {', '.join(choices)}")
        return None

    def _date(self, question: str) -> date | None:
        while answer := self.terminal.read(f"{question} (YYYY-MM-DD; empty: none) >"):
            try:
                return date.fromisoformat(answer.strip())
            except ValueError:
                self.terminal.say("  a date like 2026-07-22 is needed")
        return None

    def _lines(self, question: str) -> list[str]:
        self.terminal.say(question)
        out = []
        while line := self.terminal.read("  >"):
            out.append(line)
        return out
