"""An incident that is stored with its first answer: `ir run` and `ir tabletop` name the incident at once, but write
nothing until the run records something (in every bundled playbook: the first input answered). So a Ctrl-C or
the end of input before that leaves nothing in the store, not an "open" incident nobody can resume or remove.

`Opening` is the store as the run sees it: the incident it opens reads as there (no events yet) until the first
write creates it, with its opening event, and then takes the hold a run keeps on its incident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

from ir.errors import EXIT_INTERRUPTED, IrError
from ir.store.records import Change, Draft, Incident, OutboxItem, Store
from ir.store.timeline import Event

PAUSED = "incident.paused"


class NotOpened(IrError):
    """The run stopped before its first answer: nothing was recorded."""

    exit_code = EXIT_INTERRUPTED


class Opening:
    """`store`, in which `incident` is created with the first event recorded for it (the other incidents, and
    everything once it is created, go straight to `store`)."""

    def __init__(self, store: Store, incident: Incident, bundle: dict[str, bytes], opened: Draft):
        self.store, self.pending, self._bundle, self._opened = store, incident, bundle, opened
        self.created = False
        self._hold: Callable[[], None] | None = None  # takes the run's hold, once there is an incident to hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _mine(self, incident_id: str) -> bool:
        return not self.created and incident_id == self.pending.id

    def _create(self) -> None:
        self.store.create(self.pending, self._bundle, self._opened)
        self.created = True
        if self._hold:
            self._hold()

    def incident(self, incident_id: str) -> Incident:
        return self.pending if self._mine(incident_id) else self.store.incident(incident_id)

    def bundle(self, incident_id: str) -> dict[str, bytes]:
        return dict(self._bundle) if self._mine(incident_id) else self.store.bundle(incident_id)

    def record(self, incident_id: str, drafts: Draft | Iterable[Draft], change: Change | None = None) -> Event:
        if self._mine(incident_id):
            drafts = [drafts] if isinstance(drafts, Draft) else list(drafts)
            if all(d.kind == PAUSED for d in drafts):  # stopped before anything was answered
                raise NotOpened(f"stopped before the first answer: nothing was recorded, and {self.pending.id} was "
                                "not opened", hint="`ir run` again opens a new incident")
            self._create()
        return self.store.record(incident_id, drafts, change)

    def enqueue(self, item: OutboxItem, requested: Draft) -> OutboxItem:
        if self._mine(item.incident):
            self._create()
        return self.store.enqueue(item, requested)

    @contextmanager
    def running(self, incident_id: str, *, take_over: bool = False) -> Iterator[None]:
        """The store's hold on the incident: at once for one that exists, else from its creation on."""
        if not self._mine(incident_id):
            with self.store.running(incident_id, take_over=take_over):
                yield
            return
        with ExitStack() as held:
            self._hold = lambda: held.enter_context(self.store.running(incident_id))
            try:
                yield
            finally:
                self._hold = None

    def as_store(self) -> Store:
        return cast("Store", self)
