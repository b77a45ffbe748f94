"""What a run talks to, and what it hands out: the `Responder` that answers (a person at a terminal, or an
answers file), the `Session` of actions a responder may take at any step, and the `StepHooks` a tabletop
exercise plugs in. The engine implements `Run`; nothing here imports it, so responders, hooks and the engine
depend on this module and never on each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from ir.format.model import Phase, Playbook, Step, Variable
from ir.store.records import StepState
from ir.store.timeline import Event


@dataclass(frozen=True)
class Outcome:
    """How a responder finished a step."""

    status: str  # completed, skipped or failed
    note: str | None = None
    at: datetime | None = None  # when it really happened, if not now
    jump: str | None = None  # a step path to go to next (a tabletop facilitator's jump)


@dataclass(frozen=True)
class Place:
    """A step in context. `path` names it in the incident (`include_step/step` inside an included playbook),
    `scope` is where its variables live, and `phase` is where it is recorded: its own phase, or for a step of an
    included playbook the phase of the include step that runs it."""

    path: str
    scope: str
    playbook: Playbook
    index: int
    phase: Phase

    @property
    def step(self) -> Step:
        return self.playbook.steps[self.index]


class PauseRequested(Exception):
    """Raised by a responder when the person pauses (or presses Ctrl-C, or input ends): stop, lose nothing."""


class DoneElsewhere(Exception):  # noqa: N818 - an event, not an error
    """Raised by a responder waiting at a step that someone completed or skipped meanwhile from elsewhere
    (`ir step`): the run goes on past it without asking more."""


class Run(Protocol):
    """The incident run as responders, sessions and hooks see it."""

    @property
    def incident_id(self) -> str: ...

    @property
    def variables(self) -> Mapping[tuple[str, str], Any]:
        """The values recorded so far, by (scope, name): inputs, roles, answers, delivered injects."""

    def record(self, kind: str, place: Place | None, message: str = "", data: dict[str, Any] | None = None, *,
               variables: dict[tuple[str, str], Any] | None = None, occurred_at: datetime | None = None,
               step: StepState | None = None) -> None:
        """One event, with the state it changes, committed before anything else happens."""

    def state(self, place: Place) -> StepState: ...

    def place(self, path: str) -> Place: ...

    def paths(self) -> list[str]:
        """Every step path of the incident's playbook, included playbooks' steps too."""

    def progress(self) -> list[tuple[str, int, int]]:
        """Per phase: (phase, steps finished, steps on the branch taken)."""

    def done_steps(self) -> list[str]:
        """The steps finished (completed, skipped, failed), in the incident's order."""

    def upcoming(self) -> list[str]:
        """The next steps after the one in progress."""

    def overdue(self) -> list[str]:
        """Steps in progress past their SLA, as `path (SLA 15m, 2m 00s over)`, and the status updates due."""

    def remind(self, lines: list[str]) -> None:
        """Post what was announced as overdue or due to the incident channel, once each (a live incident)."""

    def events(self) -> Iterable[Event]: ...

    def correct(self, name: str, raw: str, reason: str) -> str:
        """Correct an earlier answer, input or role (an `input.corrected` event); what the event says."""

    def opened_at(self) -> str: ...

    def say(self, text: str) -> None:
        """One line to the responder."""


@dataclass
class Session:
    """What a responder may do at any step: notes, evidence, checklist ticks, the overview."""

    run: Run
    place: Place

    @property
    def incident_id(self) -> str:
        return self.run.incident_id

    def checked(self) -> tuple[int, ...]:
        """The checklist items of this step ticked so far."""
        return self.run.state(self.place).checked

    def tick(self, item: int, text: str) -> None:
        state = self.run.state(self.place)
        self.run.record("checklist.checked", self.place, f"done: {text}", {"item": item},
                        step=replace(state, checked=tuple(sorted({*state.checked, item}))))

    def note(self, text: str, at: datetime | None = None) -> None:
        self.run.record("note", self.place, text, occurred_at=at)

    def evidence(self, description: str, data: dict[str, Any], item: str | None = None) -> None:
        """Evidence recorded at the step; `item` names the step's evidence item it is."""
        if item is None:
            self.run.record("evidence", self.place, description, data)
            return
        self.run.record("evidence", self.place, description, {**data, "item": item},
                        variables={(self.place.scope, self._evidence_key(item)): True})

    def evidence_missing(self, item: str, reason: str) -> None:
        """A step's evidence item that could not be captured, and why (a note on the timeline)."""
        self.run.record("note", self.place, f"evidence {item} not captured: {reason}",
                        {"evidence": item, "captured": False},
                        variables={(self.place.scope, self._evidence_key(item)): False})

    def evidence_done(self, item: str) -> bool:
        """Whether the step's evidence item was recorded, or said not captured."""
        return (self.place.scope, self._evidence_key(item)) in self.run.variables

    def _evidence_key(self, item: str) -> str:
        return f"evidence.{self.place.step.id}.{item}"

    def overview(self) -> list[tuple[str, int, int]]:
        return self.run.progress()

    def correct(self, name: str, raw: str, reason: str) -> str:
        return self.run.correct(name, raw, reason)


class Responder(Protocol):
    def value(self, var: Variable, key: str, problem: str | None) -> Any:
        """A raw value for `var`, or None for none. `key` names it: `inputs.vendor`, `roles.commander`, or
        `<step path>.<question>`; `problem` says why the previous answer was refused."""

    def roles(self, asked: list[Variable]) -> None:
        """Before the roles not recorded yet are asked one by one (`value`): a chance to take them all at once."""

    def decide(self, place: Place, question: str, session: Session) -> tuple[str, str | None]:
        """A choice id of `place.step` and an optional rationale."""

    def act(self, place: Place, text: str, checklist: list[str], session: Session) -> Outcome:
        """How a step ends: a manual step's instructions and checklist, or what a notify/ticket step will do."""

    def heading(self, place: Place, title: str, position: str) -> None:
        """A step begins (`position` reads like `4/23`)."""

    def say(self, text: str) -> None:
        """Show one line to the responder."""


class StepHooks(Protocol):
    """Called by the run as it goes (a tabletop exercise delivers its injects through them)."""

    def before_step(self, run: Run, place: Place) -> None: ...

    def after_decision(self, run: Run, place: Place, choice: str) -> None: ...

    def finished(self, run: Run) -> None:
        """The playbook reached its end (not called when the run pauses)."""
