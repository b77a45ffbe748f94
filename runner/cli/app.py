"""The `ir` command line: parse options, call one library function, print, pick the exit code.

Keep this module's imports light: `ir --help` and `ir list` must not pay for pydantic, slack_sdk, jira or a
database driver. Everything heavier is imported inside the command that needs it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from ir import __version__
from ir.cli import amend as cli_amend
from ir.cli import export as cli_export
from ir.cli import incident as cli_incident
from ir.cli import integrations as cli_integrations
from ir.cli import store as cli_store
from ir.cli import tabletop as cli_tabletop
from ir.cli.common import catalog as find_playbooks
from ir.cli.common import close_stores
from ir.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_USAGE, InvalidPlaybook, IrError
from ir.sinks import terminal


class _HelpDefaultsToFalse:
    """Typer 0.29 coerces a parameter's value through a pydantic TypeAdapter unless it is a bool flag's bool. Its
    own --help option has no default, so its None (no --help given) goes that way and imports pydantic (~70 ms)
    on every command. A False default takes the bool fast path: `ir list` stays free of pydantic."""
    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.default = False
        return option


class _Group(_HelpDefaultsToFalse, TyperGroup):
    pass


class _Command(_HelpDefaultsToFalse, TyperCommand):
    pass


app = typer.Typer(
    cls=_Group,
    name="ir",
    help="Incident-response playbooks: run them, exercise them, and keep a tamper-evident timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _version(value: bool) -> None:
    if value:
        print(f"ir {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Incident-response playbooks: run them, exercise them, and keep a tamper-evident timeline."""


@app.command("list", cls=_Command)
def list_(as_json: JsonFlag = False) -> None:
    """List the playbooks ir can find (bundled, ./playbooks, IR_PLAYBOOK_PATH) and where each comes from."""
    catalog = find_playbooks()
    bundled = dict(catalog.dirs)["bundled"]
    entries = catalog.entries().values()
    if as_json:
        _print_json([{"id": e.id, "title": e.title, "version": e.version, "tags": list(e.tags),
                      "origin": e.origin, "path": str(e.path), "error": e.error,
                      "overrides": str(e.overrides) if e.overrides else None} for e in entries])
        return
    rows = [("ID", "VERSION", "TITLE", "SOURCE")]
    for e in entries:
        source = e.origin if e.origin == "bundled" else f"{e.origin}: {e.path}"
        if e.overrides:
            source += " (overrides bundled)" if e.overrides.parent == bundled else f" (overrides {e.overrides})"
        title = e.title if not e.error else f"(unreadable: run `ir validate {e.path}`)"
        rows.append((terminal(e.id), terminal(e.version), terminal(title), terminal(source)))  # a title is untrusted
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    print()
    cli_tabletop.list_scenarios()  # run one with `ir tabletop PLAYBOOK --scenario ID`


@app.command()
def show(playbook: Annotated[str, typer.Argument(help="A playbook id or a path to a YAML file.")],
         as_json: JsonFlag = False) -> None:
    """Show a playbook: inputs, roles and steps by phase (--json: the parsed model, defaults included)."""
    loaded = find_playbooks().load(playbook)
    if as_json:
        _print_json(loaded.playbook.model_dump(mode="json"))
        return
    from ir.cli.views import show_playbook

    show_playbook(loaded.playbook)


