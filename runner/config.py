"""Settings: `ir.toml` (in the current directory, else the user config directory), overridden by the playbook's
`integrations:` section. Only non-secret settings live here; tokens come from the environment alone
(`Secrets`), are never written to the store, the timeline, exports or logs, and are never printed.

    [slack]
    channel_template = "ir-{{ incident.id | lower }}"
    channels = ["security-leadership"]        # also receive every post
    invite = ["secops@example.com", "@ir-oncall"]

    [jira]
    project = "SEC"
    issue_type = "Incident"
    task_type = "Task"
    label_prefix = "ir"
    priorities = { critical = "Highest", high = "High", medium = "Medium", low = "Low" }
    transitions = { Contain = "Start containment" }   # a playbook's transition name -> your workflow's

    [exercise]                                  # tabletop exercises: where they may really send (else: shown only)
    slack_channel = "ir-exercise"
    jira_project = "EXR"
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ir.errors import InvalidPlaybook, Problem
from ir.format.model import IntegrationSettings, Model

FILE = "ir.toml"


class SlackConfig(Model):
    channel_template: str = "ir-{{ incident.id | lower }}"
    """The incident channel's name: a template over the incident (lowercase, digits, - and _ are kept)."""
    channels: list[str] = []
    """Channels that also receive every `post` (names, without #)."""
    invite: list[str] = []
    """People (e-mail or user id) and groups (@handle) invited to every incident channel."""
    timeout: float = 10.0
    """Seconds before a request counts as unanswered (its outcome is then checked before any retry)."""


class JiraConfig(Model):
    project: str = "IR"
    """The project key incident tickets go to."""
    issue_type: str = "Incident"
    """The issue type of the incident ticket."""
    task_type: str = "Task"
    """The issue type of follow-up tasks."""
    label_prefix: str = "ir"
    """Labels ir adds start with this; one of them is the idempotency label that finds a ticket again."""
    labels: list[str] = []
    """More labels for every ticket."""
    priorities: dict[str, str] = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
    """The priority name for each incident severity."""
    transitions: dict[str, str] = {}
    """Playbook transition names (Triage, Contain, Eradicate, Recover, Resolve) mapped to your workflow's."""
    timeout: float = 10.0
    """Seconds before a request counts as unanswered (its outcome is then checked before any retry)."""


class ExerciseConfig(Model):
    slack_channel: str | None = None
    """Tabletop exercises send their Slack messages to this channel (prefixed [EXERCISE]); unset: only shown."""
    jira_project: str | None = None
    """Tabletop exercises open their tickets in this project (prefixed [EXERCISE]); unset: only shown."""


class Settings(Model):
    slack: SlackConfig = SlackConfig()
    jira: JiraConfig = JiraConfig()
    exercise: ExerciseConfig = ExerciseConfig()

    def routed(self) -> set[str]:
        """The integrations an exercise may really use: those routed to an exercise channel or project."""
        return {name for name, where in (("slack", self.exercise.slack_channel), ("jira", self.exercise.jira_project))
                if where}

    def for_exercise(self) -> Settings:
        """The settings of an exercise: its channel and project instead of the real ones, nobody invited."""
        slack = self.slack.model_copy(update={"channels": [], "invite": [], **(
            {"channel_template": self.exercise.slack_channel} if self.exercise.slack_channel else {})})
        jira = self.jira.model_copy(update={"project": self.exercise.jira_project} if self.exercise.jira_project
                                    else {})
        return self.model_copy(update={"slack": slack, "jira": jira})


@dataclass(frozen=True)
class Secrets:
    """Credentials from the environment. Its repr hides the values, so a traceback cannot show them."""

    slack_token: str | None
    slack_base_url: str | None
    jira_url: str | None
    jira_user: str | None
    jira_api_token: str | None
    jira_pat: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Secrets:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        return cls(get("SLACK_BOT_TOKEN"), get("IR_SLACK_BASE_URL"), get("JIRA_URL"), get("JIRA_USER"),
                   get("JIRA_API_TOKEN"), get("JIRA_PAT"))

    def __repr__(self) -> str:
        shown = {k: ("set" if v else None) for k, v in self.__dict__.items()}
        return f"Secrets({shown})"

    def values(self) -> list[str]:
        """Every secret value (for scrubbing error messages)."""
        return [v for k, v in self.__dict__.items() if v and k in ("slack_token", "jira_api_token", "jira_pat")]


def config_path(cwd: Path | None = None) -> Path | None:
    local = (cwd or Path.cwd()) / FILE
    if local.is_file():
        return local
    import platformdirs

    user = Path(platformdirs.user_config_dir("ir", appauthor=False)) / FILE
    return user if user.is_file() else None


def _problem(error: Any, text: str, file: str) -> Problem:
    """A settings error at the line of its key (`[slack]` then `chanel_template = ...`), with a hint."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        model: Any = Settings
        for part in loc[:-1]:
            model = model.model_fields[part].annotation if part in getattr(model, "model_fields", {}) else None
        known = list(getattr(model, "model_fields", {}))
        close = difflib.get_close_matches(loc[-1], known, n=1)
        message, hint = f"unknown setting `{loc[-1]}`", (f"did you mean `{close[0]}`?" if close else
                                                          f"settings here: {', '.join(known)}")
    else:
        message, hint = error["msg"], "see the settings in README.md"
    return Problem(message, file, _line(text, loc), path=".".join(loc), hint=hint)


def _line(text: str, loc: list[str]) -> int | None:
    """The line of a setting: its key inside its table (`[slack]`), or its table's header for a missing key."""
    table, found = "", None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            table = stripped.strip("[] ").split("]")[0].strip()
            if [table] == loc[:1] and found is None:
                found = number
        elif "=" in stripped and table == ".".join(loc[:-1]) and stripped.split("=")[0].strip() == loc[-1]:
            return number
    return found


def load(overrides: IntegrationSettings | None = None, cwd: Path | None = None) -> Settings:
    """The settings in force: ir.toml, then the playbook's overrides."""
    path = config_path(cwd)
    data: dict[str, object] = {}
    if path:
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            at = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            message = re.sub(r" \(at line \d+, column \d+\)", "", str(exc))
            line, column = map(int, at.groups()) if at else (None, None)
            raise InvalidPlaybook([Problem(f"not valid TOML: {message}", str(path), line, column,
                                           hint="fix the syntax")]) from None
        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            problems = [_problem(e, text, str(path)) for e in exc.errors(include_url=False)]
            raise InvalidPlaybook(sorted(problems, key=lambda p: p.line or 0)) from None
    else:
        settings = Settings()
    if overrides is None:
        return settings
    slack = overrides.slack.model_dump(exclude_none=True)
    jira = overrides.jira.model_dump(exclude_none=True)
    if "labels" in jira:
        jira["labels"] = [*settings.jira.labels, *jira["labels"]]
    return settings.model_copy(update={"slack": settings.slack.model_copy(update=slack),
                                       "jira": settings.jira.model_copy(update=jira)})
