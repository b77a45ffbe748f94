"""The playbook format. These pydantic models *are* the format: the JSON Schema, `ir show --json` and
docs/playbook-format.md all come from them (a test fails when a field is undocumented).

Phases follow the classic NIST SP 800-61 incident-response life cycle, the one CISA's federal playbooks use:
preparation, detection-analysis, containment, eradication, recovery, post-incident.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator, model_validator

from ir.times import parse_duration

PHASES = ("preparation", "detection-analysis", "containment", "eradication", "recovery", "post-incident")
Phase = Literal["preparation", "detection-analysis", "containment", "eradication", "recovery", "post-incident"]
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES = ("low", "medium", "high", "critical")
Milestone = Literal["detected", "declared", "contained", "eradicated", "recovered"]
END = "end"

PlaybookId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Template = Annotated[str, StringConstraints(min_length=1, max_length=40_000)]
SemVer = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")]

_BOUND = re.compile(r"\s*\{\{(?:(?!\}\}).)+\}\}\s*", re.S)  # a `min` or `max` from an earlier value

Duration = Annotated[str, StringConstraints(pattern=r"^(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?$", min_length=2)]

VariableType = Literal[
    "string", "text", "integer", "boolean", "choice", "multi-choice", "list", "date", "datetime",
    "url", "email", "hash", "ip", "domain", "cve",
]


class Model(BaseModel):
    """The base of the file formats' models. A field's docstring (the string under it) is its description in the
    JSON Schema; runner/format/schema.py reads them from the source when a schema is built, which keeps them out of
    every start-up (pydantic's `use_attribute_docstrings` would cost each `ir validate`; bench/startup.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Variable(Model):
    """A typed value the runner asks for: a playbook input or a question in a `prompt` step."""

    id: Name
    """The variable's name in templates: `inputs.<id>` for inputs, `answers.<id>` for prompt questions."""
    type: VariableType = "string"
    """How the answer is read and checked. `datetime` takes a time zone (`2026-03-29 14:02 America/Los_Angeles`)."""
    label: str | None = None
    """The question shown to the responder; defaults to the id."""
    help: str | None = None
    """One line of guidance shown under the question."""
    required: bool = True
    """A required value must be given (or have a default) before the run goes on."""
    default: Any = None
    """The value used when the responder just presses Enter, and in `--non-interactive` runs."""
    example: Any = None
    """A realistic value: shown as a hint, and used by `--non-interactive --dry-run` runs."""
    choices: list[str] | None = None
    """The allowed values of `choice` and `multi-choice` variables."""
    min: int | str | None = None
    """For `integer`: the smallest value allowed; a number, or a template of an earlier value
    (`"{{ answers.hosts_executed }}"`)."""
    max: int | str | None = None
    """For `integer`: the largest value allowed; a number, or a template of an earlier value
    (`"{{ answers.hosts_installed }}"`)."""

    @model_validator(mode="after")
    def _choices_fit_type(self) -> Variable:
        has_choices = self.type in ("choice", "multi-choice")
        if has_choices and not self.choices:
            raise ValueError(f"a {self.type} variable needs `choices`")
        if self.choices and not has_choices:
            raise ValueError(f"`choices` only applies to choice and multi-choice variables, not {self.type}")
        for name, bound in (("min", self.min), ("max", self.max)):
            if isinstance(bound, str) and not _BOUND.fullmatch(bound):
                raise ValueError(f"`{name}` {bound!r} is neither a whole number nor one template expression such as "
                                 f'"{{{{ answers.hosts_installed }}}}"')
        if (self.min is not None or self.max is not None) and self.type != "integer":
            raise ValueError(f"`min` and `max` only apply to integer variables, not {self.type}")
        if isinstance(self.min, int) and isinstance(self.max, int) and self.min > self.max:
            raise ValueError(f"`min` ({self.min}) is larger than `max` ({self.max})")
        return self


class Role(Model):
    """A part someone plays in the response; steps name the role that owns them."""

    id: Name
    """How steps refer to the role (`role: commander`)."""
    title: str
    """The role's name as people say it: "Incident commander"."""
    description: str | None = None
    """What the role is responsible for during the incident."""


class EvidenceItem(Model):
    """Something to capture and keep: its hash and custody go on the timeline."""

    id: Name
    """Names the evidence in the timeline and in answers files."""
    description: str
    """What to collect, from where, and how."""


class StepBase(Model):
    id: Name
    """Unique within the playbook; `steps.<id>` in templates; the key in answers files."""
    title: Template
    """What the step does, in a few words. A template."""
    phase: Phase
    """The incident-response phase the step belongs to."""
    role: Name | None = None
    """The role that owns the step; it must be declared under `roles`."""
    when: str | None = None
    """A Jinja expression; when it is false the step is skipped (recorded as skipped: condition false)."""
    next: str | None = None
    """The step that follows (a step id, or `end`); by default the next step in the list."""
    on_failure: str = "stop"
    """When the step is marked failed: `stop` pauses the run, `continue` goes on, or a step id to jump to."""
    sla: Duration | None = None
    """How long the step may take from when it starts (15m, 4h, 1h30m, 2d); overdue steps are flagged."""
    milestone: Milestone | None = None
    """Completing the step marks this milestone of the incident (used for time-to-contain and the like)."""

    @field_validator("sla")
    @classmethod
    def _sla_positive(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= timedelta(0):
            raise ValueError("an sla must be longer than zero")
        return value

    def targets(self) -> list[str]:
        """Every step id this step can lead to explicitly (not counting falling through to the next one)."""
        out = [self.next] if self.next else []
        if self.on_failure not in ("stop", "continue"):
            out.append(self.on_failure)
        return out


class ManualStep(StepBase):
    """Work a person does: instructions, a checklist ticked item by item, evidence to capture."""

    kind: Literal["manual"]
    instructions: Template
    """Markdown shown to the responder. A template."""
    checklist: list[Template] = []
    """Items ticked one by one; each is a template."""
    evidence: list[EvidenceItem] = []
    """Evidence the responder is asked to record (a file, or a description) before completing the step."""


class PromptStep(StepBase):
    """Questions whose answers become variables (`answers.<id>`) for later steps."""

    kind: Literal["prompt"]
    questions: list[Variable] = Field(min_length=1)
    """The questions, asked in order."""


class Choice(Model):
    """One option of a decision."""

    id: Name
    """The value recorded (`steps.<step>.decision`) and the key used in answers files."""
    label: str
    """What the responder sees."""
    next: str | None = None
    """The step this choice leads to (a step id, or `end`); by default the step after the decision."""
    description: str | None = None
    """When to pick this choice."""


class DecisionStep(StepBase):
    """A choice that sends the response down different paths; the rationale goes on the timeline."""

    kind: Literal["decision"]
    question: Template
    """What is being decided. A template."""
    choices: list[Choice] = Field(min_length=2)
    """At least two options."""
    default: Name | None = None
    """The choice taken when nobody answers (`--non-interactive` runs without an answer for this step)."""

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> DecisionStep:
        if self.default and self.default not in [c.id for c in self.choices]:
            raise ValueError(f"default {self.default!r} is not one of the choices' ids")
        return self

    def targets(self) -> list[str]:
        return super().targets() + [c.next for c in self.choices if c.next]

    def choice(self, choice_id: str) -> Choice:
        return next(c for c in self.choices if c.id == choice_id)


class NotifyStep(StepBase):
    """A chat message, through the Slack integration (or another that handles `notify`)."""

    kind: Literal["notify"]
    via: Name = "slack"
    """The integration that delivers it."""
    action: Literal["create_channel", "post", "status"] = "post"
    """`create_channel` opens the incident channel (and invites `invite`), `post` sends `message`,
    `status` updates the pinned status message."""
    channel: Template | None = None
    """Where to post: a channel name; by default the incident channel. A template."""
    message: Template | None = None
    """The text (Slack mrkdwn) for `post`; for `status`, an extra line under the status. A template."""
    invite: list[Template] = []
    """For `create_channel`: people (e-mail or user id) or groups to invite."""
    thread: bool = False
    """For `post`: reply in the thread of the pinned status message instead of the channel (follow-ups)."""

    @model_validator(mode="after")
    def _fields_fit_action(self) -> NotifyStep:
        if self.action == "post" and not self.message:
            raise ValueError("a `post` notification needs a `message`")
        if self.invite and self.action != "create_channel":
            raise ValueError("`invite` only applies to action create_channel")
        if self.thread and self.action != "post":
            raise ValueError("`thread` only applies to action post")
        return self


class TicketStep(StepBase):
    """A ticket change, through the Jira integration (or another that handles `ticket`)."""

    kind: Literal["ticket"]
    via: Name = "jira"
    """The integration that performs it."""
    action: Literal["create", "task", "comment", "transition", "link"]
    """`create` opens the incident ticket, `task` a follow-up task linked to it, `comment` comments on it,
    `transition` moves it (by transition name), `link` links it to another issue."""
    summary: Template | None = None
    """For `create` and `task`: the summary line. A template."""
    description: Template | None = None
    """For `create` and `task`: the body. A template."""
    comment: Template | None = None
    """For `comment`: the text. A template."""
    transition: Template | None = None
    """For `transition`: the transition's name as the workflow shows it ("In Progress")."""
    link: Template | None = None
    """For `link`: the other issue's key (`OPS-42`). A template."""
    link_type: str = "Relates"
    """For `link`: the issue link type's name."""
    labels: list[str] = []
    """For `create` and `task`: extra labels."""
    due: Template | None = None
    """For `create` and `task`: the due date (YYYY-MM-DD). A template."""

    @model_validator(mode="after")
    def _fields_fit_action(self) -> TicketStep:
        needs = {"create": "summary", "task": "summary", "comment": "comment", "transition": "transition",
                 "link": "link"}[self.action]
        if not getattr(self, needs):
            raise ValueError(f"a `{self.action}` ticket step needs `{needs}`")
        return self


class NoteStep(StepBase):
    """A timeline entry written by the playbook itself."""

    kind: Literal["note"]
    message: Template
    """The entry's text. A template."""


class IncludeStep(StepBase):
    """Runs another playbook's steps here, then continues with this step's `next`."""

    kind: Literal["include"]
    playbook: PlaybookId
    """The id of the playbook to run."""
    inputs: dict[Name, Any] = {}
    """Values for the included playbook's inputs; strings are templates rendered in this playbook."""


Step = Annotated[
    ManualStep | PromptStep | DecisionStep | NotifyStep | TicketStep | NoteStep | IncludeStep,
    Field(discriminator="kind"),
]
STEP_KINDS = ("manual", "prompt", "decision", "notify", "ticket", "note", "include")


def integration_settings(models: Mapping[str, type[BaseModel]]) -> type[Model]:
    """The model of a playbook's `integrations:` section for the integrations installed (`models`: each one's
    settings model, its ir.toml table): under each name, any of its settings."""
    fields: dict[str, Any] = {name: (model, Field(default_factory=model, description=f"Overrides of the [{name}] "
                                                                                   f"settings in ir.toml."))
                              for name, model in models.items()}
    return create_model("IntegrationSettings", __base__=Model, **fields)


class Playbook(Model):
    """A playbook: metadata, inputs, roles and steps."""

    id: PlaybookId
    """How the playbook is named on the command line (`ir run <id>`); lowercase letters, digits and dashes."""
    title: str
    """A short name."""
    version: SemVer
    """Semantic version of the playbook (1.2.0). Quote it in YAML."""
    description: str = ""
    """What the playbook is for and when to use it (Markdown)."""
    owners: list[str] = []
    """Who maintains the playbook (names or e-mail addresses)."""
    tags: list[str] = []
    """Free-form labels for finding the playbook."""
    severity: Severity = "medium"
    """The incident's default severity: low, medium, high or critical. An input or prompt question with the id
    `severity` (a choice of those four) sets the incident's severity when answered."""
    incident_title: Template | None = None
    """The title of an incident opened with this playbook (a template over `inputs`); default: the playbook's
    title."""
    inputs: list[Variable] = []
    """Values asked for when the incident opens (`inputs.<id>` in templates)."""
    roles: list[Role] = []
    """The roles steps are assigned to."""
    integrations: dict[Name, dict[str, Any]] = {}
    """Non-secret integration settings that override ir.toml for this playbook: under an installed integration's
    name, any of its ir.toml settings."""
    steps: list[Step] = Field(min_length=1)
    """The steps, run in order unless `next` or a decision says otherwise."""

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def by_phase(self) -> list[tuple[str, list[Step]]]:
        """The steps grouped by phase, in the life cycle's order; phases with no step are left out."""
        return [(phase, steps) for phase in PHASES if (steps := [s for s in self.steps if s.phase == phase])]


def step_paths(playbooks: Mapping[str, Playbook], playbook_id: str, prefix: str = "") -> Iterator[tuple[str, Step]]:
    """Every step path of a playbook, included playbooks' steps too (`include_step/step`)."""
    for step in playbooks[playbook_id].steps:
        yield prefix + step.id, step
        if isinstance(step, IncludeStep):
            yield from step_paths(playbooks, step.playbook, f"{prefix}{step.id}/")
