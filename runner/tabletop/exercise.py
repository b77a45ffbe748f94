"""A tabletop exercise in progress: injects delivered when their trigger fires (each once, even across a crash and
resume), the facilitator's controls (next inject, ad-hoc inject, jump to a step, observations), and the hotwash.

Everything goes on the timeline: `inject`, `observation`, `hotwash` and `corrective_action` events, which the
after-action report (`ir export --format aar`) reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ir.tabletop.scenario import Inject, Scenario
from ir.store.timeline import utc_now

if TYPE_CHECKING:
    from ir.run.engine import Outcome, Place, Runner, Session
    from ir.cli.terminal import Terminal

SCOPE = "exercise"  # the variable scope that marks injects as delivered


@dataclass
class Exercise:
    scenario: Scenario
    adhoc_at: dict[str, list[str]] = field(default_factory=dict)  # step path -> ad-hoc injects (answers files)
    pace: float | None = None  # seconds of room time a step takes, in a run from an answers file (exercise.pace)

    # triggers (called by the runner) ------------------------------------------------------------------
    def before_step(self, runner: Runner, place: Place) -> None:
        """Deliver what is due as this step starts: its injects, its phase's (each inject once, so at the first
        step of the phase that runs), the clock's."""
        clock = self.clock(runner) if any(i.at.clock for i in self.scenario.injects) else 0.0
        for inject in self.scenario.injects:
            at = inject.at
            if (at.step == place.path or at.phase == place.phase
                    or (at.clock and clock >= _seconds(at.clock))):
                self.deliver(runner, place, inject, at.describe())
        for n, text in enumerate(self.adhoc_at.get(place.path, [])):
            self.adhoc(runner, place, text, key=f"adhoc-{place.path}-{n}")

    def after_decision(self, runner: Runner, place: Place, choice: str) -> None:
        for inject in self.scenario.injects:
            if inject.at.decision == place.path and inject.at.choice in (None, choice):
                self.deliver(runner, place, inject, f"after decision {place.path} -> {choice}")

    def clock(self, runner: Runner) -> float:
        """Seconds on the exercise clock, compressed: wall-clock time since the incident opened, less the time it
        was paused; or, with a pace, the pace for every step started before this one."""
        events = runner.store.events(runner.incident_id)
        if self.pace is not None:
            started = sum(1 for event in events if event.kind == "step.started")
            return max(started - 1, 0) * self.pace * self.scenario.time_compression
        running, since = utc_now() - _moment(runner.incident.opened_at), None
        for event in events:
            if event.kind == "incident.paused":
                since = _moment(event.recorded_at)
            elif event.kind == "incident.resumed" and since:
                running, since = running - (_moment(event.recorded_at) - since), None
        return running.total_seconds() * self.scenario.time_compression

    # delivering -------------------------------------------------------------------------------------
    def deliver(self, runner: Runner, place: Place | None, inject: Inject, why: str) -> bool:
        name = f"inject.{inject.id}"
        if (SCOPE, name) in runner.variables:
            return False
        data: dict[str, Any] = {"inject": inject.id, "title": inject.title, "trigger": why,
                                "artefacts": [a.title for a in inject.artefacts], "expect": inject.expect}
        runner.record("inject", place, f"{inject.title}: {inject.text}", data, variables={(SCOPE, name): True})
        runner.responder.say(self.render(inject, why))
        return True

    def adhoc(self, runner: Runner, place: Place | None, text: str, key: str | None = None) -> None:
        """An inject the facilitator sends: one of the scenario's, named by its id, or any text."""
        inject = next((i for i in self.scenario.injects if i.id == text), None)
        if inject:
            self.deliver(runner, place, inject, "sent by the facilitator")
            return
        name = f"inject.{key}" if key else None
        if name and (SCOPE, name) in runner.variables:
            return
        runner.record("inject", place, f"ad hoc: {text}",
                      {"inject": None, "title": f"ad hoc: {text}", "trigger": "facilitator"},
                      variables={(SCOPE, name): True} if name else None)
        runner.responder.say(f"INJECT (ad hoc): {text}")

    def next_inject(self, runner: Runner, place: Place) -> Inject | None:
        """The facilitator's "next inject": the first one, in scenario order, not yet delivered."""
        for inject in self.scenario.injects:
            if self.deliver(runner, place, inject, "sent by the facilitator"):
                return inject
        runner.responder.say("every inject has been delivered")
        return None

    @staticmethod
    def observe(runner: Runner, place: Place | None, kind: str, text: str) -> None:
        runner.record("observation", place, text, {"kind": kind})

    @staticmethod
    def render(inject: Inject, why: str) -> str:
        lines = [f"INJECT {inject.id} ({why}): {inject.title}", inject.text.strip()]
        for artefact in inject.artefacts:
            lines += [f"--- {artefact.kind}: {artefact.title} ---", artefact.content.strip()]
        lines += [f"  expected: {e}" for e in inject.expect]
        lines += [f"  discuss: {q}" for q in inject.questions]
        return "\n".join(lines)

    # after the playbook ------------------------------------------------------------------------------
    def missed(self, runner: Runner) -> list[str]:
        """The scenario's injects that did not arrive, each with its trigger (and, for the clock's, where
        the clock stopped), so that a skipped inject is said, not silently missing."""
        clock = self.clock(runner)
        return [f"inject {i.id} did not arrive ({i.at.describe()}"
                + (f"; the exercise clock stopped at {_duration(clock)}" if i.at.clock else "") + ")"
                for i in self.scenario.injects if (SCOPE, f"inject.{i.id}") not in runner.variables]

    @staticmethod
    def hotwash(runner: Runner, went_well: list[str], improve: list[str],
                actions: list[dict[str, str]]) -> None:
        runner.record("hotwash", None, f"hotwash: {len(went_well)} went well, {len(improve)} to improve",
                      {"went_well": went_well, "improve": improve})
        for action in actions:
            runner.record("corrective_action", None, action["action"],
                          {"owner": action.get("owner"), "due": action.get("due")})


