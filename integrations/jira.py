"""Jira Cloud and Server/Data Center, through the `jira` library (imported only when a connection is made).

The client's session retries every method, POST included, after 429, 503 and dropped connections: a create
whose reply was lost would make a second issue. Its retries are off (`max_retries=0`); the outbox reconciles
instead. Each ticket ir creates carries an idempotency label (`<prefix>-<hash of the action's key>`) that a JQL
search finds again; each comment ends with a marker that the issue's comments are searched for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ir import sinks
from ir.errors import IrError
from ir.format.model import Model
from ir.integrations.registry import (
    EnvVar,
    Finding,
    Integration,
    NotConfigured,
    Refused,
    Target,
    Unknown,
    Witness,
    retry_after,
    witness,
    witnesses_in,
)

if TYPE_CHECKING:
    from jira import JIRA

    from ir.store.records import OutboxItem


def marker(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class JiraSettings(Model):
    """The `[jira]` table of ir.toml; a playbook's `integrations: jira:` overrides it."""

    project: str = "IR"
    """The project key incident tickets go to."""
    issue_type: str = "Incident"
    """The issue type of the incident ticket."""
    task_type: str = "Task"
    """The issue type of follow-up tasks."""
    label_prefix: str = "ir"
    """Labels ir adds start with this; one of them is the idempotency label that finds a ticket again."""
    labels: list[str] = []
    """More labels for every ticket."""
    priorities: dict[str, str] = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
    """The priority name for each incident severity."""
    transitions: dict[str, str] = {}
    """Playbook transition names (Triage, Contain, Eradicate, Recover, Resolve) mapped to your workflow's."""
    timeout: float = 10.0
    """Seconds before a request counts as unanswered (its outcome is then checked before any retry)."""


class Jira:
    name = "jira"
    handles = frozenset({"ticket"})
    settings_model = JiraSettings
    environment = {"JIRA_URL": EnvVar("the Jira base URL", secret=False),
                   "JIRA_USER": EnvVar("Jira Cloud (basic auth): the account's e-mail address", secret=False),
                   "JIRA_API_TOKEN": EnvVar("Jira Cloud (basic auth): the account's API token"),
                   "JIRA_PAT": EnvVar("Jira Server / Data Center: a personal access token")}

    def connect(self, settings: JiraSettings, env: Mapping[str, str]) -> JiraConnection:
        if "JIRA_URL" not in env:
            raise NotConfigured("set JIRA_URL, and JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)")
        if "@" in urlsplit(env["JIRA_URL"]).netloc:  # it would end up in ticket links, reports and messages
            raise IrError("JIRA_URL holds credentials (user:password@ before the host); they are not used or shown",
                             hint="set JIRA_URL to the address alone, e.g. https://example.atlassian.net, and the "
                                  "credentials in JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)")
        if "JIRA_PAT" in env:
            auth: dict[str, Any] = {"token_auth": env["JIRA_PAT"]}
        elif "JIRA_USER" in env and "JIRA_API_TOKEN" in env:
            auth = {"basic_auth": (env["JIRA_USER"], env["JIRA_API_TOKEN"])}
        else:
            raise NotConfigured("set JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)")
        return JiraConnection(env["JIRA_URL"].rstrip("/"), auth, settings)


