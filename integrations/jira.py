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
from datetime import UTC, datetime
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


# The status category each playbook transition leads to (Jira's three: new, indeterminate, done): where a workflow
# has no transition of that name and ir.toml maps none, the ticket is moved to a status of that category.
CATEGORIES = {"triage": "indeterminate", "contain": "indeterminate", "eradicate": "indeterminate",
              "recover": "indeterminate", "resolve": "done", "close": "done", "reopen": "new"}
SKIP = "skip"  # `transitions = { Triage = "skip" }`: the workflow has no such step; recorded, nothing sent
OPTIONAL_FIELDS = ("priority", "duedate")  # left out, with a warning, when the project's create screen lacks them
SCREEN_FIELDS = {"summary": "tickets cannot be opened", "description": "tickets cannot be opened",
                 "labels": "tickets cannot be opened, and ir finds a ticket again by its label",
                 "priority": "tickets are opened without one (a warning each)",
                 "duedate": "tickets are opened without one (a warning each)"}
CLOUD_HOSTS = (".atlassian.net", ".jira.com")


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
    index_lag: float = 120.0
    """Seconds after an unanswered create during which a search that does not find the ticket is not trusted: Jira
    Cloud's search index lags behind writes, so the ticket is looked for again later instead of created twice."""


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
        basic, pat = "JIRA_USER" in env and "JIRA_API_TOKEN" in env, "JIRA_PAT" in env
        if not (basic or pat):
            raise NotConfigured("set JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)")
        cloud = (urlsplit(env["JIRA_URL"]).hostname or "").endswith(CLOUD_HOSTS)
        if basic and (cloud or not pat):  # a PAT left over from a Server/DC setup never overrides Cloud's token
            auth: dict[str, Any] = {"basic_auth": (env["JIRA_USER"], env["JIRA_API_TOKEN"])}
            used = "JIRA_USER with JIRA_API_TOKEN" + (" (JIRA_PAT is set too, and not used)" if pat else "")
        else:
            auth = {"token_auth": env["JIRA_PAT"]}
            used = "JIRA_PAT" + (" (JIRA_USER and JIRA_API_TOKEN are set too, and not used)" if basic else "")
        return JiraConnection(env["JIRA_URL"].rstrip("/"), auth, settings, used)


