"""Settings: `ir.toml` (in the current directory, else the user config directory), overridden by the playbook's
`integrations:` section. Each installed integration has its table, `[<name>]`, described by its settings model
(integrations/slack.py, integrations/jira.py, a plugin's own); `[exercise]` is ir's. Only non-secret settings live
here; credentials come from the environment alone (`Secrets`: the variables each integration declares), are never
written to the store, the timeline, exports or logs, and are never printed.

    [slack]
    channel_template = "ir-{{ incident.id | lower }}"
    channels = { security-leadership = "sec-leads" }   # a playbook's channel -> your workspace's
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
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from ir.errors import InvalidPlaybook, IrError, Problem
from ir.format.model import Model
from ir.integrations.registry import installed

FILE = "ir.toml"


class ExerciseConfig(Model):
    slack_channel: str | None = None
    """Tabletop exercises send their Slack messages to this channel (prefixed [EXERCISE]); unset: only shown."""
    jira_project: str | None = None
    """Tabletop exercises open their tickets in this project (prefixed [EXERCISE]); unset: only shown."""


class StoreConfig(Model):
    url: str | None = None
    """Where incidents are kept: a PostgreSQL URL (`postgresql://ir@db.example/ir`) for a team's shared store;
    unset, the embedded SQLite file in IR_HOME. IR_STORE overrides it. Never a password: that comes from
    PGPASSWORD or ~/.pgpass."""

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str | None) -> str | None:
        if url and (urlsplit(url).password is not None or re.search(r"(^|[?&\s])password=", url)):
            raise ValueError("the store URL holds a password: ir.toml keeps none; give it in PGPASSWORD or "
                             "~/.pgpass (or IR_STORE) and take it out of the URL")
        return url


class Settings(Model):
    """The settings in force. `settings_model()` is this with a field per installed integration: its table."""

    exercise: ExerciseConfig = ExerciseConfig()
    store: StoreConfig = StoreConfig()

    def of(self, integration: str) -> BaseModel:
        """The settings of an installed integration (an instance of its `settings_model`)."""
        found = getattr(self, integration, None) if integration in type(self).model_fields else None
        if not isinstance(found, BaseModel):
            raise IrError(f"no integration named {integration!r} is installed",
                          hint="`ir integrations list` shows the integrations installed")
        return found

    def routed(self) -> set[str]:
        """The integrations an exercise may really use: those routed to an exercise channel or project."""
        return {name for name, where in (("slack", self.exercise.slack_channel), ("jira", self.exercise.jira_project))
                if where}

    def for_exercise(self) -> Settings:
        """The settings of an exercise: its channel and project instead of the real ones, nobody invited."""
        channel, project = self.exercise.slack_channel, self.exercise.jira_project
        slack = self.of("slack").model_copy(update={"channels": {}, "invite": [], **(
            {"channel_template": channel} if channel else {})})
        jira = self.of("jira").model_copy(update={"project": project} if project else {})
        return self.model_copy(update={"slack": slack, "jira": jira})


@lru_cache(maxsize=1)
def settings_model() -> type[Settings]:
    """`Settings` with a table per installed integration, `[<name>]`, described by its settings model."""
    tables: dict[str, Any] = {}
    for name, found in installed().items():
        if name in Settings.model_fields or hasattr(Settings, name):
            raise IrError(f"the integration {name!r} ({found.origin}) takes a name ir.toml keeps for its own use",
                          hint="rename the integration")
        model = found.integration.settings_model
        tables[name] = (model, Field(default_factory=model))
    return create_model("Settings", __base__=Settings, **tables)


class Secrets:
    """The environment variables each installed integration reads (its `environment`), from the environment alone:
    never stored. Its repr hides the values, so a traceback cannot show them."""

    def __init__(self, env: Mapping[str, Mapping[str, str]], secret: list[str]):
        self._env, self._secret = env, secret

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Secrets:
        env = {name: {var: environ[var] for var in i.integration.environment if environ.get(var)}
               for name, i in installed().items()}
        secret = [environ[var] for i in installed().values() for var, what in i.integration.environment.items()
                  if what.secret and environ.get(var)]
        return cls(env, secret)

    def of(self, integration: str) -> Mapping[str, str]:
        """An integration's variables that are set (the mapping its `connect` gets)."""
        return _Hidden(self._env.get(integration, {}))

    def __repr__(self) -> str:
        shown = {name: sorted(env) for name, env in self._env.items()}
        return f"Secrets(set: {shown})"

    def values(self) -> list[str]:
        """Every secret value, of every integration (for scrubbing error messages)."""
        return list(self._secret)


class _Hidden(dict[str, str]):
    """A dict whose repr names its keys only."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: [set]" for key in self) + "}"


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
        model: Any = settings_model()
        for part in loc[:-1]:
            model = model.model_fields[part].annotation if part in getattr(model, "model_fields", {}) else None
        known = list(getattr(model, "model_fields", {}))
        close = difflib.get_close_matches(loc[-1], known, n=1)
        message, hint = f"unknown setting `{loc[-1]}`", (f"did you mean `{close[0]}`?" if close else
                                                          f"settings here: {', '.join(known)}")
    else:
        message, hint = error["msg"], _where_documented(loc[0])
    return Problem(message, file, _line(text, loc), path=".".join(loc), hint=hint)


def _where_documented(table: str) -> str:
    model = settings_model().model_fields[table].annotation if table in settings_model().model_fields else None
    if model is None or getattr(model, "__module__", "").startswith("ir."):
        return "see the settings in README.md"
    return f"see the [{table}] settings: `ir integrations list`"


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


def load(overrides: Mapping[str, Mapping[str, Any]] | None = None, cwd: Path | None = None) -> Settings:
    """The settings in force: ir.toml, then the playbook's overrides (`integrations:`, already checked against the
    settings models when the playbook was loaded): each setting given replaces ir.toml's."""
    model = settings_model()
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
            settings = model.model_validate(data)
        except ValidationError as exc:
            problems = [_problem(e, text, str(path)) for e in exc.errors(include_url=False)]
            raise InvalidPlaybook(sorted(problems, key=lambda p: p.line or 0)) from None
    else:
        settings = model()
    if not overrides:
        return settings
    update = {}
    for name, given in overrides.items():
        table = settings.of(name)
        try:
            checked = type(table).model_validate(given)
        except ValidationError as exc:  # the plugin changed since the playbook was checked
            raise InvalidPlaybook([Problem(e["msg"], path=".".join(map(str, ("integrations", name, *e["loc"]))))
                                   for e in exc.errors(include_url=False)]) from None
        update[name] = table.model_copy(update={key: getattr(checked, key) for key in checked.model_fields_set})
    return settings.model_copy(update=update)


def store_url() -> str | None:
    """The store to use: IR_STORE, else `[store] url` in ir.toml; None: the embedded SQLite file."""
    return os.environ.get("IR_STORE") or load().store.url
