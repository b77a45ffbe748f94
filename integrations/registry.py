"""The integration registry. Built-in integrations register through the same entry-point group as third-party
ones (`ir.integrations` in pyproject.toml), so there is one way in; docs/integrations.md says how to write one.

An integration module must not import its client library at import time: validation, `ir list` and `ir --help`
load the registry. The client is imported in `connect`.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ir.errors import IrError
from ir.format.catalog import Capability

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ir.store.records import OutboxItem

GROUP = "ir.integrations"
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # a playbook's `via:` and an ir.toml table name
MEMBERS = ("name", "handles", "settings_model", "environment", "connect")
SettingsT = TypeVar("SettingsT", bound="BaseModel")


class NotConfigured(Exception):
    """The integration lacks its credentials; the message says what to set."""


class Refused(Exception):
    """The service answered and did not do the action (invalid_auth, channel_not_found, 4xx, 429): it is safe
    to try again later. `retry_after` is the wait it asked for, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def retry_after(header: object, default: float = 1.0) -> float:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); anything
    else, or none, is `default`. Never negative."""
    if header is None:
        return default
    text = str(header).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Unknown(Exception):
    """No clear answer (timeout, dropped connection, 5xx): the action may have happened. It is reconciled
    before it is tried again."""


@dataclass(frozen=True)
class Target:
    """What an action acts on, from the incident's earlier actions: its channel, ticket and status message; and the
    head of its timeline as the action is sent, which the message or comment publishes (a witness)."""

    incident: str
    channel: str | None = None  # Slack channel id
    ticket: str | None = None  # Jira issue key
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)  # action -> ref of the latest done one
    head: tuple[int, str] | None = None  # (event count, head hash)
    channels: dict[str, str] = field(default_factory=dict)  # channel name -> id, as earlier posts found them


# A witness: the head of the timeline published where the store's SQL cannot reach (the incident channel, the
# ticket), `ir timeline #57 3f2a9c1b0d4e5f67`; `ir verify --witnesses` reads them back.
WITNESS = re.compile(r"ir timeline #(\d+) ([0-9a-f]{16})\b")


def witness(head: tuple[int, str] | None) -> str:
    return f"ir timeline #{head[0]} {head[1][:16]}" if head else ""


@dataclass(frozen=True)
class Witness:
    """A head read back from a service: where it was published, the event's seq and the start of its hash."""

    where: str
    seq: int
    hash: str


def witnesses_in(text: str, where: str) -> list[Witness]:
    return [Witness(where, int(seq), digest) for seq, digest in WITNESS.findall(text)]


@dataclass(frozen=True)
class Finding:
    """One line of `ir integrations check`."""

    ok: bool
    what: str
    fix: str | None = None


class Connection(Protocol):
    def perform(self, item: OutboxItem, target: Target) -> dict[str, Any]:
        """Do the action; return its external reference. Raise `Refused` or `Unknown`."""

    def reconcile(self, item: OutboxItem, target: Target) -> dict[str, Any] | None:
        """After an unknown outcome: the reference if the action did happen, else None."""

    def check(self) -> list[Finding]:
        """Can the configured account do what playbooks ask (auth, channels, project, transitions)?"""

    def witnesses(self, target: Target) -> list[Witness]:
        """The timeline heads ir published to the incident's channel or ticket, read back (`ir verify
        --witnesses`); raise `Refused` or `Unknown` when they cannot be read."""


@dataclass(frozen=True)
class EnvVar:
    """An environment variable an integration reads. Credentials come from the environment alone: ir never stores
    them, and the values of `secret` ones are replaced by [secret] in every message it records or prints."""

    purpose: str  # what it is for, as the documentation says it: "the Slack bot token (xoxb-...)"
    secret: bool = True


