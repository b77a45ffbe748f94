"""Opening an incident: its id, who is acting, and the first event with the playbook snapshot it runs on.

Ids read `IR-20261122-K7Q3XD`: the UTC date and six random Crockford base-32 characters (30 bits), so
incidents opened on different machines stay distinct when their stores are merged later.
"""

from __future__ import annotations

import getpass
import os
import platform
import secrets
from collections.abc import Iterable
from datetime import datetime

from ir.errors import UsageError
from ir.store.records import Draft, Incident, Store
from ir.store.timeline import format_recorded, utc_now

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: datetime | None = None) -> str:
    suffix = "".join(secrets.choice(_CROCKFORD) for _ in range(6))
    return f"IR-{(now or utc_now()):%Y%m%d}-{suffix}"


def actor_name(explicit: str | None = None) -> str:
    """`--as NAME`, else IR_ACTOR, else the operating-system user."""
    name = explicit or os.environ.get("IR_ACTOR")
    if name:
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): say so rather than guess
        return "unknown"


def open_incident(store: Store, playbook_id: str, version: str, title: str, severity: str,
                  bundle: dict[str, bytes], first_step: str, *, actor: str, live: bool,
                  exercise: bool = False) -> Incident:
    """A new incident on the stored form of a bundle (`Bundle.stored()`), with its opening event."""
    incident, opened = new_incident(playbook_id, version, title, severity, bundle, first_step, actor=actor,
                                    live=live, exercise=exercise)
    store.create(incident, bundle, opened)
    return incident


def new_incident(playbook_id: str, version: str, title: str, severity: str, bundle: dict[str, bytes],
                 first_step: str, *, actor: str, live: bool, exercise: bool = False) -> tuple[Incident, Draft]:
    """A new incident and its opening event, not stored yet."""
    from ir.format.bundle import bundle_hash  # with the playbook models: `ir note` and imports need only actor_name

    now = utc_now()
    incident = Incident(
        id=new_id(now), playbook_id=playbook_id, playbook_version=version, playbook_hash=bundle_hash(bundle),
        title=title, severity=severity, mode="live" if live else "dry-run", exercise=exercise,
        opened_at=format_recorded(now), opened_by=actor, cursor=first_step)
    kind = "exercise" if exercise else "incident"
    return incident, Draft(
        "incident.opened", actor, f"{kind} opened with playbook {playbook_id} {version}" +
        ("" if live else " (dry run: nothing is sent)"),
        data={"playbook": playbook_id, "version": version, "hash": incident.playbook_hash, "mode": incident.mode,
              "exercise": exercise, "host": platform.node(), "severity": severity, "title": title})


STATUSES = ("open", "closed", "discarded")
MODES = ("live", "dry-run", "exercise")  # an exercise is its own mode here, whether or not it sends anything


def mode_of(incident: Incident) -> str:
    return "exercise" if incident.exercise else incident.mode


def select(found: Iterable[Incident], *, status: str | None = None, playbook: str | None = None,
           mode: str | None = None, search: str | None = None) -> list[Incident]:
    """The incidents that pass every filter given: a status (none: every one but the discarded), a playbook id, a
    mode, and text found (any case) in the id, title, playbook, opener, channel or ticket."""
    for name, value, allowed in (("--status", status, STATUSES), ("--mode", mode, MODES)):
        if value is not None and value not in allowed:
            raise UsageError(f"{name} {value!r} is not one of {', '.join(allowed)}",
                             hint=f"write e.g. {name} {allowed[0]}")
    needle = (search or "").casefold()
    return [i for i in found if (i.status != "discarded" if status is None else i.status == status)
            and (playbook is None or i.playbook_id == playbook) and (mode is None or mode_of(i) == mode)
            and needle in " ".join(filter(None, (i.id, i.title, i.playbook_id, i.opened_by, i.channel,
                                                 i.ticket))).casefold()]
