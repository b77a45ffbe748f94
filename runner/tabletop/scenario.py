"""Tabletop scenarios: the story an exercise tells around a playbook. Like playbooks, the pydantic models are the
format (`ir schema --scenario` prints its JSON Schema) and files are checked with file:line:column.

Injects arrive when a step starts (`at: {step: contain}`), when the first step of a phase starts
(`{phase: containment}`), after a decision (`{decision: affected, choice: affected}`), when the exercise clock
passes an offset (`{clock: 2h}`; the clock runs `time_compression` times faster than the wall clock), or only
when the facilitator sends them (`{adhoc: true}`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from ir.errors import InvalidPlaybook, Problem, UsageError
from ir.format import values
from ir.format.bundle import Bundle
from ir.format.catalog import Catalog, scenarios
from ir.format.load import schema_problems
from ir.format.model import DecisionStep, Duration, Model, Name, Phase, Playbook, PlaybookId, SemVer, step_paths
from ir.format.schema import json_schema
from ir.format.source import Source, parse, read_file, read_raw

SCENARIO_SCHEMA_ID = "https://github.com/ir-runner/ir/schemas/scenario.schema.json"
ScenarioId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]  # may start with a year or a digit


class Artefact(Model):
    """Something the room is handed with an inject: a fake EDR alert, a vendor e-mail, a log excerpt."""

    title: str
    """What it is, as the room sees it."""
    kind: Literal["edr-alert", "email", "advisory", "log", "chat", "document"] = "document"
    """The kind of artefact."""
    content: str
    """Its text (Markdown)."""


class Trigger(Model):
    """When an inject arrives: exactly one of `step`, `phase`, `decision`, `clock` or `adhoc`."""

    step: str | None = None
    """When this step starts (a step path: `contain`, or `intrusion/scope` inside an included playbook)."""
    phase: Phase | None = None
    """When the first step of this phase starts."""
    decision: str | None = None
    """After this decision is taken (a step path)."""
    choice: Name | None = None
    """With `decision`: only when this choice was taken."""
    clock: Duration | None = None
    """When the exercise clock passes this offset from the start (15m, 2h, 3d)."""
    adhoc: bool = False
    """Only when the facilitator sends it."""

    def describe(self) -> str:
        """How the trigger reads on the timeline and in the after-action report: `step contain`,
        `exercise clock 2d`."""
        if self.decision:
            return f"decision {self.decision}" + (f" -> {self.choice}" if self.choice else "")
        return (f"step {self.step}" if self.step else f"phase {self.phase}" if self.phase
                else f"exercise clock {self.clock}" if self.clock else "facilitator")

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [k for k in ("step", "phase", "decision", "clock") if getattr(self, k)] + (["adhoc"] if self.adhoc
                                                                                           else [])
        if len(given) != 1:
            raise ValueError("give exactly one of step, phase, decision, clock or adhoc"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.choice and not self.decision:
            raise ValueError("`choice` only applies with `decision`")
        return self


class Inject(Model):
    """A piece of the story delivered to the room."""

    id: Name
    """Names the inject in the timeline and the after-action report."""
    title: str
    """A headline."""
    text: str
    """What the facilitator reads out (Markdown)."""
    at: Trigger
    """When it arrives."""
    artefacts: list[Artefact] = []
    """Material handed out with it."""
    expect: list[str] = []
    """The actions the players are expected to take after it."""
    questions: list[str] = []
    """Discussion questions for the facilitator."""


class Participant(Model):
    name: str
    """Who plays."""
    role: Name | None = None
    """The playbook role they play (commander, scribe, ...)."""
    team: str | None = None
    """Where they work."""


class Expected(Model):
    """The choice the scenario's authors expect at a decision, and why."""

    choice: Name
    """The choice id."""
    why: str | None = None
    """The reasoning, for the after-action report."""


class Scenario(Model):
    """A tabletop exercise around one playbook."""

    id: ScenarioId
    """How the scenario is named on the command line (`ir tabletop supply-chain --scenario 3cx-2023`)."""
    title: str
    """A short name."""
    version: SemVer
    """Semantic version of the scenario. Quote it in YAML."""
    playbook: PlaybookId
    """The playbook it exercises."""
    background: str = ""
    """The situation before the exercise starts (Markdown), read out at the start."""
    narrative: str = ""
    """How the story unfolds, for the facilitator (Markdown)."""
    objectives: list[str] = []
    """What the exercise is to test; the after-action report measures against them."""
    participants: list[Participant] = []
    """Who plays which role: the first participant of each role holds it in the exercise."""
    inputs: dict[Name, Any] = {}
    """Values of the playbook's inputs, by id, so the room does not type them (an answers file or `--var` wins)."""
    time_compression: Annotated[float, Field(gt=0)] = 1.0
    """How much faster the exercise clock runs than the wall clock (60: a minute is an hour)."""
    injects: list[Inject] = []
    """The injects, in the order the facilitator's "next inject" sends them."""
    expected_decisions: dict[str, Expected] = {}
    """By decision step path: the choice expected, compared with the one taken in the after-action report."""
    questions: list[str] = []
    """Discussion questions for the hotwash."""


def roles_played(scenario: Scenario) -> dict[str, str]:
    """Role id -> who plays it: the first participant named for each role."""
    played: dict[str, str] = {}
    for participant in scenario.participants:
        if participant.role:
            played.setdefault(participant.role, participant.name)
    return played


