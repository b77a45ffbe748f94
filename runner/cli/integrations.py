"""The outbox and integration commands of the `ir` CLI: `ir flush`, `ir outbox` (list, retry, skip),
`ir integrations check`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ir.cli.common import open_store, say
from ir.errors import EXIT_INVALID, IncidentBusy
from ir.sinks import terminal

integrations_app = typer.Typer(help="Slack, Jira and other integrations.", no_args_is_help=True)


class _OutboxGroup(TyperGroup):
    """`ir outbox [INCIDENT]` is `ir outbox list [INCIDENT]`, as it was before `retry` and `skip`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: the Click context Typer bundles
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


outbox_app = typer.Typer(cls=_OutboxGroup, help="The integration actions: list them, retry or skip one.")
MaybeIncident = Annotated[str | None, typer.Argument(help="An incident id; default: every incident.")]


def _incidents(incident: str | None) -> list[str]:
    store = open_store()
    return [incident] if incident else [i.id for i in store.incidents() if i.status == "open" or
                                        any(o.status != "done" for o in store.outbox(i.id))]


def flush(incident: MaybeIncident = None,
          as_: Annotated[str | None, typer.Option("--as", help="Who is acting.")] = None) -> None:
    """Deliver the integration actions still queued (after an outage, a crash or a pause), each exactly once."""
    from ir.run import drive
    from ir.run.incidents import actor_name

    store, actor, failed = open_store(), actor_name(as_), 0
    for incident_id in _incidents(incident):
        try:
            failed += drive.flush(store, incident_id, actor, say=say)
        except IncidentBusy as exc:
            print(terminal(f"{incident_id}: {exc.message}: that run was asked to retry its undelivered actions now"))
    if failed:
        raise typer.Exit(EXIT_INVALID)


@outbox_app.command("list")
def outbox(incident: MaybeIncident = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False) -> None:
    """List integration actions: pending, sending, done (with their reference), failed, unknown, dry-run."""
    store = open_store()
    items = [i for incident_id in ([incident] if incident else [None]) for i in store.outbox(incident_id)]
    if incident:
        store.incident(incident)
    if as_json:
        sys.stdout.write(json.dumps([asdict(i) for i in items], indent=2) + "\n")
        return
    if not items:
        print("The outbox is empty.")
    for i in items:
        ref = " ".join(f"{k}={v}" for k, v in i.ref.items() if k != "found")
        detail = f"  {ref}" if ref else (f"  error: {i.error}" if i.error else "")
        print(terminal(f"{i.status:8} {i.integration:6} {i.action:22} {i.key}  (attempts {i.attempts}){detail}"))


Key = Annotated[str, typer.Argument(help="The action's key, as `ir outbox` lists it.")]
As = Annotated[str | None, typer.Option("--as", help="Who is acting.")]


@outbox_app.command("retry")
def retry(key: Key, as_: As = None) -> None:
    """Deliver one undelivered action now (an unknown one is looked up first), whatever waits before it."""
    from ir.run import drive
    from ir.run.incidents import actor_name

    status = drive.retry_action(open_store(), key, actor_name(as_), say=say)
    print(terminal(f"{key}: {status}"))
    if status in ("failed", "unknown"):
        raise typer.Exit(EXIT_INVALID)


@outbox_app.command("skip")
def skip(key: Key, reason: Annotated[str, typer.Option("--reason", help="Why it is not sent (recorded).")],
         as_: As = None) -> None:
    """Never send an undelivered action (done by hand, or not wanted); recorded on the timeline with the reason."""
    from ir.run import drive
    from ir.run.incidents import actor_name

    drive.skip_action(open_store(), key, actor_name(as_), reason)
    print(terminal(f"{key}: skipped"))


