"""The outbox: nothing lost, nothing twice.

Every external action is first committed to the store as pending, under a deterministic idempotency key
(`incident/step path/action`), with its
`integration.requested` event. A courier then delivers it in the background, one queue per integration so that
an action never overtakes the one it depends on (the channel before its posts, the ticket before its comments)
and a slow Jira never holds up Slack, nor the responder:

    pending -> sending -> done (with the external reference) | failed (refused: safe to retry)
                        | unknown (no clear answer: reconciled before it is tried again)

An action left `sending` by a crash is unknown too. Unknown actions are looked up first (Jira by the idempotency
label, Slack by the message metadata in the channel history) and only repeated when a lookup that answered found
nothing; a lookup that was refused, or could not be sure yet, leaves the action unknown. When an action fails, the
responder sees one line, the timeline records it, and only the actions of its lane (`lane`: the same channel, or
the incident ticket) wait behind it; the run retries the lane with backoff while it is open, and `ir flush` asks it
to retry now (or, once the run has stopped, delivers itself). In a dry run, or for an integration that is not
configured, actions are rendered and recorded as "would ...", and nothing is sent.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ir import config, sinks
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
MAX_RETRY_AFTER = 5.0  # seconds a rate-limited action waits in its worker; a longer wait is a retry of its lane
ATTEMPTS = 3
BACKOFF = (5.0, 15.0, 60.0, 300.0)  # seconds before a run retries a failed lane: the first time, the second, ...
RETRY_KIND = "integration.retry"  # `ir flush` during a run records it; the run's courier then retries now


def lane(item: OutboxItem) -> str:
    """What an action's failure holds back: the incident ticket (its create), the channel a post goes to (the
    incident channel unless it names one; its create_channel too); any other ticket action holds only itself."""
    if item.action == "ticket.create":
        return f"{item.integration} incident ticket"
    if item.action.startswith("ticket."):
        return f"{item.integration} {item.key}"
    channel = str(item.payload.get("channel") or "").lstrip("#")
    return f"{item.integration} #{channel}" if channel else f"{item.integration} incident channel"


def needs(item: OutboxItem) -> set[str]:
    """The lanes an action waits for when they failed: its own, and the incident ticket for what acts on it."""
    ticket = item.action.startswith("ticket.") and item.action not in ("ticket.create", "ticket.task")
    return {lane(item), f"{item.integration} incident ticket"} if ticket else {lane(item)}


def payload(step: NotifyStep | TicketStep, context: dict[str, Any], settings: Settings,
            phase: str) -> dict[str, Any]:
    """The rendered action: everything an integration needs, and nothing secret."""
    fields = _NOTIFY_FIELDS if isinstance(step, NotifyStep) else _TICKET_FIELDS
    escape = FOR_INTEGRATION.get(step.via)  # values from inputs, answers and notes stay text in the sink
    out: dict[str, Any] = {name: templates.render(getattr(step, name), context,
                                                  escape if name in _FREE_TEXT else None)
                           for name in fields if getattr(step, name)}
    if isinstance(step, NotifyStep):  # a role holder found in Slack is invited as that user
        invite = [who for who in dict.fromkeys(templates.render(i, context, sinks.invitee).strip()
                                               for i in step.invite) if who]
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
    commander = incident["commander"]
    if isinstance(commander, sinks.Person) and commander.slack:  # mentioned where Slack shows the commander
        out["incident"]["commander"] = f"<@{commander.slack}>"
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
                 connections: Connections, say: Callable[[str], None], retry: bool = True):
        self.open_store, self.incident_id, self.actor, self.live = open_store, incident_id, actor, live
        self.connections, self.say, self.retry = connections, say, retry
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._futures: list[Future[str]] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._down: dict[str, float] = {}  # lane -> when (time.monotonic) the run retries it
        self._failures: dict[str, int] = {}  # lane -> failures in a row
        self._stop = threading.Event()
        self._retrier: threading.Thread | None = None
        self._crashed: list[BaseException] = []  # what the retrier raised (a bug), for `check`

    # background delivery ------------------------------------------------------------------------------
    def submit(self, item: OutboxItem) -> None:
        self._queue(item.integration, self._work, item.key)

    def _queue(self, integration: str, work: Callable[[str], str], arg: str) -> None:
        with self._lock:
            worker = self._workers.get(integration)
            if worker is None:
                worker = self._workers[integration] = ThreadPoolExecutor(1, thread_name_prefix=f"ir-{integration}")
            self._futures.append(worker.submit(work, arg))

    def _store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open_store()
        return store

    def _work(self, key: str) -> str:
        store = self._store()
        item = store.outbox_item(key)
        if item is None or item.status not in UNDELIVERED or needs(item) & self._down.keys():
            return item.status if item else "missing"
        return self.deliver(store, item)

    def _work_lane(self, name: str) -> str:
        """Retry a lane: its undelivered actions in order, until one fails again."""
        store = self._store()
        with self._lock:
            self._down.pop(name, None)
        status = "done"
        for item in store.outbox(self.incident_id):
            if item.status in UNDELIVERED and name in needs(item) and not needs(item) & self._down.keys():
                status = self.deliver(store, item)
                if status in ("failed", "unknown") and lane(item) == name:
                    break
        return status

    def _retry_lanes(self) -> None:
        """The run's retrier: each failed lane when its backoff is over, or at once when `ir flush` asks."""
        try:
            self._retry_lanes_until_stopped()
        except Exception as exc:  # a bug: raised again by `check`, in the caller, never printed by the thread
            self._crashed.append(exc)

    def _retry_lanes_until_stopped(self) -> None:
        store = self.open_store()
        try:
            asked = store.count_events(self.incident_id, kinds=(RETRY_KIND,))
            while not self._stop.wait(1.0):
                now_asked = store.count_events(self.incident_id, kinds=(RETRY_KIND,))
                with self._lock:
                    due = [(name, name.split(" ", 1)[0]) for name, when in self._down.items()
                           if now_asked > asked or when <= time.monotonic()]
                    for name, _ in due:
                        self._down[name] = float("inf")  # queued: not queued again while it waits its turn
                asked = now_asked
                for name, integration in due:
                    self._queue(integration, self._work_lane, name)
        finally:
            store.close()

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
        if self._crashed:
            raise self._crashed[0]
        for future in done:
            if not future.cancelled():
                future.result()

    def finish(self, timeout: float) -> None:
        """Let the workers empty their queues (up to `timeout` seconds; a delivery may queue another, such as the
        ticket's link to the channel); what is left stays in the store for `ir flush`. `check` then raises what a
        worker raised."""
        deadline = time.monotonic() + timeout
        self._stop.set()  # no more retries: what failed stays queued for `ir flush`
        retrier = self._retrier  # made by a worker: it may not have started yet (then it sees the stop at once)
        if retrier is not None and retrier.ident is not None:  # it sees the stop within a second; closes its store
            retrier.join(timeout=max(0.0, deadline - time.monotonic()))
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
                try:
                    ref = connection.reconcile(item, target)
                except (Refused, Unknown) as exc:  # no answer to "did it happen?": it stays unknown
                    return self._failed(store, item, "unknown", f"could not check whether it went through: {exc}",
                                        getattr(exc, "retry_after", None))
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
            return self._failed(store, item, "failed", str(exc), exc.retry_after)
        except Unknown as exc:
            return self._failed(store, item, "unknown", str(exc))
        raise AssertionError("unreachable: every attempt returns or raises")

    def target(self, store: Store) -> Target:
        incident = store.incident(self.incident_id)
        done = [i for i in store.outbox(self.incident_id) if i.status == "done"]
        channels = {i.ref["name"]: i.ref["channel"] for i in done if "name" in i.ref and "channel" in i.ref}
        return Target(incident.id, incident.channel, incident.ticket, {i.action: i.ref for i in done},
                      (incident.event_count, incident.head_hash), channels)

    def _done(self, store: Store, item: OutboxItem, ref: dict[str, Any]) -> str:
        fields = {"notify.create_channel": {"channel": ref.get("channel")},
                  "ticket.create": {"ticket": ref.get("key")}}.get(item.action, {})
        how = " (found: it had gone through before)" if ref.get("found") else ""
        warnings = [redact(str(w), self.connections.secrets.values()) for w in ref.get("warnings", [])]
        ref = {**ref, "warnings": warnings} if warnings else ref
        but = "".join(f"; but {w}" for w in warnings)  # a part that did not work: said once, never redone
        if store.settle(item.key, self.draft("integration.done", item, f"{describe(item)}: done{how}{but}",
                                             {"ref": ref}), status="done", ref=ref, incident=fields):
            for warning in warnings:
                self.say(f"{item.integration} {item.action}: done, but {warning}")
        with self._lock:
            self._failures.pop(lane(item), None)
        if fields:
            self._link_channel(store)
        if item.action == "ticket.create":
            self._refresh_status(store)
        return "done"

    def _failed(self, store: Store, item: OutboxItem, status: str, reason: str,
                retry_after: float | None = None) -> str:
        reason = redact(reason, self.connections.secrets.values())
        outcome = "outcome unknown, it will be checked before any retry" if status == "unknown" else "not done"
        store.settle(item.key, self.draft("integration.failed", item,
                                           f"{item.integration} {item.action} failed: {reason} ({outcome})",
                                           {"error": reason, "outcome": status}), status=status, error=reason)
        name = lane(item)
        with self._lock:
            failures = self._failures[name] = self._failures.get(name, 0) + 1
            delay = max(retry_after or 0.0, BACKOFF[min(failures, len(BACKOFF)) - 1])
            self._down[name] = time.monotonic() + delay
            if self.retry and self._retrier is None and not self._stop.is_set():
                self._retrier = threading.Thread(target=self._retry_lanes, name="ir-retry", daemon=True)
                self._retrier.start()
        if failures == 1:
            what = name.split(" ", 1)[1]
            waiting = "what acts on the incident ticket waits" if item.action == "ticket.create" else \
                "nothing else waits for it" if item.action.startswith("ticket.") else f"what goes to its {what} waits"
            self.say(f"{item.integration} {item.action} failed ({reason}); {waiting}"
                     + (f", retried in {delay:.0f} s while this run is open; `ir flush {self.incident_id}` retries now"
                        if self.retry else ""))
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

    def _refresh_status(self, store: Store) -> None:
        """A ticket that arrives after the pinned status was posted: the status is updated to name it."""
        statuses = [i for i in store.outbox(self.incident_id) if i.action == "notify.status"]
        if not statuses or statuses[-1].status != "done":
            return  # none yet, or the newest is still to be sent, and names the ticket when it is
        last = statuses[-1]
        item = OutboxItem(f"{self.incident_id}/_links/notify.status", self.incident_id, last.integration,
                          "notify.status", dict(last.payload))
        item = store.enqueue(item, self.draft("integration.requested", item,
                                              f"{item.integration} notify.status requested (the ticket is there)"))
        if item.status == "pending":
            self.submit(item)

    def draft(self, kind: str, item: OutboxItem, message: str, extra: dict[str, Any] | None = None) -> Draft:
        step = item.key.split("/", 1)[1].split("/#")[0].rsplit("/", 1)[0]  # incident/STEP/action[/#channel, 0.1]
        data = {"key": item.key, "integration": item.integration, "action": item.action,
                **({"summary": item.payload["summary"]} if "summary" in item.payload else {}),  # a ticket's
                **(extra or {})}
        return Draft(kind, self.actor, message, None, item.payload.get("phase"), step, data)