@lru_cache(maxsize=1)
def scenario_schema() -> dict[str, Any]:
    """The tabletop scenario format (`ir schema --scenario`)."""
    return json_schema(Scenario, SCENARIO_SCHEMA_ID)


def load_scenario(source: Source, playbooks: dict[str, Playbook], *, playbook: str | None = None) -> Scenario:
    """Check a parsed scenario against its schema and against the playbook it exercises (with `playbooks`,
    the included ones too; with `playbook`, it must be that one): every problem, with file:line:column."""
    if not isinstance(source.data, dict):
        raise InvalidPlaybook([source.problem((), "a scenario is a mapping", "start the file with `id:`")])
    try:
        scenario = Scenario.model_validate(source.data)
    except ValidationError as exc:
        raise InvalidPlaybook(schema_problems(exc, source, scenario_schema())) from None
    if playbook and scenario.playbook != playbook:
        raise InvalidPlaybook([source.problem(("playbook",), f"the scenario is for playbook {scenario.playbook}, "
                                              f"not {playbook}", f"run `ir tabletop {scenario.playbook} --scenario "
                                              f"{source.file}`")])
    if scenario.playbook not in playbooks:
        raise InvalidPlaybook([source.problem(("playbook",), f"no playbook {scenario.playbook!r}",
                                              "run `ir list` for the playbook ids")])
    problems = _references(scenario, source, playbooks)
    if problems:
        raise InvalidPlaybook(problems)
    return scenario


def read_scenario(path: Path, playbooks: dict[str, Playbook], *, playbook: str | None = None
                  ) -> tuple[Scenario, bytes]:
    raw = read_raw(path)
    return load_scenario(parse(raw, str(path)), playbooks, playbook=playbook), raw


def validate_file(path: Path, catalog: Catalog) -> Scenario:
    """A scenario file checked on its own (`ir validate`): against the playbook it names, found by `catalog`."""
    source = read_file(path)
    named = source.data.get("playbook") if isinstance(source.data, dict) else None
    playbooks: dict[str, Playbook] = {}
    if isinstance(named, str) and named in catalog.entries():
        playbooks = catalog.bundle(named).playbooks
    return load_scenario(source, playbooks)


def scenario_files() -> list[Path]:
    """The scenario files in the scenario directories."""
    return [entry.path for entry in scenarios()]


def find_scenario(ref: str) -> Path:
    """A scenario reference is a file path (with a / or a .yaml ending) or the id of a bundled or local one."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        if not Path(ref).is_file():
            raise UsageError(f"no scenario file at {ref}", hint="check the path")
        return Path(ref)
    known = {p.stem: p for p in scenario_files()}
    if ref not in known:
        raise UsageError(f"no scenario with id {ref!r}", hint=f"known: {', '.join(sorted(known)) or 'none'}")
    return known[ref]


def bundle_scenario(bundle: Bundle) -> Scenario | None:
    """The scenario an exercise's bundle keeps, if any, checked against the bundle's playbooks."""
    if bundle.scenario is None:
        return None
    scenario_id, text = bundle.scenario
    return load_scenario(parse(text, f"<scenario {scenario_id}>"), bundle.playbooks)


def _references(scenario: Scenario, source: Source, playbooks: dict[str, Playbook]) -> list[Problem]:
    steps = dict(step_paths(playbooks, scenario.playbook))
    problems: list[Problem] = []

    def decision(loc: tuple[Any, ...], choice_loc: tuple[Any, ...], path: str, choice: str | None) -> None:
        step = steps.get(path)
        if not isinstance(step, DecisionStep):
            problems.append(source.problem(loc, f"{path!r} is not a decision of {scenario.playbook}",
                                           "use a decision step's path"))
        elif choice and choice not in [c.id for c in step.choices]:
            problems.append(source.problem(choice_loc, f"decision {path} has no choice {choice!r}",
                                           f"its choices: {', '.join(c.id for c in step.choices)}"))

    for n, inject in enumerate(scenario.injects):
        at = inject.at
        if at.step and at.step not in steps:
            problems.append(source.problem(("injects", n, "at", "step"), f"no step {at.step!r} in {scenario.playbook}",
                                           "use a step path (`include_step/step` inside an included playbook)"))
        if at.decision:
            decision(("injects", n, "at", "decision"), ("injects", n, "at", "choice"), at.decision, at.choice)
    roles = [r.id for r in playbooks[scenario.playbook].roles]
    problems += [source.problem(("participants", n, "role"), f"the playbook {scenario.playbook} has no role "
                                f"{p.role!r}", f"its roles: {', '.join(roles) or 'none'}")
                 for n, p in enumerate(scenario.participants) if p.role and p.role not in roles]
    inputs = {v.id: v for v in playbooks[scenario.playbook].inputs}
    for name, raw in scenario.inputs.items():
        if name not in inputs:
            problems.append(source.problem(("inputs", name), f"the playbook {scenario.playbook} has no input {name!r}",
                                           f"its inputs: {', '.join(inputs) or 'none'}"))
            continue
        try:
            values.parse(inputs[name], raw)
        except ValueError as exc:
            problems.append(source.problem(("inputs", name), f"{raw!r} is not a valid {inputs[name].type}: {exc}"))
    for path, expected in scenario.expected_decisions.items():
        decision(("expected_decisions", path), ("expected_decisions", path, "choice"), path, expected.choice)
    ids = [i.id for i in scenario.injects]
    problems += [source.problem(("injects", n, "id"), f"duplicate inject id {i!r}", "give each inject its own id")
                 for n, i in enumerate(ids) if i in ids[:n]]
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