class JiraConnection:
    """Connects on first use: the client asks the server for its version as it is built."""

    def __init__(self, url: str, auth: dict[str, Any], settings: JiraSettings, credential: str):
        self.url, self.settings, self.credential = url, settings, credential
        self._auth = auth
        self._client: JIRA | None = None
        self._site: str | None = None

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
                if found:
                    return {"key": found[0].key, "url": self._browse(found[0].key), "found": True}
                since = (datetime.now(UTC) - datetime.fromisoformat(item.updated_at)).total_seconds() \
                    if item.updated_at else float("inf")  # not attempted in this store: nothing to wait for
                if since < self.settings.index_lag:
                    raise Unknown(f"not found by its label {since:.0f} s after the attempt, which Jira's search "
                                  f"may not show yet; looked for again after {self.settings.index_lag:.0f} s")
                return None
            if item.action == "ticket.remote_link":
                return None  # looks before it writes
            ticket = self._ticket(target)
            if item.action == "ticket.comment":
                tag = f"[ir:{marker(item.key)}]"
                hit = next((c for c in self.client.comments(ticket) if tag in c.body), None)
                return {"key": ticket, "comment": hit.id, "found": True} if hit else None
            if item.action == "ticket.transition":
                reached = self._reached(ticket, item.payload["transition"])
                return {**reached, "found": True} if reached else None
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
            return [Finding(True, f"jira: credentials: {self.credential}"),
                    Finding(False, f"jira: cannot reach {self.url}: {exc}",
                            "check JIRA_URL and the credentials (JIRA_USER with JIRA_API_TOKEN, or JIRA_PAT)")]
        deployment = info.get("deploymentType", "Server")
        out = [Finding(True, f"jira: credentials: {self.credential}"),
               Finding(True, f"jira: {deployment} {info.get('version', '')} at {self.url}")]
        if deployment == "Cloud" and "token_auth" in self._auth:
            out.append(Finding(False, "jira: a personal access token (JIRA_PAT) is for Jira Server / Data Center; "
                                      "Jira Cloud does not take it", "set JIRA_USER and JIRA_API_TOKEN (an API token "
                                      "of the account), and unset JIRA_PAT"))
        try:
            with _errors():
                project = self.client.project(jira.project)
        except (Refused, Unknown) as exc:
            return [*out, Finding(False, f"jira: project {jira.project}: {exc}",
                                  "set [jira] project in ir.toml to a project key the account can create issues in")]
        out.append(Finding(True, f"jira: project {jira.project} ({project.name})"))
        types = {t.name: t.id for t in getattr(project, "issueTypes", [])}
        for wanted in dict.fromkeys((jira.issue_type, jira.task_type)):
            out.append(Finding(wanted in types, f"jira: issue type {wanted!r}" + ("" if wanted in types else
                               f" not in {jira.project} (has: {', '.join(sorted(types))})"),
                               None if wanted in types else "set [jira] issue_type / task_type in ir.toml"))
            if wanted in types:
                out += self._screen(wanted, types[wanted])
        try:
            with _errors():
                priorities = {p.name for p in self.client.priorities()}
        except (Refused, Unknown) as exc:
            return [*out, Finding(False, f"jira: priorities: {exc}", "check that the account can browse the project")]
        for severity, name in jira.priorities.items():
            if name not in priorities:
                out.append(Finding(False, f"jira: priority {name!r} (for {severity}) does not exist",
                                   f"set [jira] priorities in ir.toml; known: {', '.join(sorted(priorities))}"))
        try:
            with _errors():
                link_types = {t.name for t in self.client.issue_link_types()}
        except (Refused, Unknown) as exc:
            return [*out, Finding(False, f"jira: issue link types: {exc}", "check that the account can browse links")]
        has = "Relates" in link_types
        out.append(Finding(has, "jira: link type 'Relates' (follow-up tasks to the ticket)" + (
            "" if has else f" does not exist (has: {', '.join(sorted(link_types))})"), None if has else
            "tasks are opened without the link (a warning each): add the link type, or link by hand"))
        out.append(Finding(True, "jira: transition names are checked against the ticket's workflow when used; one "
                                 "the workflow lacks moves the ticket to a status of its category (Triage, Contain, "
                                 "Eradicate, Recover: in progress; Resolve: done)"
                                 + (f"; mapped: {jira.transitions}" if jira.transitions else "")))
        return out

    def _screen(self, issue_type: str, type_id: str) -> list[Finding]:
        """The fields ir sets that the issue type's create screen lacks (createmeta: Cloud, and Server / DC 8.4+)."""
        try:
            with _errors():
                page = self.client._get_json(f"issue/createmeta/{self.settings.project}/issuetypes/{type_id}")
        except (Refused, Unknown) as exc:
            return [Finding(True, f"jira: the create screen of {issue_type!r} cannot be read ({exc}); its fields "
                                  "are checked when a ticket is opened")]
        on_screen = {f.get("fieldId") or f.get("key") for f in page.get("fields", page.get("values", []))}
        missing = [name for name in SCREEN_FIELDS if name not in on_screen]
        if not missing:
            return [Finding(True, f"jira: the create screen of {issue_type!r} has every field ir sets")]
        return [Finding(name in OPTIONAL_FIELDS, f"jira: the create screen of {issue_type!r} has no {name} field: "
                        + SCREEN_FIELDS[name], None if name in OPTIONAL_FIELDS else
                        f"add {name} to the create screen of {issue_type!r} in {self.settings.project}")
                for name in missing]

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
        issue, warnings = self._create_issue(fields)
        ref: dict[str, Any] = {"key": issue.key, "url": self._browse(issue.key)}
        ref |= {"warnings": warnings} if warnings else {}
        if task:  # the task is the action; its link to the ticket is a second request, never a reason to redo it
            ref |= self._link_task(issue.key, target)
        return ref

    def _create_issue(self, fields: dict[str, Any]) -> tuple[Any, list[str]]:
        """Create the issue; a field the project's create screen lacks (priority, due date) is left out and said,
        never a reason not to open the ticket. Jira refuses such a create whole, so nothing was made by it."""
        from jira.exceptions import JIRAError

        try:
            return self.client.create_issue(fields=fields, prefetch=False), []
        except JIRAError as exc:
            refused = _field_errors(exc)
            dropped = [name for name in OPTIONAL_FIELDS if name in refused and name in fields]
            if exc.status_code != 400 or not dropped:
                raise
        warnings = [f"the ticket was opened without its {name} ({refused[name]}): add the field to the project's "
                    f"create screen, or leave it out in [jira] of ir.toml" for name in dropped]
        return self.client.create_issue(fields={k: v for k, v in fields.items() if k not in dropped},
                                        prefetch=False), warnings

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
        """Move the ticket: by the transition's name (as ir.toml maps it), else to a status of the category the
        playbook's transition leads to; a ticket already there is recorded as having reached it."""
        name = self._transition_name(wanted)
        if name.lower() == SKIP:
            return {"key": ticket, "transition": wanted, "skipped": True}
        offered = self.client.transitions(ticket)
        reached = self._reached(ticket, wanted, offered)
        if reached:
            return reached
        chosen = next((t for t in offered if t["name"].lower() == name.lower()), None)
        category = self._category(wanted)
        if chosen is None and category:
            chosen = next((t for t in offered if _category(t.get("to")) == category), None)
        if chosen is None:
            names = ", ".join(sorted(t["name"] for t in offered)) or "none"
            raise Refused(f"no transition {name!r} from the ticket's current status (available: {names}); map it "
                          f'under [jira] transitions in ir.toml (or {wanted} = "skip")')
        self.client.transition_issue(ticket, chosen["id"])
        if chosen["name"].lower() == name.lower():
            return {"key": ticket, "transition": chosen["name"]}
        mapped = [f"the workflow has no transition {name!r} (from [jira] transitions in ir.toml): the ticket was "
                  f"moved by {chosen['name']!r} to a status of the category {category!r}"] if wanted != name else []
        return {"key": ticket, "transition": chosen["name"], "by_category": category} | (
            {"warnings": mapped} if mapped else {})

    def _reached(self, ticket: str, wanted: str, offered: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """Whether the ticket is already where the playbook's transition leads (a workflow offers no transition
        from a status to itself): no transition of that name is offered, and the ticket's status has that name
        or is of the playbook transition's category."""
        name = self._transition_name(wanted)
        offered = self.client.transitions(ticket) if offered is None else offered
        if any(t["name"].lower() == name.lower() for t in offered):
            return None
        status = self.client.issue(ticket, fields="status").fields.status
        category = self._category(wanted)
        if status.name.lower() == name.lower() or (category and status.statusCategory.key == category):
            return {"key": ticket, "transition": name, "reached": status.name}
        return None

    @staticmethod
    def _category(wanted: str) -> str | None:
        """The status category a playbook transition leads to (Contain: in progress)."""
        return CATEGORIES.get(wanted.lower())

    def _transition_name(self, wanted: str) -> str:
        return self.settings.transitions.get(wanted, wanted)

    def _label(self, item: OutboxItem) -> str:
        return f"{self.settings.label_prefix}-{marker(item.key)}"

    def _browse(self, key: str) -> str:
        """A link people open: the site's own address (serverInfo's baseUrl), which differs from JIRA_URL when ir
        talks to an API gateway (scoped Cloud tokens)."""
        if self._site is None:
            self._site = str(self.client.server_info().get("baseUrl") or self.url).rstrip("/")
        return f"{self._site}/browse/{key}"

    @staticmethod
    def _ticket(target: Target) -> str:
        if not target.ticket:
            raise Refused("the incident ticket does not exist yet (its create step has not succeeded)")
        return target.ticket


def _category(status: Any) -> str | None:
    return ((status or {}).get("statusCategory") or {}).get("key")


def _field_errors(exc: Any) -> dict[str, str]:
    """Jira's 400 answer as {field: message} (`{"errorMessages": [...], "errors": {...}}`)."""
    try:
        errors = exc.response.json().get("errors")
    except (AttributeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}


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