@app.command()
def validate(refs: Annotated[list[str] | None, typer.Argument(
                 metavar="[PATH|ID]...", help="Playbook or scenario files, or playbook ids; default: every playbook "
                                              "and tabletop scenario ir can find.")] = None,
             as_json: JsonFlag = False) -> None:
    """Check playbooks: YAML, the schema, references, the step graph and templates; and tabletop scenarios against
    their playbooks. Exit 0 valid, 1 invalid."""
    from ir.format.catalog import is_scenario

    catalog = find_playbooks()
    if refs:
        targets = refs
    else:
        from ir.tabletop.scenario import scenario_files  # the scenario models: only when scenarios are checked

        targets = [str(e.path) for e in catalog.entries().values()] + [str(p) for p in scenario_files()]
    results: list[dict[str, Any]] = []
    for ref in targets:
        path = catalog.path_of(ref)
        try:
            if is_scenario(path):
                from ir.tabletop.scenario import validate_file

                validate_file(path, catalog)
            else:
                catalog.load(str(path))
            results.append({"file": str(path), "valid": True, "problems": []})
        except InvalidPlaybook as exc:
            results.append({"file": str(path), "valid": False, "problems": [p.as_dict() for p in exc.problems]})
            if not as_json:
                print(terminal(exc, one_line=False), file=sys.stderr)
    if as_json:
        _print_json(results)
    else:
        for r in results:
            if r["valid"]:
                print(terminal(f"{r['file']}: ok"))
        bad = sum(not r["valid"] for r in results)
        if bad:
            problems = sum(len(r["problems"]) for r in results)
            print(f"{bad} of {len(results)} file(s) invalid, {problems} problem(s)", file=sys.stderr)
    if any(not r["valid"] for r in results):
        raise typer.Exit(EXIT_INVALID)


@app.command()
def schema(output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")] = None,
           scenario: Annotated[bool, typer.Option(
               "--scenario", help="The tabletop scenario format's schema instead.")] = False) -> None:
    """Print the JSON Schema of the playbook format, or of the scenario format (for editors, through
    yaml-language-server)."""
    if scenario:
        from ir.tabletop.scenario import scenario_schema

        found = scenario_schema()
    else:
        from ir.format.schema import playbook_schema
        from ir.integrations.registry import capabilities

        found = playbook_schema({name: c.settings for name, c in capabilities().items()})
    text = json.dumps(found, indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


@app.command()
def graph(playbook: Annotated[str, typer.Argument(help="A playbook id or a path to a YAML file.")]) -> None:
    """Print a Mermaid flowchart of a playbook's steps and branches."""
    from ir.format.graph import mermaid

    sys.stdout.write(mermaid(find_playbooks().load(playbook).playbook))


for _command in (cli_incident.run, cli_incident.resume, cli_incident.incidents, cli_incident.status,
                 cli_incident.note, cli_incident.step, cli_incident.evidence, cli_incident.timeline,
                 cli_incident.verify, cli_incident.close, cli_incident.discard):
    app.command()(_command)
app.command()(cli_amend.correct)
app.command()(cli_amend.milestone)
app.command()(cli_amend.severity)
app.command()(cli_export.export)
app.command()(cli_tabletop.tabletop)
app.command()(cli_integrations.flush)
app.add_typer(cli_integrations.outbox_app, name="outbox")
app.add_typer(cli_integrations.integrations_app, name="integrations")
app.add_typer(cli_store.store_app, name="store")


def main() -> None:
    """The console script: runs the app and turns errors into one message and a documented exit code."""
    try:
        try:
            code = app(prog_name="ir", standalone_mode=False)  # the console script, however it was started
        finally:
            close_stores()
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # typer's usage errors: unknown option or command, missing argument
        exc.show()  # type: ignore[attr-defined]  # every one raised is a (vendored) click ClickException
        code = EXIT_USAGE
    except IrError as exc:
        if isinstance(exc, InvalidPlaybook):
            print(terminal(exc, one_line=False), file=sys.stderr)
        else:
            print(terminal(_redacted(f"error: {exc}"), one_line=False), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was lost (resume with `ir resume`)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that reports bugs, without locals
        code = _report_bug(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _redacted(text: str) -> str:
    """An error's text without the integrations' secrets (a library's error may quote a request)."""
    from ir.redact import redact

    try:
        from ir.config import Secrets

        secrets = Secrets.from_env().values()
    except IrError:  # a broken plugin: the forms that need no value are still redacted
        secrets = []
    return redact(text, secrets)


def _report_bug(exc: Exception) -> int:
    import traceback

    from ir.paths import log_dir

    log = log_dir() / "ir-error.log"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW  # a planted symlink is not followed
    with open(os.open(log, flags, 0o600), "a") as fh:  # tracebacks stay private
        fh.write(_redacted("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
    print(f"internal error: {type(exc).__name__}: {terminal(_redacted(str(exc)))}\n"
          f"  this is a bug in ir; the traceback is in {log}", file=sys.stderr)
    return EXIT_INTERNAL

