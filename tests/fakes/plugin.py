"""Pytest fixtures: a fresh fake Slack and Jira on 127.0.0.1 for each test, stopped after it. A fake that crashed
while serving (a bug in the fake, answered with a 500 that ir would take for an outage) fails the test at teardown,
with the fake's traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from .httpbase import FakeServer, FakeServerCrashed
from .jira_server import JiraServer
from .slack_server import SlackServer

Server = TypeVar("Server", bound=FakeServer)


def _serve(server: Server) -> Iterator[Server]:
    try:
        with server:
            yield server
    except FakeServerCrashed as crashed:
        pytest.fail(str(crashed), pytrace=False)


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    yield from _serve(SlackServer())


@pytest.fixture
def jira_server() -> Iterator[JiraServer]:
    """Jira Cloud: basic auth with `server.user` and the API token `server.token`."""
    yield from _serve(JiraServer("Cloud"))


@pytest.fixture
def jira_server_dc() -> Iterator[JiraServer]:
    """Jira Server / Data Center: the personal access token `server.token` as a Bearer token."""
    yield from _serve(JiraServer("Server", user="ir-bot"))
