"""A stateful fake of the Jira REST API v2, for the real `jira.JIRA` client.

    with JiraServer("Cloud") as jira_server:   # basic auth: user + API token
        client = JIRA(server=jira_server.url, basic_auth=(jira_server.user, jira_server.token), max_retries=0)
    with JiraServer("Server") as jira_server:  # Server / Data Center: a personal access token
        client = JIRA(server=jira_server.url, token_auth=jira_server.token, max_retries=0)

The request log names a request by its method and the path template of Atlassian's reference, e.g.
"POST /rest/api/2/issue" or "GET /rest/api/2/issue/{issueIdOrKey}"; `fail()` takes the same names.
Cloud answers search on /rest/api/2/search/jql only (nextPageToken), Server on /rest/api/2/search
only (startAt/total), as the services do today.

Opt-in realism (docs/services.md says what each models and where Atlassian documents it): `add_software_project()`
for a project as Jira Software creates it, `set_create_screen()` for fields taken off a create screen,
`link_types=` for a site without some link types, `index_lag=` for Cloud's eventually consistent search, and
`base_url=` for a site reached through another address (an API gateway).
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from . import jql
from .httpbase import FakeServer, RecordedRequest, Reply, json_reply, paginate
from .jira_json import API, JiraJson
from .jira_model import (
    ALL_ISSUE_TYPES,
    CREATE_SCREEN,
    DEFAULT_PRIORITY,
    DEFAULT_WORKFLOW,
    FIELDS,
    INITIAL_STATUS,
    ISSUE_TYPES,
    LINK_TYPES,
    PRIORITIES,
    SOFTWARE_INITIAL_STATUS,
    SOFTWARE_ISSUE_TYPES,
    SOFTWARE_WORKFLOW,
    FieldErrors,
    Issue,
    Project,
    apply_operations,
    checked_fields,
    comment_body,
    timestamp,
)

_FAILURES = {"ratelimit": (429, "Rate limit exceeded."), "server_error": (500, "Internal server error"),
             "error": (400, "Scripted failure")}


def _project_values(project: Project) -> set[str]:
    return {project.id, project.key.lower()}


def _key_values(issue: Issue) -> set[str]:
    return {issue.id, issue.key.lower()}


# JQL field -> the lower-cased values of an issue that a clause on it compares with
_JQL_FIELDS: dict[str, Callable[[Issue], set[str]]] = {
    "project": lambda issue: _project_values(issue.project),
    "labels": lambda issue: {label.lower() for label in issue.fields["labels"]},
    "status": lambda issue: {issue.status.lower()},
    "key": _key_values, "issuekey": _key_values, "issue": _key_values, "id": _key_values,
}
_NO_ISSUE = "Issue does not exist or you do not have permission to see it."

Handler = Callable[[RecordedRequest, dict[str, str]], tuple[int, Any]]


class JiraError(Exception):
    """Ends a request with Jira's error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def _reference(value: Any) -> str:
    """The id or key/name a `{"id": ...}` / `{"key": ...}` / `{"name": ...}` object names."""
    if not isinstance(value, dict):
        return ""
    return str(value.get("id") or value.get("key") or value.get("name") or "")


def _selected_fields(args: dict[str, Any], default: str) -> set[str] | None:
    """The issue fields a `fields` argument asks for; None for all of them."""
    requested = args.get("fields") or [default]
    names = {name.strip() for part in (requested if isinstance(requested, list) else [requested])
             for name in str(part).split(",")}
    return None if names & {"*all", "*navigable"} else names


