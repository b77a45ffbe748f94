"""Slack, through the official slack_sdk `WebClient` (imported only when a message is actually sent)."""

from __future__ import annotations


class Slack:
    name = "slack"
    handles = frozenset({"notify"})


integration = Slack()
