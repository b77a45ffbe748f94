"""Jira, through the `jira` client library (imported only when a ticket action is actually performed)."""

from __future__ import annotations


class Jira:
    name = "jira"
    handles = frozenset({"ticket"})


integration = Jira()
