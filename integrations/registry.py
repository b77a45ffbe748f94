"""The integration registry. Built-in integrations register through the same entry-point group as third-party
ones (`ir.integrations` in pyproject.toml), so there is one way in.

An integration module must not import its client library at import time: validation, `ir list` and `ir --help`
load the registry. The client is imported in `connect`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ir.config import Secrets, Settings
    from ir.store.records import OutboxItem

GROUP = "ir.integrations"


class NotConfigured(Exception):
    """The integration lacks its credentials; the message says what to set."""


class Refused(Exception):
    """The service answered and did not do the action (invalid_auth, channel_not_found, 4xx, 429): it is safe
    to try again later. `retry_after` is the wait it asked for, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Unknown(Exception):
    """No clear answer (timeout, dropped connection, 5xx): the action may have happened. It is reconciled
    before it is tried again."""


@dataclass(frozen=True)
class Target:
    """What an action acts on, from the incident's earlier actions: its channel, ticket and status message."""

    incident: str
    channel: str | None = None  # Slack channel id
    ticket: str | None = None  # Jira issue key
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)  # action -> ref of the latest done one


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


@runtime_checkable
class Integration(Protocol):
    name: str
    handles: frozenset[str]  # the step kinds it performs: "notify", "ticket"

    def connect(self, settings: Settings, secrets: Secrets) -> Connection:
        """A connection, or `NotConfigured` saying which environment variables to set."""


@lru_cache(maxsize=1)
def available() -> dict[str, Integration]:
    found: dict[str, Integration] = {}
    for ep in entry_points(group=GROUP):
        integration = ep.load()
        if not isinstance(integration, Integration):
            raise TypeError(f"entry point {ep.value} in group {GROUP} is not an Integration")
        found[integration.name] = integration
    return found


def capabilities() -> dict[str, frozenset[str]]:
    return {name: i.handles for name, i in available().items()}


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret value replaced, for messages that quote a service's or a library's words."""
    for value in secrets:
        text = text.replace(value, "[secret]")
    return text