class Integration(Protocol[SettingsT]):
    """What an integration module provides, as one object named by its entry point (`integration = Slack()`)."""

    @property
    def name(self) -> str:
        """Its name: `via: <name>` in playbooks, its `[<name>]` table in ir.toml (lowercase letters, digits, _)."""

    @property
    def handles(self) -> frozenset[str]:
        """The step kinds it performs: "notify", "ticket"."""

    @property
    def settings_model(self) -> type[SettingsT]:
        """Its `[<name>]` table in ir.toml, and what a playbook's `integrations: <name>:` may override: a pydantic
        model with a default for every field that forbids unknown ones (`extra="forbid"`), each field documented."""

    @property
    def environment(self) -> Mapping[str, EnvVar]:
        """The environment variables it reads (its credentials), each with what it is for."""

    def connect(self, settings: SettingsT, env: Mapping[str, str]) -> Connection:
        """A connection from its settings (an instance of `settings_model`: ir.toml, then the playbook's overrides)
        and those of its `environment` variables that are set, or `NotConfigured` saying which ones to set."""


@dataclass(frozen=True)
class Installed:
    """An integration and the entry point it comes from, for messages and `ir integrations list`."""

    integration: Integration[Any]
    entry_point: EntryPoint

    @property
    def origin(self) -> str:
        """Its entry point and distribution: entry point `slack = ir.integrations.slack:integration` of ir 0.2.0.
        Computed when it is said: naming the distribution parses its metadata, which validation does not pay for."""
        return _origin(self.entry_point)


@lru_cache(maxsize=1)
def installed() -> dict[str, Installed]:
    """Every integration of the entry-point group, by name. An entry point that cannot be loaded, or does not give
    an integration, is an `IrError` naming it and its distribution (a plugin's bug is not ir's)."""
    found: dict[str, Installed] = {}
    for ep in entry_points(group=GROUP):
        integration = _load(ep)
        if integration.name in found:
            raise IrError(f"two integrations are named {integration.name!r}: the {found[integration.name].origin} and "
                          f"the {_origin(ep)}", hint="uninstall one of them")
        found[integration.name] = Installed(integration, ep)
    return found


def available() -> dict[str, Integration[Any]]:
    return {name: i.integration for name, i in installed().items()}


def capabilities() -> dict[str, Capability]:
    """What the playbook format needs of each integration: the step kinds it handles, and its settings model."""
    return {name: Capability(i.handles, i.settings_model) for name, i in available().items()}


def _origin(ep: EntryPoint) -> str:
    where = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "an unknown distribution"
    return f"entry point `{ep.name} = {ep.value}` of {where}"


def _fix(ep: EntryPoint) -> str:
    return f"fix or uninstall {ep.dist.name}" if ep.dist else "fix or uninstall the plugin"


def _load(ep: EntryPoint) -> Integration[Any]:
    try:
        obj = ep.load()
    except Exception as exc:  # a plugin's import may raise anything; it is reported, not run without it
        raise IrError(f"the integration {_origin(ep)} cannot be loaded: {type(exc).__name__}: {exc}",
                      hint=_fix(ep)) from None
    problem = _misfit(obj)
    if problem:
        raise IrError(f"the {_origin(ep)} is not an integration: {problem}",
                      hint=f"{_fix(ep)} (docs/integrations.md)")
    return obj  # type: ignore[no-any-return]


def _misfit(obj: Any) -> str | None:
    """What keeps `obj` from being an Integration, or None."""
    from pydantic import BaseModel, ValidationError

    missing = [m for m in MEMBERS if not hasattr(obj, m)]
    if missing:
        return f"it has no {', '.join(f'`{m}`' for m in missing)}"
    if not isinstance(obj.name, str) or not NAME.fullmatch(obj.name):
        return f"its name {obj.name!r} is not lowercase letters, digits and _ (starting with a letter)"
    model = obj.settings_model
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "its `settings_model` is not a pydantic model class"
    if model.model_config.get("extra") != "forbid":
        return "its `settings_model` accepts unknown settings: set `extra=\"forbid\"` so that a typo is reported"
    try:
        model()
    except ValidationError:
        return "its `settings_model` has a setting without a default (an ir.toml without its table must be valid)"
    if not (isinstance(obj.environment, Mapping) and all(isinstance(v, EnvVar) for v in obj.environment.values())):
        return "its `environment` is not a mapping of variable names to EnvVar"
    return None

