"""The integration registry. Built-in integrations register through the same entry-point group as third-party
ones (`ir.integrations` in pyproject.toml), so there is one way in."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

GROUP = "ir.integrations"


@runtime_checkable
class Integration(Protocol):
    """What the registry needs to know about an integration; its module must not import its client library at
    import time (validation and `ir list` load the registry)."""

    name: str
    handles: frozenset[str]  # the step kinds it performs: "notify", "ticket"


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


class Connection(Protocol):
    """A configured, reachable integration for one incident (built by the integration from settings)."""

    def perform(self, action: str, payload: dict[str, object], key: str) -> dict[str, object]:
        """Do the action; return its external reference (issue key, channel id and ts, ...)."""

    def reconcile(self, action: str, payload: dict[str, object], key: str) -> dict[str, object] | None:
        """After an unknown outcome: the reference if the action did happen, else None."""
