"""The state of the fake Jira: projects with their workflows, issues, and the checks on issue fields.

Nothing here knows about HTTP; `jira_server` renders this state as Jira's JSON.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

# Transition name -> the status it leads to. Every transition is global: it is offered from any
# status but its own target, as in Jira's simplified workflows.
DEFAULT_WORKFLOW = {
    "Triage": "Triage",
    "Contain": "Contained",
    "Eradicate": "Eradicated",
    "Recover": "Recovered",
    "Resolve": "Resolved",
}
INITIAL_STATUS = "Open"
ISSUE_TYPES = {"10001": "Task", "10002": "Incident"}
# A Jira Software project as Jira creates it (add_software_project): these issue types, and a simplified
# workflow whose global transitions are named after the statuses they lead to (docs/services.md).
SOFTWARE_ISSUE_TYPES = {"10000": "Epic", "10001": "Task", "10003": "Bug", "10004": "Story"}
SOFTWARE_INITIAL_STATUS = "To Do"
SOFTWARE_WORKFLOW = {"To Do": "To Do", "In Progress": "In Progress", "Done": "Done"}
ALL_ISSUE_TYPES = {**ISSUE_TYPES, **SOFTWARE_ISSUE_TYPES}
# The fields on a create screen unless a test takes some off (set_create_screen); project and issue type are
# always on it.
CREATE_SCREEN = ("summary", "description", "labels", "priority", "duedate")
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
DEFAULT_PRIORITY = "Medium"
LINK_TYPES = (
    {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
    {"id": "10001", "name": "Duplicate", "inward": "is duplicated by", "outward": "duplicates"},
    {"id": "10002", "name": "Relates", "inward": "relates to", "outward": "relates to"},
)
# (id, name, JQL clause names, schema type) of every field an issue carries.
FIELDS = (
    ("summary", "Summary", ("summary",), "string"),
    ("description", "Description", ("description",), "string"),
    ("labels", "Labels", ("labels",), "array"),
    ("priority", "Priority", ("priority",), "priority"),
    ("status", "Status", ("status",), "status"),
    ("issuetype", "Issue Type", ("issuetype", "type"), "issuetype"),
    ("project", "Project", ("project",), "project"),
    ("duedate", "Due date", ("due", "duedate"), "date"),
    ("issuelinks", "Linked Issues", ("issueLink",), "array"),
    ("comment", "Comment", ("comment",), "comments-page"),
    ("reporter", "Reporter", ("reporter",), "user"),
    ("created", "Created", ("created", "createdDate"), "datetime"),
    ("updated", "Updated", ("updated", "updatedDate"), "datetime"),
)
_EPOCH = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)


class FieldErrors(Exception):
    """Field name -> Jira's message, answered as a 400 `errors` object."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def timestamp(tick: int) -> str:
    """Jira's timestamp format, `tick` seconds after a fixed epoch."""
    moment = _EPOCH + datetime.timedelta(seconds=tick)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Project:
    id: str
    key: str
    name: str
    workflow: dict[str, str]
    status_ids: dict[str, str]  # every status of the workflow, the initial one included
    initial: str = INITIAL_STATUS
    issue_types: dict[str, str] = field(default_factory=lambda: dict(ISSUE_TYPES))  # id -> name
    screens: dict[str, tuple[str, ...]] = field(default_factory=dict)  # issue type id -> create-screen fields
    issue_count: int = 0

    def transitions(self) -> list[tuple[str, str, str]]:
        """(id, name, target status) of every transition, ids as Jira numbers them: 11, 21, 31..."""
        return [(str(10 * number + 11), name, status) for number, (name, status) in enumerate(self.workflow.items())]

    def status_category(self, status: str) -> str:
        if status == self.initial:
            return "new"
        return "done" if status == list(self.workflow.values())[-1] else "indeterminate"


@dataclass
class Issue:
    id: str
    key: str
    project: Project
    issuetype: str
    fields: dict[str, Any]  # the editable ones: summary, description, labels, priority, duedate
    created: str
    updated: str
    status: str
    written_at: float  # time.monotonic() of the last write, for the search index's lag
    comments: list[dict[str, Any]] = field(default_factory=list)
    transitions_done: list[str] = field(default_factory=list)
    remote_links: list[dict[str, Any]] = field(default_factory=list)


def _summary(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("You must specify a summary of the issue.")
    if "\n" in value or "\r" in value:
        raise ValueError("The summary is invalid because it contains newline characters.")
    return value


def _description(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("Operation value must be a string")
    return value


def _labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
        raise ValueError("Operation value must be a list of strings")
    for label in value:
        if not label or any(char.isspace() for char in label):
            raise ValueError(f"The label '{label}' contains spaces which is invalid.")
    return list(dict.fromkeys(value))


def _priority(value: Any) -> str:
    if isinstance(value, dict) and value.get("name") in PRIORITIES.values():
        return str(value["name"])
    if isinstance(value, dict) and str(value.get("id")) in PRIORITIES:
        return PRIORITIES[str(value["id"])]
    raise ValueError(f"Specify a valid priority: {sorted(PRIORITIES.values())}; got {value!r}")


def _duedate(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"Error parsing date string: {value}") from None


EDITABLE = {"summary": _summary, "description": _description, "labels": _labels,
            "priority": _priority, "duedate": _duedate}


def checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The values to store for `fields`, or FieldErrors naming every bad one."""
    values, errors = {}, {}
    for name, value in fields.items():
        check = EDITABLE.get(name)
        if check is None:
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            continue
        try:
            values[name] = check(value)
        except ValueError as problem:
            errors[name] = str(problem)
    if errors:
        raise FieldErrors(errors)
    return values


def comment_body(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldErrors({"comment": "Comment body can not be empty!"})
    return value


def apply_operations(current: dict[str, Any], update: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The fields after the `update` object of an edit or a transition, and the comments it adds.

    Nothing is applied unless every operation is valid, as in Jira.
    """
    fields, errors, comments = dict(current), {}, []
    for name, operations in update.items():
        for operation in operations if isinstance(operations, list) else [operations]:
            single = isinstance(operation, dict) and len(operation) == 1
            verb, value = next(iter(operation.items())) if single else ("", None)
            try:
                if name == "comment" and verb == "add" and isinstance(value, dict):
                    comments.append(comment_body(value.get("body")))
                elif name == "labels" and verb in ("add", "remove"):
                    labels = fields["labels"]
                    edited = [*labels, value] if verb == "add" else [label for label in labels if label != value]
                    fields.update(checked_fields({"labels": edited}))
                elif name in EDITABLE and verb == "set":
                    fields.update(checked_fields({name: value}))
                else:
                    errors[name] = f"Operation '{verb}' on field '{name}' is not supported by this fake Jira."
            except FieldErrors as problem:
                errors.update(problem.errors)
    if errors:
        raise FieldErrors(errors)
    return fields, comments