class Facilitator:
    """The facilitator's controls, offered at every step of an interactive exercise."""

    def __init__(self, exercise: Exercise, terminal: Terminal):
        self.exercise, self.terminal = exercise, terminal

    def controls(self) -> dict[str, tuple[str, Any]]:
        return {"i": ("next [i]nject", self._next), "a": ("[a]d-hoc inject", self._adhoc),
                "j": ("[j]ump", self._jump), "b": ("o[b]servation", self._observe)}

    def _next(self, session: Session) -> None:
        self.exercise.next_inject(session.runner, session.place)

    def _adhoc(self, session: Session) -> None:
        self.exercise.adhoc(session.runner, session.place, self.terminal.read_required("  inject id (from the scenario) or text >"))

    def _observe(self, session: Session) -> None:
        kind = ""
        while kind not in ("strength", "gap"):
            kind = {"s": "strength", "g": "gap"}.get(self.terminal.read("  [s]trength or [g]ap? >").lower(), "")
        self.exercise.observe(session.runner, session.place, kind, self.terminal.read_required("  observation >"))

    def _jump(self, session: Session) -> Outcome | None:
        from ir.run.engine import Outcome

        path = self.terminal.read("  jump to which step (its path)? >")
        if path not in session.runner.paths():
            self.terminal.say(f"no step {path!r}; steps: {', '.join(session.runner.paths())}")
            return None
        return Outcome("skipped", f"facilitator jumped to {path}", jump=path)

    def debrief(self, runner: Runner) -> None:
        """The hotwash, asked at the end of an interactive exercise."""
        self.terminal.say("Hotwash. One item per line; an empty line ends the list.")
        went_well = self._lines("What went well?")
        improve = self._lines("What should improve?")
        actions = []
        while action := self.terminal.read("Corrective action (empty to finish) >"):
            actions.append({"action": action, "owner": self.terminal.read("  owner >") or None,
                            "due": self.terminal.read("  due date (YYYY-MM-DD) >") or None})
        self.exercise.hotwash(runner, went_well, improve, actions)

    def _lines(self, question: str) -> list[str]:
        self.terminal.say(question)
        out = []
        while line := self.terminal.read("  >"):
            out.append(line)
        return out


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(duration: str) -> float:
    from ir.format.model import parse_duration

    return parse_duration(duration).total_seconds()


def _duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d {rest // 3600}h {rest % 3600 // 60:02d}m" if days else f"{rest // 3600}h {rest % 3600 // 60:02d}m"
