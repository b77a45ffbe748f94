"""Pytest fixtures: a fresh fake Slack and Jira on 127.0.0.1 for each test, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .jira_server import JiraServer
from .slack_server import SlackServer


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


@pytest.fixture
def jira_server() -> Iterator[JiraServer]:
    """Jira Cloud: basic auth with `server.user` and the API token `server.token`."""
    with JiraServer("Cloud") as server:
        yield server


@pytest.fixture
def jira_server_dc() -> Iterator[JiraServer]:
    """Jira Server / Data Center: the personal access token `server.token` as a Bearer token."""
    with JiraServer("Server", user="ir-bot") as server:
        yield server