class JiraServer(FakeServer):
    """Jira with project IR (and any added with `add_project`), the default issue types, priorities
    and link types, and one user: the one the credentials belong to."""

    def __init__(self, deployment: str = "Cloud", user: str = "ir-bot@example.com",
                 token: str = "jira-token", *, link_types: Iterable[dict[str, str]] = LINK_TYPES,
                 index_lag: float = 0.0, base_url: str | None = None) -> None:
        """`link_types`: the site's issue link types ({"id", "name", "inward", "outward"}); `index_lag`: seconds
        after a write during which Cloud's /search/jql does not see the issue (unless reconciled); `base_url`:
        the site's address that serverInfo answers (default: the address this server listens on)."""
        if deployment not in ("Cloud", "Server"):
            raise ValueError(f"deployment must be 'Cloud' or 'Server', not {deployment!r}")
        self.link_types = tuple(dict(link_type) for link_type in link_types)
        for link_type in self.link_types:
            if set(link_type) != {"id", "name", "inward", "outward"}:
                raise ValueError(f"a link type has exactly id, name, inward and outward, not {sorted(link_type)}")
        if index_lag < 0:
            raise ValueError(f"index_lag must be >= 0 seconds, not {index_lag}")
        super().__init__()
        self.deployment, self.user, self.token = deployment, user, token
        self.index_lag, self.base_url = index_lag, base_url
        self._serial = itertools.count(10000)
        self._clock = itertools.count(1)
        self._projects: dict[str, Project] = {}
        self._issues: dict[str, Issue] = {}
        self._links: list[dict[str, str]] = []
        self._status_ids: dict[str, str] = {}  # shared by the projects' workflows
        self._routes: dict[str, tuple[re.Pattern[str], Handler]] = {}
        for method, template, handler in (
            ("GET", "/serverInfo", self._server_info),
            ("GET", "/field", self._fields),
            ("GET", "/project", self._project_list),
            ("GET", "/project/{projectIdOrKey}", self._project_get),
            ("GET", "/issuetype", self._issue_types),
            ("GET", "/issue/createmeta/{projectIdOrKey}/issuetypes", self._createmeta_types),
            ("GET", "/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}", self._createmeta_fields),
            ("GET", "/priority", self._priorities),
            ("POST", "/issue", self._issue_create),
            ("GET", "/issue/{issueIdOrKey}", self._issue_get),
            ("PUT", "/issue/{issueIdOrKey}", self._issue_edit),
            ("GET", "/issue/{issueIdOrKey}/comment", self._comment_list),
            ("POST", "/issue/{issueIdOrKey}/comment", self._comment_add),
            ("GET", "/issue/{issueIdOrKey}/transitions", self._transition_list),
            ("POST", "/issue/{issueIdOrKey}/transitions", self._transition_do),
            ("GET", "/issue/{issueIdOrKey}/remotelink", self._remote_link_list),
            ("POST", "/issue/{issueIdOrKey}/remotelink", self._remote_link_put),
            ("GET", "/issueLinkType", self._link_types),
            ("POST", "/issueLink", self._link_create),
            ("GET", "/search", self._search),
            ("POST", "/search", self._search),
            ("GET", "/search/jql", self._search_jql),
            ("POST", "/search/jql", self._search_jql),
        ):
            pattern = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", API + template))
            self._routes[f"{method} {API}{template}"] = (pattern, handler)
        # add_remote_link() lists the application links first, and warns when it may not
        self._routes["GET /rest/applinks/latest/listApplicationlinks"] = (
            re.compile("/rest/applinks/latest/listApplicationlinks"), lambda request, params: (200, []))
        self.add_project("IR", "Incident Response")

    @property
    def url(self) -> str:
        """The server root, for `JIRA(server=...)`."""
        return self.root_url

    # -- seeding and inspection by tests ------------------------------------------------------

    def add_project(self, key: str, name: str, workflow: dict[str, str] | None = None, *,
                    initial: str = INITIAL_STATUS, issue_types: dict[str, str] | None = None) -> str:
        """A project whose workflow maps transition names to the statuses they lead to; issues start in
        `initial`. `issue_types` (id -> name) defaults to Task and Incident."""
        workflow = dict(workflow or DEFAULT_WORKFLOW)
        types = dict(ISSUE_TYPES if issue_types is None else issue_types)
        unknown = set(types.items()) - set(ALL_ISSUE_TYPES.items())
        if unknown:
            raise ValueError(f"unknown issue types {sorted(unknown)}; known: {ALL_ISSUE_TYPES}")
        with self._lock:
            statuses = [initial, *workflow.values()]
            status_ids = {status: self._status_ids.setdefault(status, str(len(self._status_ids) + 1))
                          for status in statuses}
            project = Project(str(next(self._serial)), key, name, workflow, status_ids, initial, types)
            self._projects[key] = project
            return project.id

    def add_software_project(self, key: str, name: str) -> str:
        """A project as Jira Software creates it: Epic, Task, Bug and Story, and To Do -> In Progress -> Done."""
        return self.add_project(key, name, SOFTWARE_WORKFLOW, initial=SOFTWARE_INITIAL_STATUS,
                                issue_types=SOFTWARE_ISSUE_TYPES)

    def set_create_screen(self, project: str, issue_type: str, fields: Iterable[str]) -> None:
        """The fields on the create screen of an issue type (by name) of a project, project and issue type aside;
        a create that sets any other field is refused."""
        with self._lock:
            found = self._projects[project]
            type_id = next(tid for tid, type_name in found.issue_types.items() if type_name == issue_type)
            on_screen = tuple(fields)
            unknown = set(on_screen) - set(CREATE_SCREEN)
            if unknown:
                raise ValueError(f"fields {sorted(unknown)} are not fields this fake can put on a screen: "
                                 f"{CREATE_SCREEN}")
            found.screens[type_id] = on_screen

    @property
    def issues(self) -> dict[str, dict[str, Any]]:
        """Issue key -> the issue as GET /rest/api/2/issue/{key} returns it."""
        with self._lock:
            return {key: self._issue_json(issue, None) for key, issue in self._issues.items()}

    def comments(self, key: str) -> list[str]:
        with self._lock:
            return [comment["body"] for comment in self._issues[key].comments]

    def transitions_done(self, key: str) -> list[str]:
        """The names of the transitions performed on an issue, in order."""
        with self._lock:
            return list(self._issues[key].transitions_done)

    @property
    def links(self) -> list[dict[str, str]]:
        """Issue links as {"type": name, "inward": key, "outward": key}, in creation order."""
        with self._lock:
            return [{name: link[name] for name in ("type", "inward", "outward")} for link in self._links]

    def remote_links(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            issue = self._issues[key]
            return [self._json.remote_link(issue, link) for link in issue.remote_links]

    # -- FakeServer hooks ---------------------------------------------------------------------

    def api_for(self, method: str, path: str) -> str:
        for api, (pattern, _) in self._routes.items():
            if api.startswith(f"{method} ") and pattern.fullmatch(path):
                return api
        return f"{method} {path}"

    def handle(self, request: RecordedRequest) -> Reply:
        if request.headers.get("Authorization") != self._expected_authorization():
            return json_reply(401, {"errorMessages": ["You are not authenticated. Authentication required to perform "
                                                      "this operation."], "errors": {}})
        route = self._routes.get(request.api)
        if route is None:
            return json_reply(404, {"errorMessages": [f"null for uri: {self.root_url}{request.path}"], "errors": {}})
        pattern, handler = route
        match = pattern.fullmatch(urlsplit(request.path).path)
        assert match is not None  # api_for matched the same pattern
        try:
            status, payload = handler(request, {name: unquote(value) for name, value in match.groupdict().items()})
        except JiraError as refusal:
            return json_reply(refusal.status, {"errorMessages": [refusal.message], "errors": {}})
        except FieldErrors as refusal:
            return json_reply(400, {"errorMessages": [], "errors": refusal.errors})
        return Reply(status) if payload is None else json_reply(status, payload)

    def failure_reply(self, mode: str, error: str | None, status: int | None) -> Reply:
        usual_status, usual_message = _FAILURES[mode]
        return json_reply(status or usual_status, {"errorMessages": [error or usual_message], "errors": {}})

    # -- plumbing -----------------------------------------------------------------------------

    def _expected_authorization(self) -> str:
        if self.deployment == "Cloud":
            return "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return f"Bearer {self.token}"

    @property
    def _json(self) -> JiraJson:
        return JiraJson(self.root_url, self.deployment, self.user, self.link_types)

    def _issue_json(self, issue: Issue, selected: set[str] | None) -> dict[str, Any]:
        return self._json.issue(issue, selected, self._links, self._issues)

    def _project(self, reference: str) -> Project:
        for project in self._projects.values():
            if reference in (project.id, project.key):
                return project
        raise JiraError(404, f"No project could be found with key '{reference}'.")

    def _issue(self, reference: str) -> Issue:
        for issue in self._issues.values():
            if reference.upper() in (issue.id, issue.key):
                return issue
        raise JiraError(404, _NO_ISSUE)

    def _new_comment(self, issue: Issue, body: str) -> dict[str, Any]:
        comment = {"id": str(next(self._serial)), "body": body, "created": timestamp(next(self._clock))}
        issue.comments.append(comment)
        issue.updated, issue.written_at = comment["created"], time.monotonic()
        return comment

    def _query(self, args: dict[str, Any]) -> list[Issue]:
        try:
            clauses = jql.parse(str(args.get("jql") or ""))
        except jql.JqlError as problem:
            raise JiraError(400, str(problem)) from None
        for clause in clauses:
            if clause.field not in _JQL_FIELDS:
                raise JiraError(400, f"Field '{clause.field}' does not exist or you do not have permission to "
                                     "view it.")
            if clause.field == "project":
                known = set().union(*map(_project_values, self._projects.values()))
                for value in clause.values:
                    if value.lower() not in known:
                        raise JiraError(400, f"The value '{value}' does not exist for the field 'project'.")
        return [issue for issue in self._issues.values()
                if all(_JQL_FIELDS[clause.field](issue) & {value.lower() for value in clause.values}
                       for clause in clauses)]

    # -- endpoints ----------------------------------------------------------------------------

    def _server_info(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        version = [1001, 0, 0] if self.deployment == "Cloud" else [9, 12, 2]
        return 200, {"baseUrl": self.base_url or self.root_url, "version": ".".join(map(str, version)), "versionNumbers": version,
                     "deploymentType": self.deployment, "buildNumber": 100000, "serverTitle": "Jira"}

    def _fields(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, [{"id": field_id, "key": field_id, "name": name, "custom": False, "orderable": True,
                      "navigable": True, "searchable": True, "clauseNames": list(clauses),
                      "schema": {"type": kind, "system": field_id}} for field_id, name, clauses, kind in FIELDS]

    def _project_list(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, [self._json.project(project) for project in self._projects.values()]

    def _project_get(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, self._json.project(self._project(params["projectIdOrKey"]))

    def _issue_types(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        types = dict.fromkeys(type_id for project in self._projects.values() for type_id in project.issue_types)
        return 200, [self._json.issue_type(type_id) for type_id in sorted(types, key=list(ALL_ISSUE_TYPES).index)]

    def _createmeta_page(self, request: RecordedRequest, items: list[Any], cloud_key: str) -> dict[str, Any]:
        """A page as the createmeta endpoints answer: `values` on Server / DC, `cloud_key` on Cloud."""
        try:
            start, size = int(request.args.get("startAt") or 0), int(request.args.get("maxResults") or 50)
        except ValueError:
            raise JiraError(400, "startAt and maxResults must be integers.") from None
        page = items[start:start + size]
        if self.deployment == "Cloud":
            return {"maxResults": size, "startAt": start, "total": len(items), cloud_key: page}
        return {"maxResults": size, "startAt": start, "total": len(items), "isLast": start + size >= len(items),
                "values": page}

    def _createmeta_types(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        project = self._project(params["projectIdOrKey"])
        types = [self._json.issue_type(type_id) for type_id in project.issue_types]
        return 200, self._createmeta_page(request, types, "issueTypes")

    def _createmeta_fields(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        project = self._project(params["projectIdOrKey"])
        type_id = params["issueTypeId"]
        if type_id not in project.issue_types:
            raise JiraError(404, f"Issue type with id '{type_id}' is not valid for project '{project.key}'.")
        return 200, self._createmeta_page(request, self._json.create_fields(project, type_id), "fields")

    def _priorities(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, [self._json.priority(name) for name in PRIORITIES.values()]

    def _issue_create(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        fields = request.args.get("fields")
        if not isinstance(fields, dict):
            raise JiraError(400, "Can not deserialize instance of issue fields: 'fields' is missing.")
        fields, errors = dict(fields), {}
        project_ref, type_ref = _reference(fields.pop("project", None)), _reference(fields.pop("issuetype", None))
        project = next((p for p in self._projects.values() if project_ref in (p.id, p.key)), None)
        types = project.issue_types if project is not None else ALL_ISSUE_TYPES
        type_id = next((key for key, name in types.items() if type_ref in (key, name)), None)
        if project is None:
            errors["project"] = "valid project is required" if project_ref else "project is required"
        if type_id is None:
            errors["issuetype"] = "valid issue type is required" if type_ref else "issue type is required"
        if project is not None and type_id is not None:
            on_screen = project.screens.get(type_id, CREATE_SCREEN)
            errors.update({name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                           for name in fields if name not in on_screen})
        fields.setdefault("summary", None)
        fields.setdefault("labels", [])
        fields.setdefault("priority", {"name": DEFAULT_PRIORITY})
        try:
            values, comments = apply_operations(checked_fields(fields), request.args.get("update") or {})
        except FieldErrors as refusal:
            errors.update(refusal.errors)
        if errors:
            raise FieldErrors(errors)
        assert project is not None and type_id is not None
        project.issue_count += 1
        created = timestamp(next(self._clock))
        issue = Issue(str(next(self._serial)), f"{project.key}-{project.issue_count}", project, type_id,
                      {"description": None, "duedate": None, **values}, created, created, project.initial,
                      time.monotonic())
        self._issues[issue.key] = issue
        for body in comments:
            self._new_comment(issue, body)
        return 201, {"id": issue.id, "key": issue.key, "self": self._json.link(f"/issue/{issue.id}")}

    def _issue_get(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        issue = self._issue(params["issueIdOrKey"])
        return 200, self._issue_json(issue, _selected_fields(request.args, "*all"))

    def _edit(self, issue: Issue, args: dict[str, Any]) -> None:
        """Apply the `fields` and `update` of an edit or a transition, all or nothing."""
        fields = {**issue.fields, **checked_fields(args.get("fields") or {})}
        issue.fields, comments = apply_operations(fields, args.get("update") or {})
        issue.updated, issue.written_at = timestamp(next(self._clock)), time.monotonic()
        for body in comments:
            self._new_comment(issue, body)

    def _issue_edit(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        self._edit(self._issue(params["issueIdOrKey"]), request.args)
        return 204, None

    def _comment_list(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, self._json.comments(self._issue(params["issueIdOrKey"]))

    def _comment_add(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        issue = self._issue(params["issueIdOrKey"])
        return 201, self._json.comment(issue, self._new_comment(issue, comment_body(request.args.get("body"))))

    def _available(self, issue: Issue) -> list[tuple[str, str, str]]:
        return [transition for transition in issue.project.transitions() if transition[2] != issue.status]

    def _transition_list(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        issue = self._issue(params["issueIdOrKey"])
        return 200, {"expand": "transitions",
                     "transitions": [self._json.transition(issue, t) for t in self._available(issue)]}

    def _transition_do(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        issue = self._issue(params["issueIdOrKey"])
        wanted = _reference(request.args.get("transition"))
        if not wanted:
            raise JiraError(400, "Missing 'transition' identifier")
        transition = next((t for t in self._available(issue) if t[0] == wanted), None)
        if transition is None:
            raise JiraError(400, f"Transition id '{wanted}' is not valid for this issue.")
        self._edit(issue, request.args)
        issue.status = transition[2]
        issue.transitions_done.append(transition[1])
        return 204, None

    def _remote_link_list(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        issue = self._issue(params["issueIdOrKey"])
        return 200, [self._json.remote_link(issue, link) for link in issue.remote_links]

    def _remote_link_put(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        """Create a remote link, or update the one with the same globalId (200 instead of 201)."""
        issue = self._issue(params["issueIdOrKey"])
        target = request.args.get("object")
        target = target if isinstance(target, dict) else {}
        missing = {key: f"'{key}' is required." for key in ("url", "title") if not target.get(key)}
        if missing:
            raise FieldErrors(missing)
        link = {key: request.args[key] for key in ("globalId", "application", "relationship") if key in request.args}
        link["object"] = target
        existing = next((old for old in issue.remote_links
                         if link.get("globalId") and old.get("globalId") == link["globalId"]), None)
        if existing is not None:
            existing.update(link)
            return 200, {"id": existing["id"], "self": self._json.remote_link(issue, existing)["self"]}
        link["id"] = next(self._serial)
        issue.remote_links.append(link)
        return 201, {"id": link["id"], "self": self._json.remote_link(issue, link)["self"]}

    def _link_types(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        return 200, {"issueLinkTypes": [self._json.link_type(link_type) for link_type in self.link_types]}

    def _link_create(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        args = request.args
        type_ref = _reference(args.get("type"))
        link_type = next((t for t in self.link_types if type_ref in (t["id"], t["name"])), None)
        if link_type is None:
            raise JiraError(404, f"No issue link type with name '{type_ref}' found.")
        if args.get("comment") is not None:
            raise JiraError(400, "This fake Jira does not take a comment with an issue link.")
        inward = self._issue(_reference(args.get("inwardIssue"))).key
        outward = self._issue(_reference(args.get("outwardIssue"))).key
        link = {"type": link_type["name"], "inward": inward, "outward": outward}
        if not any(link.items() <= existing.items() for existing in self._links):  # Jira ignores a repeat
            self._links.append({**link, "id": str(next(self._serial))})
        return 201, None

    def _search(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        """Server / Data Center search, paged by startAt and maxResults."""
        if self.deployment == "Cloud":
            raise JiraError(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
                                 "API. A full migration guideline is available at "
                                 "https://developer.atlassian.com/changelog/#CHANGE-2046")
        issues = self._query(request.args)
        try:
            start, size = int(request.args.get("startAt") or 0), int(request.args.get("maxResults") or 50)
        except ValueError:
            raise JiraError(400, "startAt and maxResults must be integers.") from None
        selected = _selected_fields(request.args, "*navigable")
        return 200, {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(issues),
                     "issues": [self._issue_json(issue, selected) for issue in issues[start:start + size]]}

    def _search_jql(self, request: RecordedRequest, params: dict[str, str]) -> tuple[int, Any]:
        """Cloud's enhanced search, paged by nextPageToken; only ids unless `fields` asks for more."""
        if self.deployment != "Cloud":
            raise JiraError(404, f"null for uri: {self.root_url}{request.path}")
        issues = self._indexed(self._query(request.args), request.args.get("reconcileIssues"))
        try:
            size = int(request.args.get("maxResults") or 50)
            page, token = paginate(issues, request.args.get("nextPageToken"), size)
        except ValueError as problem:
            raise JiraError(400, str(problem)) from None
        selected = _selected_fields(request.args, "id")
        payload: dict[str, Any] = {"issues": [self._issue_json(issue, selected) for issue in page],
                                   "isLast": token is None}
        if token is not None:
            payload["nextPageToken"] = token
        return 200, payload

    def _indexed(self, issues: list[Issue], reconcile: Any) -> list[Issue]:
        """The issues Cloud's search index holds: not those written less than `index_lag` seconds ago, unless
        listed (by numeric id) in `reconcileIssues`."""
        if not self.index_lag:
            return issues
        parts = reconcile if isinstance(reconcile, list) else [reconcile] if reconcile is not None else []
        wanted = {str(number).strip() for part in parts for number in str(part).split(",") if str(number).strip()}
        if len(wanted) > 50:
            raise JiraError(400, "reconcileIssues accepts at most 50 issue ids.")
        settled = time.monotonic() - self.index_lag
        return [issue for issue in issues if issue.written_at <= settled or issue.id in wanted]
