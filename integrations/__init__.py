"""Integrations: Slack, Jira and the dry-run console, behind one Protocol and registry."""
