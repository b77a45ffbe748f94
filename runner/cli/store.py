"""`ir store`: the store itself. `ir store copy` moves an incident between a laptop's embedded file and a team's
PostgreSQL (ir.store.copy)."""

from __future__ import annotations

from typing import Annotated

import typer

from ir.cli.common import IncidentArg, open_store
from ir.errors import UsageError
from ir.sinks import terminal

store_app = typer.Typer(help="The store: copy an incident to another one.", no_args_is_help=True)
Url = Annotated[str | None, typer.Option(metavar="URL", help="postgresql://USER@HOST/DATABASE (a password from "
                                                             "PGPASSWORD or ~/.pgpass), or sqlite:PATH.")]


@store_app.command("copy")
def copy(incident: IncidentArg, to: Url = None, from_: Annotated[str | None, typer.Option(
        "--from", metavar="URL", help="Copy from this store instead of the one in use (IR_STORE); then --to defaults "
                                      "to the embedded file in IR_HOME.")] = None) -> None:
    """Copy an incident (playbooks, timeline, state, outbox) to another store, as it is: `ir verify` gives the same
    head on both. Share an incident opened offline: `ir store copy ID --to postgresql://ir@db/ir`."""
    from ir.store.copy import copy_incident

    if to is None and from_ is None:
        raise UsageError("say where to: --to URL (or --from URL to copy into the embedded store)")
    source = open_store(from_)
    target = open_store(to or "sqlite:")  # "sqlite:" with no path: the embedded file
    if source.where == target.where:
        raise UsageError(f"--to names the store it copies from ({source.where})")
    copied = copy_incident(source, incident, target)
    print(terminal(f"{incident}: copied to {target.where} ({copied.event_count} events, head {copied.head_hash})"))
