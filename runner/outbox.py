"""The outbox: every external action is recorded in the store as pending, under a deterministic idempotency key
(incident/step/action), before it is attempted; then it is marked done with its external reference.

In a dry run, or for an integration that is not configured, the action is rendered and recorded as "would do";
nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import templates
from .model import NotifyStep, TicketStep
from .store import Draft, OutboxItem, Store

if TYPE_CHECKING:
    from integrations.registry import Connection

    from .engine import Place

_NOTIFY_FIELDS = ("channel", "message")
_TICKET_FIELDS = ("summary", "description", "comment", "transition", "link", "due")


def payload(step: NotifyStep | TicketStep, context: dict[str, Any]) -> dict[str, Any]:
    """The rendered action: everything an integration needs, and nothing secret."""
    fields = _NOTIFY_FIELDS if isinstance(step, NotifyStep) else _TICKET_FIELDS
    out: dict[str, Any] = {name: templates.render(getattr(step, name), context)
                           for name in fields if getattr(step, name)}
    if isinstance(step, NotifyStep) and step.invite:
        out["invite"] = [templates.render(i, context) for i in step.invite]
    if isinstance(step, TicketStep):
        out |= {"labels": list(step.labels)} if step.labels else {}
        out |= {"link_type": step.link_type} if step.action == "link" else {}
    incident = context["incident"]
    out["incident"] = {k: incident[k] for k in ("id", "title", "severity", "exercise", "commander")}
    out["step_title"] = templates.render(step.title, context)
    return out


class Outbox:
    """Requests go to the store first (pending, under their idempotency key), then to the integration."""

    def __init__(self, store: Store, incident_id: str, actor: str, *, live: bool,
                 connect: Callable[[str], Connection | None], say: Callable[[str], None]):
        self.store, self.incident_id, self.actor, self.live = store, incident_id, actor, live
        self.connect, self.say = connect, say

    def prepare(self, place: Place, step: NotifyStep | TicketStep, context: dict[str, Any]) -> OutboxItem:
        """The action a step asks for, rendered; what the store already holds under its key, if anything."""
        key = f"{self.incident_id}/{place.path}/{step.action}"
        known = self.store.outbox_item(key)
        return known or OutboxItem(key, self.incident_id, step.via, f"{step.kind}.{step.action}",
                                   payload(step, context))

    @staticmethod
    def preview(item: OutboxItem) -> str:
        from integrations.console import describe

        return describe(item)

    def request(self, place: Place, item: OutboxItem) -> OutboxItem:
        if not item.created_at:
            item = self.store.enqueue(item, self._draft("integration.requested", item,
                                                        f"{item.integration} {item.action} requested",
                                                        place.step.phase))
        return self.deliver(item, place.step.phase)

    def deliver(self, item: OutboxItem, phase: str | None = None) -> OutboxItem:
        if item.status in ("done", "dry-run"):
            return item
        connection = self.connect(item.integration) if self.live else None
        if connection is None:
            from integrations.console import describe

            text = describe(item)
            self.say(f"would {text}")
            self.store.settle(item.key, self._draft("integration.dry_run", item, f"would {text}", phase),
                              status="dry-run")
        return item

    def _draft(self, kind: str, item: OutboxItem, message: str, phase: str | None,
               extra: dict[str, Any] | None = None) -> Draft:
        step = item.key.split("/", 1)[1].rsplit("/", 1)[0]
        data = {"key": item.key, "integration": item.integration, "action": item.action, **(extra or {})}
        return Draft(kind, self.actor, message, None, phase, step, data)
