"""The outbox: nothing lost, nothing twice.

Every external action is first committed to the store as pending, under a deterministic idempotency key
(`incident/step path/action`, plus `/#channel` for each channel a post fans out to), with its
`integration.requested` event. A courier then delivers it in the background, one queue per integration so that
an action never overtakes the one it depends on (the channel before its posts, the ticket before its comments)
and a slow Jira never holds up Slack, nor the responder:

    pending -> sending -> done (with the external reference) | failed (refused: safe to retry)
                        | unknown (no clear answer: reconciled before it is tried again)

An action left `sending` by a crash is unknown too. Unknown actions are looked up first (Jira by the idempotency
label, Slack by the message metadata in the channel history) and only repeated when they did not happen. When an
integration fails, the responder sees one line, the timeline records it, and the rest of that integration's
actions wait in the store for `ir flush` or `ir resume`. In a dry run, or for an integration that is not
configured, actions are rendered and recorded as "would ...", and nothing is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ir import config
from ir.format import templates
from ir.format.bundle import Bundle
from ir.format.model import NotifyStep, TicketStep
from ir.integrations.dry_run import describe
from ir.integrations.registry import Connection, NotConfigured, Refused, Target, Unknown, available
from ir.redact import redact
from ir.run.responder import Place
from ir.sinks import FOR_INTEGRATION
from ir.store.records import UNDELIVERED, Draft, Incident, OutboxItem, Store

if TYPE_CHECKING:
    from ir.config import Secrets, Settings

_NOTIFY_FIELDS = ("channel", "message")
_TICKET_FIELDS = ("summary", "description", "comment", "transition", "link", "due")
_FREE_TEXT = frozenset({"message", "description", "comment"})  # read by people, in the sink's markup
CHANNEL_TEMPLATE = "ir-{{ incident.id | lower }}"  # a notify integration's incident channel without its own
MAX_RETRY_AFTER = 30.0  # seconds a rate-limited action waits in the courier before it is left for `ir flush`
ATTEMPTS = 3


def payload(step: NotifyStep | TicketStep, context: dict[str, Any], settings: Settings,
            phase: str) -> dict[str, Any]:
    """The rendered action: everything an integration needs, and nothing secret."""
    fields = _NOTIFY_FIELDS if isinstance(step, NotifyStep) else _TICKET_FIELDS
    escape = FOR_INTEGRATION.get(step.via)  # values from inputs, answers and notes stay text in the sink
    out: dict[str, Any] = {name: templates.render(getattr(step, name), context,
                                                  escape if name in _FREE_TEXT else None)
                           for name in fields if getattr(step, name)}
    if isinstance(step, NotifyStep):
        invite = [who for who in dict.fromkeys(templates.render(i, context).strip() for i in step.invite) if who]
        out |= {"invite": invite} if invite else {}  # once each: two roles may fall back to the same group
        out |= {"thread": True} if step.thread else {}
        if step.action == "create_channel":
            template = getattr(settings.of(step.via), "channel_template", CHANNEL_TEMPLATE)
            out["channel_name"] = templates.render(template, context)
    else:
        out |= {"labels": list(step.labels)} if step.labels else {}
        out |= {"link_type": step.link_type} if step.action == "link" else {}
    incident = context["incident"]
    out["incident"] = {k: incident[k] for k in ("id", "title", "severity", "exercise", "commander")}
    out["step_title"] = templates.render(step.title, context)
    out["phase"] = phase
    return out


class Connections:
    """The live connection of each integration, made once; an unconfigured one is said once and is None."""

    def __init__(self, settings: Settings, secrets: Secrets, say: Callable[[str], None], *,
                 only: set[str] | None = None):
        self.settings, self.secrets, self.say, self.only = settings, secrets, say, only
        self._made: dict[str, Connection | None] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Connection | None:
        with self._lock:
            if name not in self._made and self.only is not None and name not in self.only:
                self.say(f"{name} is simulated in this exercise: its actions are shown and recorded, not sent "
                         f"(route it with [exercise] in ir.toml)")
                self._made[name] = None
            if name not in self._made:
                try:
                    self._made[name] = available()[name].connect(self.settings.of(name), self.secrets.of(name))
                except NotConfigured as exc:
                    self.say(f"{name} is not configured, so its actions are shown and recorded, not sent: {exc}")
                    self._made[name] = None
            return self._made[name]


class Courier:
    """Delivers an incident's actions: `deliver` now, or `submit` to a background worker per integration (one
    thread each, so the order within an integration is kept). Each worker uses a store connection of its own.
    What a worker raises is collected by `check` and `finish` and raised again in the caller, so a bug in
    delivery reaches the one error handler instead of dying in its thread."""

    def __init__(self, open_store: Callable[[], Store], incident_id: str, actor: str, *, live: bool,
                 connections: Connections, say: Callable[[str], None]):
        self.open_store, self.incident_id, self.actor, self.live = open_store, incident_id, actor, live
        self.connections, self.say = connections, say
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._futures: list[Future[str]] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._down: set[str] = set()

    # background delivery ------------------------------------------------------------------------------
    def submit(self, item: OutboxItem) -> None:
        with self._lock:
            worker = self._workers.get(item.integration)
            if worker is None:
                worker = self._workers[item.integration] = ThreadPoolExecutor(
                    1, thread_name_prefix=f"ir-{item.integration}")
            self._futures.append(worker.submit(self._work, item.key))

    def _work(self, key: str) -> str:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open_store()
        item = store.outbox_item(key)
        if item is None or item.status not in UNDELIVERED or item.integration in self._down:
            return item.status if item else "missing"
        return self.deliver(store, item)

    def _close_store(self) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            store.close()
            self._local.store = None

    def check(self) -> None:
        """Raise, here, the first error a finished delivery raised (a bug: it is not a refusal or an unknown)."""
        with self._lock:
            done = [f for f in self._futures if f.done()]
            self._futures = [f for f in self._futures if not f.done()]
        for future in done:
            if not future.cancelled():
                future.result()

    def finish(self, timeout: float) -> None:
        """Let the workers empty their queues (up to `timeout` seconds; a delivery may queue another, such as the
        ticket's link to the channel); what is left stays in the store for `ir flush`. `check` then raises what a
        worker raised."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            wait(pending, timeout=left, return_when=FIRST_COMPLETED)
        with self._lock:
            for future in self._futures:
                future.cancel()  # not started: the action stays undelivered in the store
            for worker in self._workers.values():
                worker.submit(self._close_store)  # after the delivery still running, if any
                worker.shutdown(wait=False)
            self._workers.clear()

    # one delivery -------------------------------------------------------------------------------------
    def deliver(self, store: Store, item: OutboxItem) -> str:
        """Deliver one action (or render it, when it cannot be sent); its status afterwards."""
        connection = self.connections.get(item.integration) if self.live else None
        if connection is None:
            text = describe(item)
            if store.settle(item.key, self.draft("integration.dry_run", item, f"would {text}"), status="dry-run"):
                self.say(f"would {text}")
            return "dry-run"
        target = self.target(store)
        try:
            if item.status in ("sending", "unknown"):
                ref = connection.reconcile(item, target)
                if ref is not None:
                    return self._done(store, item, ref)
            for attempt in range(ATTEMPTS):
                if not store.begin(item.key):  # another process settled it meanwhile: never send it twice
                    settled = store.outbox_item(item.key)
                    assert settled is not None  # an outbox item is never deleted
                    return settled.status
                try:
                    return self._done(store, item, connection.perform(item, target))
                except Refused as exc:
                    wait = exc.retry_after
                    if wait is None or wait > MAX_RETRY_AFTER or attempt == ATTEMPTS - 1:
                        raise
                    time.sleep(wait)
        except Refused as exc:
            return self._failed(store, item, "failed", str(exc))
        except Unknown as exc:
            return self._failed(store, item, "unknown", str(exc))
        raise AssertionError("unreachable: every attempt returns or raises")

    def target(self, store: Store) -> Target:
        incident = store.incident(self.incident_id)
        refs = {i.action: i.ref for i in store.outbox(self.incident_id) if i.status == "done"}
        return Target(incident.id, incident.channel, incident.ticket, refs)

    def _done(self, store: Store, item: OutboxItem, ref: dict[str, Any]) -> str:
        fields = {"notify.create_channel": {"channel": ref.get("channel")},
                  "ticket.create": {"ticket": ref.get("key")}}.get(item.action, {})
        how = " (found: it had gone through before)" if ref.get("found") else ""
        store.settle(item.key, self.draft("integration.done", item, f"{describe(item)}: done{how}", {"ref": ref}),
                     status="done", ref=ref, incident=fields)
        if fields:
            self._link_channel(store)
        return "done"

    def _failed(self, store: Store, item: OutboxItem, status: str, reason: str) -> str:
        reason = redact(reason, self.connections.secrets.values())
        outcome = "outcome unknown, it will be checked before any retry" if status == "unknown" else "not done"
        store.settle(item.key, self.draft("integration.failed", item,
                                           f"{item.integration} {item.action} failed: {reason} ({outcome})",
                                           {"error": reason, "outcome": status}), status=status, error=reason)
        if item.integration not in self._down:
            self._down.add(item.integration)
            self.say(f"{item.integration} is not working ({reason}); its actions stay queued: "
                     f"`ir flush {self.incident_id}` sends them")
        return status

    def _link_channel(self, store: Store) -> None:
        """Once the incident has both a Slack channel and a Jira ticket, the ticket links to the channel."""
        target = self.target(store)
        channel = target.refs.get("notify.create_channel", {})
        if not (target.ticket and channel.get("url")):
            return
        item = OutboxItem(f"{self.incident_id}/_links/ticket.remote_link", self.incident_id, "jira",
                          "ticket.remote_link", {"url": channel["url"], "title": f"Slack #{channel.get('name')}",
                                                 "incident": {"id": self.incident_id}})
        item = store.enqueue(item, self.draft("integration.requested", item, "jira ticket.remote_link requested"))
        if item.status == "pending":
            self.submit(item)

    def draft(self, kind: str, item: OutboxItem, message: str, extra: dict[str, Any] | None = None) -> Draft:
        step = item.key.split("/", 1)[1].split("/#")[0].rsplit("/", 1)[0]  # incident/STEP/action[/#channel]
        data = {"key": item.key, "integration": item.integration, "action": item.action,
                **({"summary": item.payload["summary"]} if "summary" in item.payload else {}),  # a ticket's
                **(extra or {})}
        return Draft(kind, self.actor, message, None, item.payload.get("phase"), step, data)


class Outbox:
    """What the engine talks to: prepare a step's actions, show them, request them."""

    def __init__(self, store: Store, courier: Courier, settings: Settings, *, exercise: bool = False):
        self.store, self.courier, self.settings, self.exercise = store, courier, settings, exercise

    def prepare(self, place: Place, step: NotifyStep | TicketStep, context: dict[str, Any]) -> list[OutboxItem]:
        """The actions a step asks for (a post fans out to the configured extra channels), or what the store
        already holds under their keys."""
        base = f"{self.courier.incident_id}/{place.path}/{step.action}"
        rendered = payload(step, context, self.settings, place.phase)
        if self.exercise:  # an exercise posts only to its own channel, and invites nobody to it
            rendered.pop("channel", None)
            rendered.pop("invite", None)
        items = [(base, rendered)]
        if isinstance(step, NotifyStep) and step.action == "post" and not step.thread:
            also = getattr(self.settings.of(step.via), "channels", [])
            items += [(f"{base}/#{name}", {**rendered, "channel": name}) for name in also
                      if name != rendered.get("channel")]
        return [self.store.outbox_item(key) or OutboxItem(key, self.courier.incident_id, step.via,
                                                          f"{step.kind}.{step.action}", data)
                for key, data in items]

    @staticmethod
    def preview(items: list[OutboxItem]) -> str:
        return "; ".join(describe(i) for i in items)

    def request(self, items: list[OutboxItem]) -> None:
        self.courier.check()
        for item in items:
            if not item.created_at:
                item = self.store.enqueue(item, self.courier.draft(
                    "integration.requested", item, f"{item.integration} {item.action} requested"))
            self._send(item)

    def _send(self, item: OutboxItem) -> None:
        if item.status not in UNDELIVERED:
            return
        if self.courier.live and self.courier.connections.get(item.integration):
            self.courier.submit(item)  # the courier's queue for the integration keeps the order
        else:  # rendered right here, so "would ..." shows under its step
            self.courier.deliver(self.store, item)

    def retry(self) -> int:
        """Deliver what an earlier run left undelivered (resume does this first); how many."""
        left = [i for i in self.store.outbox(self.courier.incident_id) if i.status in UNDELIVERED]
        for item in left:
            self._send(item)
        return len(left)

    def finish(self, timeout: float) -> None:
        self.courier.finish(timeout)

    def check(self) -> None:
        self.courier.check()


def open_outbox(store: Store, bundle: Bundle, incident: Incident, actor: str, *,
                say: Callable[[str], None]) -> Outbox:
    """The outbox of an incident: the settings in force for its playbook, and the live connections (an exercise
    sends only where `[exercise]` routes it)."""
    settings = config.load(bundle.playbook.integrations)
    only = None
    if incident.exercise:
        settings, only = settings.for_exercise(), settings.routed()
    connections = Connections(settings, config.Secrets.from_env(), say, only=only)
    courier = Courier(store.reopen, incident.id, actor, live=incident.mode == "live", connections=connections,
                      say=say)
    return Outbox(store, courier, settings, exercise=incident.exercise)
