"""Stateful fake Slack and Jira HTTP servers on 127.0.0.1 for the test suite."""