@outbox_app.command("edit")
def edit(key: Key,
         channel: Annotated[str | None, typer.Option("--channel", help="Post to this channel instead.")] = None,
         invite: Annotated[list[str] | None, typer.Option(
             "--invite", help="Invite these instead (a user group's @handle, an e-mail address, a user id); "
                              "give it once per entry.")] = None,
         as_: As = None) -> None:
    """Change a queued action before it is sent: a post's channel, a new channel's invitees (recorded)."""
    from ir.run import drive
    from ir.run.incidents import actor_name

    item = drive.amend_action(open_store(), key, actor_name(as_), channel=channel, invite=invite)
    print(terminal(f"{key}: {item.status}, now " + "; ".join(
        f"{name} {item.payload[name]}" for name in ("channel", "invite") if name in item.payload)))


@integrations_app.command("check")
def check(playbook: Annotated[str | None, typer.Option(
              "--playbook", help="Check the invitees and channels of this playbook (and what it includes) only; "
                                 "default: of every playbook ir finds.")] = None) -> None:
    """Check the configured integrations: credentials, scopes, channels, invitees (of ir.toml and of the
    playbooks), project, issue types, create screens, priorities, link types."""
    from ir import config
    from ir.integrations.registry import NotConfigured, available
    from ir.redact import redact

    settings, secrets = config.load(), config.Secrets.from_env()
    hidden = secrets.values()
    invites, channels = _named_in_playbooks(playbook)

    bad = 0
    for name, integration in available().items():
        ours = settings.of(name)
        current = ours.model_dump()
        if {"invite", "channels"} <= current.keys():  # a notify integration: what the playbooks name too
            ours = ours.model_copy(update={"invite": list(dict.fromkeys([*current["invite"], *invites])),
                                           "channels": {**{c: c for c in channels}, **current["channels"]}})
        try:
            findings = integration.connect(ours, secrets.of(name)).check()
        except NotConfigured as exc:
            print(f"✗ {name}: not configured: actions are shown and recorded, not sent\n"
                  f"  fix: {terminal(redact(str(exc), hidden))}")
            bad += 1
            continue
        for finding in findings:
            what, fix = redact(finding.what, hidden), redact(finding.fix, hidden) if finding.fix else None
            print(f"{'✓' if finding.ok else '✗'} {terminal(what)}" + (f"\n  fix: {terminal(fix)}" if fix else ""))
            bad += not finding.ok
    if bad:
        raise typer.Exit(EXIT_INVALID)


def _named_in_playbooks(ref: str | None) -> tuple[list[str], list[str]]:
    """The invitees and channels playbooks name as they are: invite entries and channels without a template, the
    fallbacks of templated invitees (`{{ roles.x | default('@soc') }}`), and the channels inputs default to."""
    import re

    from ir.cli.common import catalog
    from ir.format.model import NotifyStep

    found = catalog()
    playbooks = found.bundle(ref).playbooks.values() if ref else [
        found.load(pid).playbook for pid, entry in found.entries().items() if entry.error is None]
    invites: list[str] = []
    channels: list[str] = []
    for book in playbooks:
        channels += [str(v.default) for v in book.inputs if isinstance(v.default, str) and v.default.startswith("#")]
        for step in book.steps:
            if isinstance(step, NotifyStep):
                invites += [e for entry in step.invite for e in (
                    re.findall(r"default\(['\"]([^'\"]+)['\"]\)", entry) if "{{" in entry else [entry])]
                channels += [step.channel] if step.channel and "{{" not in step.channel else []
    return list(dict.fromkeys(invites)), list(dict.fromkeys(c.lstrip("#") for c in channels))


@integrations_app.command("list")
def list_() -> None:
    """The integrations installed (entry-point group ir.integrations): the step kinds each handles, where it comes
    from, its ir.toml settings and the environment variables it reads."""
    from ir.integrations.registry import installed

    for name, found in sorted(installed().items()):
        integration = found.integration
        print(f"{name}: {', '.join(sorted(integration.handles))} ({found.origin})")
        print(f"  [{name}] in ir.toml: {', '.join(integration.settings_model.model_fields) or 'none'}")
        for var, what in integration.environment.items():
            print(f"  {var}: {what.purpose}" + (" (secret)" if what.secret else ""))
