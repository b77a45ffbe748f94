"""`ir export`: the post-incident report and the timeline in other tools' formats; ir.cli.app registers it."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from ir.cli.common import IncidentArg, open_store, parse_zone
from ir.errors import UsageError

FORMAT_NAMES = "markdown, html, json, csv, timesketch-jsonl, timesketch-csv, aar"


def export(incident: IncidentArg,
           format_: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT",
                                                help=f"One of: {FORMAT_NAMES}.")] = "markdown",
           output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")] = None,
           tz: Annotated[str, typer.Option("--tz", metavar="ZONE",
                                           help="Show times in this zone (reports, Timesketch); JSON and CSV "
                                                "keep the recorded values.")] = "UTC",
           raw: Annotated[bool, typer.Option("--raw", help="CSV: keep cells that start like a spreadsheet formula "
                                                            "(=, +, -, @) as they are; by default they get a "
                                                            "leading '.")] = False) -> None:
    """Export an incident: the post-incident report (markdown, html), its timeline (json, csv, timesketch), or
    an exercise's after-action report (aar)."""
    from ir.export.formats import FORMATS, export_file
    from ir.export.formats import export as write

    if format_ not in FORMATS:
        raise UsageError(f"--format: unknown format {format_!r}; use one of: {FORMAT_NAMES}")
    where = parse_zone(tz)
    store = open_store()
    if output is None:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            write(store, incident, format_, out, where, raw=raw)
        finally:
            out.flush()
            out.detach()
        return
    found = export_file(store, incident, format_, output, where, raw=raw)
    print(f"{incident}: {format_} export of {found.event_count} events written to {output}")