class JiraConnection:
    """Connects on first use: the client asks the server for its version as it is built."""

    def __init__(self, url: str, auth: dict[str, Any], settings: JiraSettings):
        self.url, self.settings = url, settings
        self._auth = auth
        self._client: JIRA | None = None

    @property
    def client(self) -> JIRA:
        if self._client is None:
            from jira import JIRA

            with _errors():
                self._client = JIRA(server=self.url, max_retries=0, timeout=self.settings.timeout, **self._auth)
        return self._client

    # the Connection protocol -------------------------------------------------------------------------
    def perform(self, item: OutboxItem, target: Target) -> dict[str, Any]:
        with _errors():
            if item.action in ("ticket.create", "ticket.task"):
                return self._create(item, target)
            if item.action == "ticket.remote_link":
                return self._remote_link(item, self._ticket(target))
            ticket = self._ticket(target)
            if item.action == "ticket.comment":
                tail = " ".join(filter(None, [f"[ir:{marker(item.key)}]", witness(target.head)]))
                comment = self.client.add_comment(ticket, f"{_exercise(item, item.payload['comment'])}\n\n{tail}")
                return {"key": ticket, "comment": comment.id}
            if item.action == "ticket.transition":
                return self._transition(ticket, item.payload["transition"])
            if item.action == "ticket.link":
                self.client.create_issue_link(item.payload.get("link_type", "Relates"), ticket, item.payload["link"])
                return {"key": ticket, "link": item.payload["link"]}
        raise Refused(f"jira cannot do {item.action}")

    def reconcile(self, item: OutboxItem, target: Target) -> dict[str, Any] | None:
        with _errors():
            if item.action in ("ticket.create", "ticket.task"):
                found = self.client.search_issues(f'labels = "{self._label(item)}"', maxResults=1)
                return {"key": found[0].key, "url": self._browse(found[0].key), "found": True} if found else None
            if item.action == "ticket.remote_link":
                return None  # looks before it writes
            ticket = self._ticket(target)
            if item.action == "ticket.comment":
                tag = f"[ir:{marker(item.key)}]"
                hit = next((c for c in self.client.comments(ticket) if tag in c.body), None)
                return {"key": ticket, "comment": hit.id, "found": True} if hit else None
            if item.action == "ticket.transition":
                name = self._transition_name(item.payload["transition"])
                available = [t["name"].lower() for t in self.client.transitions(ticket)]
                return None if name.lower() in available else {"key": ticket, "transition": name, "found": True}
            if item.action == "ticket.link":
                issue = self.client.issue(ticket, fields="issuelinks")
                linked = {getattr(link, side).key for link in issue.fields.issuelinks
                          for side in ("inwardIssue", "outwardIssue") if hasattr(link, side)}
                return {"key": ticket, "link": item.payload["link"], "found": True} if item.payload["link"] in linked \
                    else None
        return None

    def witnesses(self, target: Target) -> list[Witness]:
        """The heads in the incident ticket's comments."""
        if not target.ticket:
            return []
        with _errors():
            return [w for c in self.client.comments(target.ticket)
                    for w in witnesses_in(c.body, f"Jira {target.ticket} comment {c.id}")]

    def check(self) -> list[Finding]:
        jira = self.settings
        try:
            with _errors():
                info = self.client.server_info()
        except (Refused, Unknown) as exc:
            return [Finding(False, f"jira: cannot reach {self.url}: {exc}",
                            "check JIRA_URL and the credentials (JIRA_USER with JIRA_API_TOKEN, or JIRA_PAT)")]
        out = [Finding(True, f"jira: {info.get('deploymentType', 'Server')} {info.get('version', '')} at {self.url}")]
        try:
            with _errors():
                project = self.client.project(jira.project)
        except (Refused, Unknown) as exc:
            return [*out, Finding(False, f"jira: project {jira.project}: {exc}",
                                  "set [jira] project in ir.toml to a project key the account can create issues in")]
        out.append(Finding(True, f"jira: project {jira.project} ({project.name})"))
        types = {t.name for t in getattr(project, "issueTypes", [])}
        for wanted in (jira.issue_type, jira.task_type):
            out.append(Finding(wanted in types, f"jira: issue type {wanted!r}" + ("" if wanted in types else
                               f" not in {jira.project} (has: {', '.join(sorted(types))})"),
                               None if wanted in types else "set [jira] issue_type / task_type in ir.toml"))
        try:
            with _errors():
                priorities = {p.name for p in self.client.priorities()}
        except (Refused, Unknown) as exc:
            return [*out, Finding(False, f"jira: priorities: {exc}", "check that the account can browse the project")]
        for severity, name in jira.priorities.items():
            if name not in priorities:
                out.append(Finding(False, f"jira: priority {name!r} (for {severity}) does not exist",
                                   f"set [jira] priorities in ir.toml; known: {', '.join(sorted(priorities))}"))
        out.append(Finding(True, "jira: transition names are checked against the ticket's workflow when used"
                                 + (f"; mapped: {jira.transitions}" if jira.transitions else "")))
        return out

    # actions ------------------------------------------------------------------------------------------
    def _create(self, item: OutboxItem, target: Target) -> dict[str, Any]:
        jira, payload, incident = self.settings, item.payload, item.payload["incident"]
        task = item.action == "ticket.task"
        labels = [jira.label_prefix, f"{jira.label_prefix}-{incident['id'].lower()}", self._label(item),
                  *jira.labels, *payload.get("labels", [])]
        fields: dict[str, Any] = {
            "project": {"key": jira.project},
            "issuetype": {"name": jira.task_type if task else jira.issue_type},
            "summary": _exercise(item, payload["summary"])[:255],
            "description": (payload.get("description") or "") + f"\n\nOpened by ir for incident {incident['id']}"
                                                                  f" ({sinks.jira(payload.get('step_title', ''))}).",
            "labels": list(dict.fromkeys(labels)),
        }
        if incident.get("severity") in jira.priorities:
            fields["priority"] = {"name": jira.priorities[incident["severity"]]}
        if payload.get("due"):
            fields["duedate"] = payload["due"]
        issue = self.client.create_issue(fields=fields, prefetch=False)
        ref: dict[str, Any] = {"key": issue.key, "url": self._browse(issue.key)}
        if task:  # the task is the action; its link to the ticket is a second request, never a reason to redo it
            ref |= self._link_task(issue.key, target)
        return ref

    def _link_task(self, task: str, target: Target) -> dict[str, Any]:
        if not target.ticket:
            return {"warnings": [f"{task} is not linked to the incident ticket, which does not exist yet: link them "
                                 "by hand once it does"]}
        try:
            with _errors():
                self.client.create_issue_link("Relates", task, target.ticket)
        except (Refused, Unknown) as exc:
            return {"warnings": [f"{task} is not linked to {target.ticket} ({exc}): link them by hand"]}
        return {}

    def _remote_link(self, item: OutboxItem, ticket: str) -> dict[str, Any]:
        url = item.payload["url"]
        if not any(link.object.url == url for link in self.client.remote_links(ticket)):
            self.client.add_simple_link(ticket, {"url": url, "title": item.payload.get("title", url)})
        return {"key": ticket, "url": url}

    def _transition(self, ticket: str, wanted: str) -> dict[str, Any]:
        name = self._transition_name(wanted)
        available = {t["name"].lower(): t for t in self.client.transitions(ticket)}
        if name.lower() not in available:
            names = ", ".join(sorted(t["name"] for t in available.values())) or "none"
            raise Refused(f"no transition {name!r} from the ticket's current status (available: {names}); map it "
                          f"under [jira] transitions in ir.toml")
        self.client.transition_issue(ticket, available[name.lower()]["id"])
        return {"key": ticket, "transition": name}

    def _transition_name(self, wanted: str) -> str:
        return self.settings.transitions.get(wanted, wanted)

    def _label(self, item: OutboxItem) -> str:
        return f"{self.settings.label_prefix}-{marker(item.key)}"

    def _browse(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    @staticmethod
    def _ticket(target: Target) -> str:
        if not target.ticket:
            raise Refused("the incident ticket does not exist yet (its create step has not succeeded)")
        return target.ticket


def _exercise(item: OutboxItem, text: str) -> str:
    return f"[EXERCISE] {text}" if item.payload["incident"].get("exercise") else text


@contextmanager
def _errors() -> Iterator[None]:
    """Jira's answers as the outbox's outcomes: a refusal (not done), or an unknown outcome."""
    from jira.exceptions import JIRAError
    from requests.exceptions import RequestException

    try:
        yield
    except JIRAError as exc:
        status = exc.status_code
        if status == 429:
            header = (getattr(exc.response, "headers", None) or {}).get("Retry-After")
            raise Refused("rate limited by Jira", retry_after=retry_after(header)) from None
        if status is None or status >= 500:
            raise Unknown(f"Jira answered {status or 'nothing'}: {exc.text or ''}".strip()) from None
        raise Refused(f"Jira refused it (HTTP {status}): {exc.text}") from None
    except RequestException as exc:  # connection dropped, timeout
        raise Unknown(f"no answer from Jira ({type(exc).__name__})") from None


integration: Integration[JiraSettings] = Jira()
