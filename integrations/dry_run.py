"""The dry-run console: how an integration action reads when it is shown instead of sent."""

from __future__ import annotations

from ir.store.records import OutboxItem


def describe(item: OutboxItem) -> str:
    p = item.payload
    channel = p.get("channel") or "the incident channel"
    return {
        "notify.create_channel": f"create the incident channel in {item.integration}"
                                 + (f" and invite {', '.join(p['invite'])}" if p.get("invite") else ""),
        "notify.post": f"post to {channel}: {p.get('message', '')}",
        "notify.upload": f"upload {p.get('filename', 'the report')} to the incident channel",
        "notify.status": "update the pinned status message in the incident channel"
                         + (f": {p['message']}" if p.get("message") else ""),
        "ticket.create": f"open the incident ticket in {item.integration}: {p.get('summary', '')}"
                         + (f" (due {p['due']})" if p.get("due") else ""),
        "ticket.task": f"open a follow-up task in {item.integration}: {p.get('summary', '')}",
        "ticket.comment": f"comment on the incident ticket: {p.get('comment', '')}",
        "ticket.transition": f"move the incident ticket to {p.get('transition', '')}",
        "ticket.link": f"link the incident ticket to {p.get('link', '')} ({p.get('link_type', 'Relates')})",
        "ticket.remote_link": f"link the incident ticket to {p.get('title', 'the Slack channel')}",
    }.get(item.action, f"{item.integration} {item.action}")
