"""The run loop: walks an incident's playbook step by step, asking a `Responder` (a person at a terminal, or an
answers file) and recording every change in the store before anything else happens.

The cursor is a step path: `scope` for a step of the incident's playbook, `include_step/step` inside an
included playbook. A killed run resumes at the cursor; what the step had already recorded (answers, ticked
checklist items, integration actions) is kept and not asked for or sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ir import sinks
from ir.errors import IrError, StepAlreadyDone, StepFailed
from ir.format import templates, values
from ir.format.bundle import Bundle
from ir.format.model import (
    END,
    SEVERITIES,
    DecisionStep,
    IncludeStep,
    ManualStep,
    NoteStep,
    NotifyStep,
    Playbook,
    PromptStep,
    Step,
    TicketStep,
    Variable,
)
from ir.run import ahead, amend, progress, reading
from ir.run.outbox import Outbox
from ir.run.responder import DoneElsewhere, Outcome, PauseRequested, Place, Responder, Session, StepHooks
from ir.store.header import sets_severity
from ir.store.records import Change, Draft, Incident, StepState, Store
from ir.store.timeline import Event, format_recorded, utc_now

JUMPED = "jump.to"  # the variable (incident scope) naming the step the facilitator's last jump went to


@dataclass
class IncidentRun:
    """One incident's playbook walked in this process, from the bundle it keeps (loaded once by the caller)."""

    store: Store
    bundle: Bundle
    incident_id: str
    responder: Responder
    actor: str
    outbox: Outbox
    hooks: StepHooks | None = None
    incident: Incident = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.bundle.playbook
        self.playbooks = self.bundle.playbooks
        self._open: str | None = None  # the step in progress while it is open (see `_step`)
        # The incident, step states and variables change through this run (other processes add events, such as
        # `ir note`, and the courier sets the channel and the ticket), so they are read once and then kept in step
        # with every commit; the incident is read again as each step starts, for the courier's fields.
        self.incident = self.store.incident(self.incident_id)
        self.steps = self.store.steps(self.incident_id)
        self.variables = self.store.variables(self.incident_id)
        # What every step looks up, built once (rebuilding it per step made a run quadratic in its length): each
        # playbook's step positions, decision labels and variable types; the template values of each scope, kept
        # in step with `record`.
        self._paths = [path for path, _ in self.bundle.paths()]
        self._shown = progress.shown(self.bundle)  # the steps shown, with the phase each is recorded in
        self._order = {path: n for n, (path, _, _) in enumerate(self._shown, 1)}
        self._includes = [(path, s) for path, s in self.bundle.paths() if isinstance(s, IncludeStep)]
        self._index = {pid: {s.id: n for n, s in enumerate(p.steps)} for pid, p in self.playbooks.items()}
        self._labels = {pid: {(s.id, c.id): c.label for s in p.steps if isinstance(s, DecisionStep) for c in s.choices}
                        for pid, p in self.playbooks.items()}
        self._types = {pid: {f"inputs.{v.id}": v for v in p.inputs} | {
            f"answers.{q.id}": q for s in p.steps if isinstance(s, PromptStep) for q in s.questions}
            for pid, p in self.playbooks.items()}
        self._scopes: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}  # scope: (playbook id, values)
        self._roles: dict[str, Any] = {}
        self._named: dict[str, Any] = {}  # role -> the holder's text
        self._people: dict[str, str] = {}  # role -> the Slack user found for its holder
        self._caught_up: set[str] = set()  # steps reached by a jump whose missing answers were asked
        self._values(self.variables)

    # the Run protocol, for responders, sessions and hooks ----------------------------------------------------
    def progress(self) -> list[tuple[str, int, int]]:
        return progress.progress(self._shown, self.steps, self.incident.cursor)

    def done_steps(self) -> list[str]:
        return [path for path, _, _ in self._shown if (s := self.steps.get(path)) and s.status != "started"]

    def upcoming(self) -> list[str]:
        return progress.upcoming(self._shown, self.steps, self.incident.cursor)

    def overdue(self) -> list[str]:
        return progress.overdue(self._shown, self.steps) + progress.updates_due(self._includes, self.steps,
                                                                                 self.variables)

    def remind(self, lines: list[str]) -> None:
        incident = self.incident
        self.outbox.remind(lines, {"id": incident.id, "title": incident.title, "severity": incident.severity,
                                   "exercise": incident.exercise, "commander": None})

    def events(self) -> Iterable[Event]:
        return self.store.events(self.incident_id)

    def opened_at(self) -> str:
        return self.incident.opened_at

    def say(self, text: str) -> None:
        self.responder.say(text)

    # places and context -----------------------------------------------------------------------------
    def place(self, path: str) -> Place:
        playbook, scope, phase = self.root, "", None
        *outer, last = path.split("/")
        for part in outer:
            step = playbook.steps[self._index[playbook.id][part]]
            assert isinstance(step, IncludeStep)
            playbook, scope, phase = self.playbooks[step.playbook], f"{scope}{part}/", phase or step.phase
        index = self._index[playbook.id][last]
        return Place(path, scope.rstrip("/"), playbook, index, phase or playbook.steps[index].phase)

    def paths(self) -> list[str]:
        """Every step path of the incident's playbook, included playbooks' steps too."""
        return list(self._paths)

    def state(self, place: Place) -> StepState:
        return self.steps.get(place.path) or StepState(place.path, "started")

    def context(self, place: Place | None) -> dict[str, Any]:
        """The template context at `place` (None: the incident's own playbook, before its first step). Its values
        are the run's own, kept up to date by `record`: templates read them, nothing changes them."""
        incident = self.incident
        playbook, scope = (place.playbook, place.scope) if place else (self.root, "")
        if scope not in self._scopes:
            self._scopes[scope] = (playbook.id, {"inputs": {}, "answers": {}})
            self._values({key: value for key, value in self.variables.items() if key[0] == scope})
        found = self._scopes[scope][1]
        return {**found, "roles": self._roles, "now": utc_now(),
                "steps": reading.Steps(self.steps, f"{scope}/" if scope else "", self._labels[playbook.id]),
                "incident": {"id": incident.id, "title": incident.title, "severity": incident.severity,
                             "status": incident.status, "exercise": incident.exercise,
                             "opened_at": incident.opened_at, "channel": incident.channel,
                             "ticket": incident.ticket, "commander": self._roles.get("commander")},
                "playbook": {"id": playbook.id, "title": playbook.title, "version": playbook.version}}

    def _values(self, changed: Mapping[tuple[str, str], Any]) -> None:
        """Bring the template values up to date with recorded variables: roles from any scope; a scope's inputs
        and answers once a context of that scope was asked for (the types are its playbook's)."""
        for (var_scope, name), value in changed.items():
            kind, _, key = name.partition(".")
            if kind == "people":  # the Slack user a role holder was found to be
                self._people[key] = value
                value, kind = self._named.get(key), "roles"
            if kind == "roles":
                # a role holder given as a Slack mention stays a mention; any other text is escaped like the rest
                self._named[key] = value
                self._roles[key] = templates.Live(value) if isinstance(value, str) and sinks.MENTION.fullmatch(value) \
                    else sinks.Person(value, self._people.get(key)) if isinstance(value, str) else value
            elif var_scope in self._scopes:
                pid, found = self._scopes[var_scope]
                types = self._types[pid]
                if name in types:
                    found[kind][key] = values.from_json(types[name], value)

    def draft(self, kind: str, place: Place | None, message: str = "", data: dict[str, Any] | None = None,
              occurred_at: datetime | None = None) -> Draft:
        return Draft(kind, self.actor, message, occurred_at.isoformat() if occurred_at else None,
                     place.phase if place else None, place.path if place else None, data or {})

    def record(self, kind: str, place: Place | None, message: str = "", data: dict[str, Any] | None = None, *,
               step: StepState | None = None, variables: dict[tuple[str, str], Any] | None = None,
               incident: dict[str, Any] | None = None, occurred_at: datetime | None = None,
               also: tuple[Draft, ...] = (), steps: tuple[StepState, ...] = ()) -> None:
        """One event (and `also` more) with the state they change, committed together."""
        states = ((step,) if step else ()) + steps
        change = Change(states, variables or {}, incident or {},
                        (self._open,) if self._open and any(s.path == self._open for s in states) else ())
        self.commit([self.draft(kind, place, message, data, occurred_at), *also], change)

    def commit(self, drafts: list[Draft], change: Change) -> None:
        """Events with the state they change, committed together; the run's own copies kept in step."""
        self.store.record(self.incident_id, drafts, change)
        self.steps.update((s.path, s) for s in change.steps)
        self.variables.update(change.variables)
        self._values(change.variables)
        if change.incident:
            self.incident = replace(self.incident, **change.incident)

    def correct(self, name: str, raw: str, reason: str) -> str:
        """Correct an earlier answer, input or role (ir.run.amend); what the correction event says."""
        draft, change = amend.correction(self.bundle, self.variables, name, raw, reason, self.actor)
        self.commit([draft], change)
        return draft.message

    # asking ------------------------------------------------------------------------------------------
    def ask(self, var: Variable, kind: str, scope: str, place: Place | None) -> None:
        """Ask for one variable (`kind` inputs, roles or answers) until the answer is valid, and record it,
        once: a value recorded earlier (also "not given" for an optional one) is not asked again on resume."""
        name = f"{kind}.{var.id}"
        key = f"{place.path}.{var.id}" if place else name
        if (scope, name) in self.variables:
            return
        problem, value, found = None, None, None
        while True:
            raw = self.responder.value(var, key, problem)
            if raw is None or raw == "":
                if not var.required:
                    break
                problem = "a value is needed"
                continue
            try:
                value = values.parse(var, raw)
                if var.type == "integer":
                    value = values.within(value, *reading.bounds(var, self.context(place)))
                found = self._person(kind, values.to_json(value))  # not found: asked again, saying why
                break
            except ValueError as exc:
                problem = str(exc)
        stored = values.to_json(value)
        changes: dict[str, Any] = {}
        if found is not None:  # a role holder is a person: the Slack user found for them is kept beside the name
            slack_id, shown_as = found
            self.responder.say(f"{var.id}: {stored} is {shown_as} in Slack")
            self.record("role.assigned", place, f"{name} = {stored}", {"name": name, "scope": scope, "value": stored,
                                                                        "slack": slack_id},
                        variables={(scope, name): stored, (scope, f"people.{var.id}"): slack_id})
            return
        if sets_severity(name, scope) and stored in SEVERITIES:
            changes["severity"] = stored
        shown = "not given" if stored is None else stored
        self.record("role.assigned" if kind == "roles" else "input.set", place, f"{name} = {shown}",
                    {"name": name, "scope": scope, "value": stored},
                    variables={(scope, name): stored}, incident=changes)

    def _person(self, kind: str, value: Any) -> tuple[str, str] | None:
        """The Slack user (id, how Slack names them) a role holder's text names, when a person finder is live;
        text it cannot match is refused, so the responder is asked again."""
        if kind != "roles" or not isinstance(value, str) or sinks.MENTION.fullmatch(value):
            return None
        return self.outbox.person(value)

    def open(self) -> None:
        """The incident's inputs, roles and title; on resume only what was not recorded yet."""
        for var in self.root.inputs:
            self.ask(var, "inputs", "", None)
        asked = [Variable(id=role.id, label=f"{role.title}: who? (Enter to leave it open)", required=False)
                 for role in self.root.roles if ("", f"roles.{role.id}") not in self.variables]
        self.responder.roles(asked)
        for who in asked:
            self.ask(who, "roles", "", None)
        if self.root.incident_title:
            title = templates.render(self.root.incident_title, self.context(None))
            if title != self.incident.title:
                self.record("incident.updated", None, f"title: {title}", {"title": title}, incident={"title": title})

    # the loop ----------------------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the playbook ends ("finished") or the responder pauses ("paused")."""
        place = None
        try:
            self.open()
            while (path := self.incident.cursor) is not None:
                place = self.place(path)
                self.step(place)
        except (PauseRequested, KeyboardInterrupt):  # Ctrl-C anywhere: what is recorded is committed; stop cleanly
            self.record("incident.paused", place, f"paused at {place.path}" if place else "paused while opening")
            return "paused"
        return "finished"

    def step(self, place: Place) -> None:
        try:
            self._step(place)
        except templates.TemplateProblem as exc:  # say which step, so the playbook's author can find it
            raise templates.TemplateProblem(f"step {place.path} of playbook {place.playbook.id}: {exc.message}",
                                            hint=exc.hint) from None

    def _step(self, place: Place) -> None:
        self.incident = self.store.incident(self.incident_id)  # the courier may have set its channel or ticket
        self._meanwhile()
        title = templates.render(place.step.title, self.context(place))
        if self._done_ahead(place, title):
            return
        # While the step is open, every write of its state needs it still open, so that a responder who does it
        # from elsewhere meanwhile (`ir step`) is never overwritten; a step done before (a facilitator's jump back
        # to it) is not guarded.
        self._open = place.path if self.state(place).status not in ahead.DONE else None
        try:
            self._open_step(place, title)
        except (DoneElsewhere, StepAlreadyDone):  # someone did the step while the responder was at it
            self._meanwhile()
            self._open = None
            if not self._done_ahead(place, title):
                raise
        finally:
            self._open = None

    def _done_ahead(self, place: Place, title: str) -> bool:
        """Whether someone completed or skipped the step ahead of the run; then the run goes on past it."""
        by = ahead.done_by(place.path, self.steps.get(place.path), self.variables)
        if by:
            self.passed(place, title, by)
            return True
        return False

    def _open_step(self, place: Place, title: str) -> None:
        step, states = place.step, self.steps
        if place.path not in states:
            self.record("step.started", place, title, {"kind": step.kind, "role": step.role, "sla": step.sla},
                        step=StepState(place.path, "started", started_at=format_recorded(utc_now())))
        if self.variables.get(("", JUMPED)) and place.path not in self._caught_up:
            # after a facilitator's jump, at its step and every step after it: what the step reads and was never
            # asked (the jump went over its prompt) is asked now
            self._catch_up(place)
        if step.when and not templates.evaluate(step.when, self.context(place)):
            self.finish(place, Outcome("skipped", "condition false"), None)
            return
        if not isinstance(step, IncludeStep):
            position = progress.position(self._order, place.path)
            inside = f" · {place.playbook.title} {place.index + 1}/{len(place.playbook.steps)}" if place.scope else ""
            self.responder.heading(place, title, position + inside)
        if self.hooks:
            self.hooks.before_step(self, place)
        if isinstance(step, IncludeStep):
            self.enter(place, step)
            return
        self.finish(place, *self.perform(place, step))

    def _meanwhile(self) -> None:
        """What others recorded since (`ir step` from another machine: answers, ticks, steps done ahead)."""
        self.steps.update(self.store.steps(self.incident_id))
        found = self.store.variables(self.incident_id)
        changed = {key: value for key, value in found.items() if key not in self.variables
                   or self.variables[key] != value}
        self.variables.update(changed)
        self._values(changed)

    def passed(self, place: Place, title: str, by: str) -> None:
        """Go on past a step someone completed or skipped ahead of the run (`ir.run.ahead`): asked nothing."""
        state, step = self.state(place), place.step
        target = step.choice(state.decision).next if isinstance(step, DecisionStep) and state.decision else None
        cursor, finished = self.after(place, target)
        drafts, states = self._ended(finished)
        self.record("step.passed", place, f"{title}: {state.status} by {by} ahead of the run", {"by": by,
                                                                                            "next": cursor},
                    variables={ahead.marker(place.path): None}, incident={"cursor": cursor}, also=drafts,
                    steps=states)
        self.responder.say(f"{title}: {state.status} by {by} ahead of the run; going on")

    def _ended(self, finished: list[Place]) -> tuple[tuple[Draft, ...], tuple[StepState, ...]]:
        """The events and states of the include steps that end with a step."""
        now = format_recorded(utc_now())
        return (tuple(self.draft("step.completed", parent, f"playbook {include.playbook} finished")
                      for parent in finished if isinstance(include := parent.step, IncludeStep)),
                tuple(replace(self.state(p), status="completed", finished_at=now) for p in finished))

    def perform(self, place: Place, step: Step) -> tuple[Outcome, str | None]:
        context, session = self.context(place), Session(self, place)
        if isinstance(step, PromptStep):
            for question in step.questions:
                self.ask(question, "answers", place.scope, place)
            return Outcome("completed"), None
        if isinstance(step, DecisionStep):
            state = self.state(place)
            if state.decision:  # decided before a crash: not asked or recorded again
                return Outcome("completed", state.note), step.choice(state.decision).next
            asked = templates.render(step.question, context)
            choice_id, rationale = self.responder.decide(place, asked, session)
            choice = step.choice(choice_id)
            self.record("decision", place, f"{asked} -> {choice.label}",
                        {"choice": choice.id, "label": choice.label, "rationale": rationale},
                        step=replace(state, decision=choice.id, note=rationale))
            if self.hooks:
                self.hooks.after_decision(self, place, choice.id)
            return Outcome("completed", rationale), choice.next
        if isinstance(step, ManualStep):
            return self.responder.act(place, templates.render(step.instructions, context),
                                      [templates.render(i, context) for i in step.checklist], session), None
        if isinstance(step, NoteStep):
            message = templates.render(step.message, context)
            state = self.state(place)
            if state.note is None:  # written once, even when a crash repeats the step
                self.record("note", place, message, step=replace(state, note=message))
            self.responder.say(message)
            return Outcome("completed"), None
        assert isinstance(step, (NotifyStep, TicketStep))
        items = self.outbox.prepare(place, step, context)
        if any(i.created_at for i in items):  # requested before a crash: deliver what is queued, ask nothing
            self.outbox.request(items)
            return Outcome("completed"), None
        outcome = self.responder.act(place, self.outbox.preview(items), [], session)
        if outcome.status == "completed":
            self.outbox.request(items)
        return outcome, None

    def _catch_up(self, place: Place) -> None:
        """Before a step reached by a jump: the inputs of the included playbooks it is inside (as their include
        steps would have set them), then the questions of its playbook whose answers it reads and nobody gave."""
        parts = place.path.split("/")
        for n in range(1, len(parts)):
            outer = self.place("/".join(parts[:n]))
            if isinstance(outer.step, IncludeStep):
                self._include_inputs(outer, outer.step)
        for asker, question in reading.unanswered(place, self.context(place)["answers"]):
            self.responder.say(f"{place.path} reads answers.{question.id}, never asked (the exercise jumped over "
                               f"{asker.path}): asking it now")
            self.ask(question, "answers", place.scope, asker)
        self._caught_up.add(place.path)

    def enter(self, place: Place, step: IncludeStep) -> None:
        included = self._include_inputs(place, step)
        scope = place.path
        self.record("note", place, f"entering playbook {included.id} {included.version}",
                    incident={"cursor": f"{scope}/{included.steps[0].id}"})

    def _include_inputs(self, place: Place, step: IncludeStep) -> Playbook:
        """Set the inputs an include step gives its playbook (those not recorded yet); the playbook."""
        included = self.playbooks[step.playbook]
        scope = place.path
        context = self.context(place)
        for var in included.inputs:
            if (scope, f"inputs.{var.id}") in self.variables:
                continue
            raw = step.inputs.get(var.id, var.default)
            if isinstance(raw, str):
                raw = templates.value(raw, context)
            if isinstance(raw, str):
                raw = raw.strip() or None  # a value not given renders as nothing
            if raw is None and var.required:
                raise IrError(f"step {place.path} gives {included.id}'s required input {var.id!r} no value",
                              hint=f"give it one under the include step's `inputs`, or make it optional in "
                                   f"{included.id}; then `ir resume`")
            try:
                value = None if raw is None else values.to_json(values.parse(var, raw))
            except ValueError as exc:
                raise IrError(f"step {place.path} gives {included.id}'s input {var.id!r} the value {raw!r}: {exc}",
                              hint="correct the include step's `inputs` in the playbook; then `ir resume`") from None
            shown = "not given" if value is None else value
            self.record("input.set", place, f"{scope}/inputs.{var.id} = {shown}",
                        {"name": f"inputs.{var.id}", "scope": scope, "value": value},
                        variables={(scope, f"inputs.{var.id}"): value})
        return included

    def finish(self, place: Place, outcome: Outcome, target: str | None) -> None:
        step = place.step
        if outcome.status == "failed":
            if step.on_failure == "stop":
                self.record("step.failed", place, outcome.note or "failed", {"on_failure": "stop"},
                            step=replace(self.state(place), status="failed", note=outcome.note))
                raise StepFailed(f"step {place.path} failed: {outcome.note or 'no reason given'}",
                                 hint=f"fix what failed, then `ir resume {self.incident_id}` runs the step again")
            target = None if step.on_failure == "continue" else step.on_failure
        cursor, finished_includes = (outcome.jump, []) if outcome.jump else self.after(place, target)
        jumped = {("", JUMPED): cursor} if outcome.jump else {}
        if cursor == END:  # the facilitator ended the exercise early
            cursor = None
        kind = {"completed": "step.completed", "skipped": "step.skipped", "failed": "step.failed"}[outcome.status]
        now = format_recorded(utc_now())
        also: tuple[Draft, ...] = (self.draft("milestone", place, step.milestone, {"milestone": step.milestone},
                                              outcome.at),) if step.milestone and outcome.status == "completed" else ()
        ended, states = self._ended(finished_includes)
        self.record(kind, place, outcome.note or "", {"next": cursor},
                    step=replace(self.state(place), status=outcome.status,
                                 finished_at=format_recorded(outcome.at) if outcome.at else now, note=outcome.note),
                    incident={"cursor": cursor}, occurred_at=outcome.at, also=also + ended, variables=jumped,
                    steps=states)

    def after(self, place: Place, target: str | None) -> tuple[str | None, list[Place]]:
        """The path that follows `place` when it leads to `target` (None: its `next`, else the next step), and
        the include steps that end with it (an included playbook that reaches its end completes its step)."""
        finished: list[Place] = []
        while True:
            target = target or place.step.next
            if target is None and place.index + 1 < len(place.playbook.steps):
                target = place.playbook.steps[place.index + 1].id
            if target and target != END:
                return (f"{place.scope}/{target}" if place.scope else target), finished
            if not place.scope:
                return None, finished
            place, target = self.place(place.scope), None
            finished.append(place)