def _reminder_key(line: str) -> str:
    """A reminder's key part: the line without what changes while it stands (`(SLA 15m, 2m 00s over)`)."""
    return hashlib.sha256(line.partition(" (")[0].encode()).hexdigest()[:16]


class Outbox:
    """What the engine talks to: prepare a step's actions, show them, request them."""

    def __init__(self, store: Store, courier: Courier, settings: Settings, *, exercise: bool = False,
                 uses: frozenset[str] = frozenset()):
        self.store, self.courier, self.settings, self.exercise = store, courier, settings, exercise
        self.uses = uses  # the integrations the incident's playbooks use

    def person(self, entry: str) -> tuple[str, str] | None:
        """The user (id, how the service names them) a role holder's text names, from the first live integration
        of the incident's that finds people (Slack); None when none does (a dry run, an exercise, not configured,
        or the text names a group). Text that names nobody, or several people, is a ValueError saying so."""
        if not self.courier.live or self.exercise:
            return None
        for name in sorted(self.uses):
            find = getattr(self.courier.connections.get(name), "person", None)
            if find is None:
                continue
            try:
                found: tuple[str, str] | None = find(entry)
                return found
            except (Refused, Unknown) as exc:  # the service cannot say now: the holder is kept as typed
                self.courier.say(f"{name}: {entry} was not looked up ({exc}); kept as typed")
                return None
        return None

    def prepare(self, place: Place, step: NotifyStep | TicketStep, context: dict[str, Any]) -> list[OutboxItem]:
        """The action a step asks for (a post to a named channel goes to the workspace's channel `channels` maps
        it to), or what the store already holds under its key."""
        base = f"{self.courier.incident_id}/{place.path}/{step.action}"
        rendered = payload(step, context, self.settings, place.phase)
        if self.exercise:  # an exercise posts only to its own channel, and invites nobody to it
            rendered.pop("channel", None)
            rendered.pop("invite", None)
        if rendered.get("channel"):  # the playbook's name for it, mapped to the workspace's (`channels`)
            named = str(rendered["channel"]).lstrip("#")
            rendered["channel"] = "#" + getattr(self.settings.of(step.via), "channels", {}).get(named, named)
        return [self.store.outbox_item(base) or OutboxItem(base, self.courier.incident_id, step.via,
                                                           f"{step.kind}.{step.action}", rendered)]

    def remind(self, lines: list[str], incident: dict[str, Any]) -> None:
        """What the terminal announced as overdue or due, posted once each to the incident channel: in a live
        incident whose playbooks use Slack (an exercise, a dry run: only said at the terminal). The key holds the
        line's hash, so the same reminder is never posted twice, even from a resumed run."""
        if not self.courier.live or self.exercise or "slack" not in self.uses:
            return
        escape = FOR_INTEGRATION["slack"]
        items = [OutboxItem(f"{self.courier.incident_id}/_reminders/{_reminder_key(line)}/notify.post",
                            self.courier.incident_id, "slack", "notify.post",
                            {"message": f"Reminder: {escape(line)}", "incident": incident, "step_title": "Reminder",
                             "phase": None}) for line in lines]
        self.request([i for i in items if self.store.outbox_item(i.key) is None])

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
                say: Callable[[str], None], retry: bool = True) -> Outbox:
    """The outbox of an incident: the settings in force for its playbook, and the live connections (an exercise
    sends only where `[exercise]` routes it)."""
    settings = config.load(bundle.playbook.integrations)
    only = None
    if incident.exercise:
        settings, only = settings.for_exercise(), settings.routed()
    connections = Connections(settings, config.Secrets.from_env(), say, only=only)
    courier = Courier(store.reopen, incident.id, actor, live=incident.mode == "live", connections=connections,
                      say=say, retry=retry)
    uses = frozenset(step.via for playbook in bundle.playbooks.values() for step in playbook.steps
                     if isinstance(step, (NotifyStep, TicketStep)))
    return Outbox(store, courier, settings, exercise=incident.exercise, uses=uses)
