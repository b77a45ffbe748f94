"""A tabletop exercise in progress: injects delivered when their trigger fires (each once, even across a crash and
resume), the facilitator's controls (next inject, ad-hoc inject, jump to a step, observations), and the hotwash.

Everything goes on the timeline: `inject`, `observation`, `hotwash` and `corrective_action` events, which the
after-action report (`ir export --format aar`) reads back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ir.errors import Problem
from ir.format.bundle import Bundle
from ir.run.answers import Answers, CorrectiveAction, ExerciseAnswers, Hotwash, Improvement
from ir.run.responder import PauseRequested, Place, Run
from ir.store.timeline import utc_now
from ir.tabletop.scenario import Inject, Scenario, bundle_scenario
from ir.times import duration, moment, parse_duration

SCOPE = "exercise"  # the variable scope that marks injects as delivered


@dataclass
class Exercise:
    """The run's `StepHooks` in a tabletop exercise."""

    scenario: Scenario
    adhoc_at: dict[str, list[str]] = field(default_factory=dict)  # step path -> ad-hoc injects (answers files)
    pace: float | None = None  # seconds of room time a step takes, in a run from an answers file (exercise.pace)
    debrief: Callable[[Run], None] | None = None  # the hotwash once the playbook ends: a facilitator's, or none

    @classmethod
    def for_bundle(cls, bundle: Bundle, given: ExerciseAnswers | None) -> Exercise:
        """The exercise an incident runs, from the scenario its bundle keeps (none: injects-free) and the answers
        file's `exercise:` section, whose hotwash is the debrief when there is no facilitator."""
        scenario = bundle_scenario(bundle) or Scenario(id=bundle.root, title="no scenario", version="0.0.0",
                                                       playbook=bundle.root)
        if given is None:
            return cls(scenario)
        pace = parse_duration(given.pace).total_seconds() if given.pace else None
        exercise = cls(scenario, dict(given.adhoc), pace)
        exercise.debrief = lambda run: exercise.debrief_from(run, given)
        return exercise

    # triggers (called by the runner) ------------------------------------------------------------------
    def before_step(self, run: Run, place: Place) -> None:
        """Deliver what is due as this step starts: its injects, its phase's (each inject once, so at the first
        step of the phase that runs), the clock's."""
        clock = self.clock(run) if any(i.at.clock for i in self.scenario.injects) else 0.0
        for inject in self.scenario.injects:
            at = inject.at
            if (at.step == place.path or at.phase == place.phase
                    or (at.clock and clock >= parse_duration(at.clock).total_seconds())):
                self.deliver(run, place, inject, at.describe())
        for n, text in enumerate(self.adhoc_at.get(place.path, [])):
            self.adhoc(run, place, text, key=f"adhoc-{place.path}-{n}")

    def after_decision(self, run: Run, place: Place, choice: str) -> None:
        for inject in self.scenario.injects:
            if inject.at.decision == place.path and inject.at.choice in (None, choice):
                self.deliver(run, place, inject, f"after decision {place.path} -> {choice}")

    def clock(self, run: Run) -> float:
        """Seconds on the exercise clock, compressed: wall-clock time since the incident opened, less the time it
        was paused; or, with a pace, the pace for every step started before this one."""
        events = run.events()
        if self.pace is not None:
            started = sum(1 for event in events if event.kind == "step.started")
            return max(started - 1, 0) * self.pace * self.scenario.time_compression
        running, since = utc_now() - moment(run.opened_at()), None
        for event in events:
            if event.kind == "incident.paused":
                since = moment(event.recorded_at)
            elif event.kind == "incident.resumed" and since:
                running, since = running - (moment(event.recorded_at) - since), None
        return running.total_seconds() * self.scenario.time_compression

    # delivering -------------------------------------------------------------------------------------
    def deliver(self, run: Run, place: Place | None, inject: Inject, why: str) -> bool:
        name = f"inject.{inject.id}"
        if (SCOPE, name) in run.variables:
            return False
        data: dict[str, Any] = {"inject": inject.id, "title": inject.title, "trigger": why,
                                "artefacts": [a.title for a in inject.artefacts], "expect": inject.expect}
        run.record("inject", place, f"{inject.title}: {inject.text}", data, variables={(SCOPE, name): True})
        run.say(self.render(inject, why))
        return True

    def adhoc(self, run: Run, place: Place | None, text: str, key: str | None = None) -> None:
        """An inject the facilitator sends: one of the scenario's, named by its id, or any text."""
        inject = next((i for i in self.scenario.injects if i.id == text), None)
        if inject:
            self.deliver(run, place, inject, "sent by the facilitator")
            return
        name = f"inject.{key}" if key else None
        if name and (SCOPE, name) in run.variables:
            return
        run.record("inject", place, f"ad hoc: {text}",
                      {"inject": None, "title": f"ad hoc: {text}", "trigger": "facilitator"},
                      variables={(SCOPE, name): True} if name else None)
        run.say(f"INJECT (ad hoc): {text}")

    def waiting(self, run: Run) -> list[Inject]:
        """The scenario's injects not delivered yet, in scenario order."""
        return [i for i in self.scenario.injects if (SCOPE, f"inject.{i.id}") not in run.variables]

    def next_inject(self, run: Run, place: Place) -> Inject | None:
        """The facilitator's "next inject": the first one, in scenario order, not yet delivered."""
        for inject in self.scenario.injects:
            if self.deliver(run, place, inject, "sent by the facilitator"):
                return inject
        run.say("every inject has been delivered")
        return None

    @staticmethod
    def observe(run: Run, place: Place | None, kind: str, text: str, root_cause: str | None = None) -> None:
        run.record("observation", place, text, {"kind": kind, "root_cause": root_cause})

    @staticmethod
    def render(inject: Inject, why: str) -> str:
        lines = [f"INJECT {inject.id} ({why}): {inject.title}", inject.text.strip()]
        for artefact in inject.artefacts:
            lines += [f"--- {artefact.kind}: {artefact.title} ---", artefact.content.strip()]
        lines += [f"  expected: {e}" for e in inject.expect]
        lines += [f"  discuss: {q}" for q in inject.questions]
        return "\n".join(lines)

    # after the playbook ------------------------------------------------------------------------------
    def finished(self, run: Run) -> None:
        """The exercise's end: the injects that did not arrive, then the hotwash, held once (a resume of an
        exercise whose hotwash was held asks nothing; one interrupted during its hotwash asks it again)."""
        if (SCOPE, "hotwash") in run.variables:
            run.say("the hotwash was held already")
            return
        for line in self.missed(run):
            run.say(line)
        if self.debrief:
            try:
                self.debrief(run)
            except PauseRequested:
                run.say("the hotwash was interrupted; nothing of it was recorded: `ir resume` holds it again")

    def missed(self, run: Run) -> list[str]:
        """The scenario's injects that did not arrive, each with its trigger (and, for the clock's, where
        the clock stopped), so that a skipped inject is said, not silently missing."""
        clock = self.clock(run)
        return [f"inject {i.id} did not arrive ({i.at.describe()}"
                + (f"; the exercise clock stopped at {duration(timedelta(seconds=clock))}" if i.at.clock else "") + ")"
                for i in self.waiting(run)]

    def debrief_from(self, run: Run, given: ExerciseAnswers) -> None:
        """The hotwash of an exercise run without a facilitator: from the answers file's `exercise:` section."""
        places = {path: run.place(path) for path in {o.step for o in given.observations}}
        for o in given.observations:
            self.observe(run, places[o.step], o.kind, o.text, o.root_cause)
        self.hotwash(run, given.hotwash, given.actions)

    def hotwash(self, run: Run, hotwash: Hotwash, actions: list[CorrectiveAction]) -> None:
        """The `hotwash` event (what went well, what should improve with its root cause, the objectives rated)
        and a `corrective_action` event for each action of the improvement plan."""
        improve = [Improvement(text=i) if isinstance(i, str) else i for i in hotwash.improve]
        objectives = self.scenario.objectives
        ratings = [{**r.model_dump(), "title": objectives[r.objective - 1] if r.objective <= len(objectives) else None}
                   for r in hotwash.ratings]
        run.record("hotwash", None, f"hotwash: {len(hotwash.went_well)} went well, {len(improve)} to improve, "
                                    f"{len(ratings)} objective(s) rated",
                   {"went_well": list(hotwash.went_well), "improve": [i.text for i in improve],
                    "root_causes": [i.root_cause for i in improve], "ratings": ratings},
                   variables={(SCOPE, "hotwash"): True})
        for a in actions:
            run.record("corrective_action", None, a.action, {
                "capability": a.capability, "owner": a.owner, "start": a.start.isoformat() if a.start else None,
                "due": a.due.isoformat() if a.due else None})


def objective_problems(given: Answers, scenario: Scenario | None) -> list[Problem]:
    """The ratings of an answers file's hotwash that name no objective of the scenario."""
    objectives = scenario.objectives if scenario else []
    rated = given.exercise.hotwash.ratings if given.exercise else []
    return [given.problem(("exercise", "hotwash", "ratings", n, "objective"),
                          f"the scenario has no objective {r.objective}",
                          f"number its objectives from 1 to {len(objectives)}" if objectives else
                          "ratings need a scenario with objectives")
            for n, r in enumerate(rated) if r.objective > len(objectives)]
