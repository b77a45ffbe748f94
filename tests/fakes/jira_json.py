"""The fake Jira's state as the JSON of the REST API v2, with absolute `self` links everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .jira_model import ALL_ISSUE_TYPES, CREATE_SCREEN, DEFAULT_PRIORITY, FIELDS, PRIORITIES, Issue, Project

API = "/rest/api/2"
ACCOUNT_ID = "5b10a2844c20165700ede21g"
_CATEGORIES = {"new": (2, "blue-gray", "To Do"), "indeterminate": (4, "yellow", "In Progress"),
               "done": (3, "green", "Done")}


@dataclass(frozen=True)
class JiraJson:
    root: str  # the server root, "http://127.0.0.1:PORT"
    deployment: str  # "Cloud" or "Server"
    user: str  # the one user, owner of the credentials
    link_types: tuple[dict[str, str], ...]

    def link(self, path: str) -> str:
        return f"{self.root}{API}{path}"

    def user_json(self) -> dict[str, Any]:
        """Cloud knows users by accountId, Server by name."""
        if self.deployment == "Cloud":
            identity = {"self": self.link(f"/user?accountId={ACCOUNT_ID}"), "accountId": ACCOUNT_ID,
                        "accountType": "atlassian"}
        else:
            identity = {"self": self.link(f"/user?username={self.user}"), "name": self.user, "key": self.user}
        return {**identity, "emailAddress": self.user, "displayName": "IR Bot", "active": True, "timeZone": "UTC"}

    def status(self, project: Project, name: str) -> dict[str, Any]:
        category = project.status_category(name)
        category_id, colour, category_name = _CATEGORIES[category]
        return {"self": self.link(f"/status/{project.status_ids[name]}"), "description": "", "iconUrl": "",
                "name": name, "id": project.status_ids[name],
                "statusCategory": {"self": self.link(f"/statuscategory/{category_id}"), "id": category_id,
                                   "key": category, "colorName": colour, "name": category_name}}

    def issue_type(self, type_id: str) -> dict[str, Any]:
        return {"self": self.link(f"/issuetype/{type_id}"), "id": type_id, "description": "", "iconUrl": "",
                "name": ALL_ISSUE_TYPES[type_id], "subtask": False}

    def priority(self, name: str) -> dict[str, Any]:
        priority_id = next(key for key, value in PRIORITIES.items() if value == name)
        return {"self": self.link(f"/priority/{priority_id}"), "iconUrl": "", "name": name, "id": priority_id}

    def link_type(self, link_type: dict[str, str]) -> dict[str, str]:
        return {**link_type, "self": self.link(f"/issueLinkType/{link_type['id']}")}

    def project(self, project: Project) -> dict[str, Any]:
        return {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                "self": self.link(f"/project/{project.id}"), "id": project.id, "key": project.key,
                "name": project.name, "projectTypeKey": "software", "simplified": False,
                "issueTypes": [self.issue_type(type_id) for type_id in project.issue_types]}

    def _brief(self, issue: Issue) -> dict[str, Any]:
        return {"id": issue.id, "key": issue.key, "self": self.link(f"/issue/{issue.id}"),
                "fields": {"summary": issue.fields["summary"], "status": self.status(issue.project, issue.status),
                           "priority": self.priority(issue.fields["priority"]),
                           "issuetype": self.issue_type(issue.issuetype)}}

    def _issue_links(self, issue: Issue, links: list[dict[str, str]],
                     issues: dict[str, Issue]) -> list[dict[str, Any]]:
        """A link shows on its inward issue as an outwardIssue, and the other way round."""
        rendered = []
        for link in links:
            if issue.key not in (link["inward"], link["outward"]):
                continue
            link_type = next(t for t in self.link_types if t["name"] == link["type"])
            if link["inward"] == issue.key:
                other, side = link["outward"], "outwardIssue"
            else:
                other, side = link["inward"], "inwardIssue"
            rendered.append({"id": link["id"], "self": self.link(f"/issueLink/{link['id']}"),
                             "type": self.link_type(link_type), side: self._brief(issues[other])})
        return rendered

    def comment(self, issue: Issue, comment: dict[str, Any]) -> dict[str, Any]:
        author = self.user_json()
        return {"self": self.link(f"/issue/{issue.id}/comment/{comment['id']}"), "id": comment["id"],
                "author": author, "body": comment["body"], "updateAuthor": author, "created": comment["created"],
                "updated": comment["created"]}

    def comments(self, issue: Issue) -> dict[str, Any]:
        comments = [self.comment(issue, comment) for comment in issue.comments]
        return {"startAt": 0, "maxResults": len(comments), "total": len(comments), "comments": comments}

    def issue(self, issue: Issue, selected: set[str] | None, links: list[dict[str, str]],
              issues: dict[str, Issue]) -> dict[str, Any]:
        """The issue with the `selected` fields (None: all), its links drawn from `links` and `issues`."""
        fields = {**issue.fields, "status": self.status(issue.project, issue.status),
                  "priority": self.priority(issue.fields["priority"]), "issuetype": self.issue_type(issue.issuetype),
                  "project": self.project(issue.project), "issuelinks": self._issue_links(issue, links, issues),
                  "comment": self.comments(issue), "reporter": self.user_json(), "created": issue.created,
                  "updated": issue.updated}
        return {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                "id": issue.id, "self": self.link(f"/issue/{issue.id}"), "key": issue.key,
                "fields": {name: value for name, value in fields.items() if selected is None or name in selected}}

    def transition(self, issue: Issue, transition: tuple[str, str, str]) -> dict[str, Any]:
        transition_id, name, status = transition
        return {"id": transition_id, "name": name, "to": self.status(issue.project, status), "hasScreen": False,
                "isGlobal": True, "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}

    def remote_link(self, issue: Issue, link: dict[str, Any]) -> dict[str, Any]:
        return {**link, "self": self.link(f"/issue/{issue.key}/remotelink/{link['id']}")}

    def create_field(self, project: Project, type_id: str, field_id: str) -> dict[str, Any]:
        """A field of the create screen of `type_id` in `project`, as the createmeta endpoints describe it."""
        name, kind = next((name, kind) for fid, name, _, kind in FIELDS if fid == field_id)
        meta: dict[str, Any] = {"required": field_id in ("summary", "issuetype", "project"),
                                "schema": {"type": kind, "system": field_id}, "name": name, "fieldId": field_id,
                                "key": field_id, "hasDefaultValue": field_id == "priority",
                                "operations": ["add", "set", "remove"] if field_id == "labels" else ["set"]}
        if kind == "array":
            meta["schema"]["items"] = "string"
        if field_id == "priority":
            meta["allowedValues"] = [self.priority(name) for name in PRIORITIES.values()]
            meta["defaultValue"] = self.priority(DEFAULT_PRIORITY)
        elif field_id == "issuetype":
            meta["allowedValues"] = [self.issue_type(type_id)]
        elif field_id == "project":
            meta["allowedValues"] = [{"self": self.link(f"/project/{project.id}"), "id": project.id,
                                      "key": project.key, "name": project.name}]
        return meta

    def create_fields(self, project: Project, type_id: str) -> list[dict[str, Any]]:
        on_screen = project.screens.get(type_id, CREATE_SCREEN)
        return [self.create_field(project, type_id, field_id) for field_id in ("issuetype", "project", *on_screen)]
