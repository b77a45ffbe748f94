"""Slack's objects as the fake keeps them, and the checks Slack makes on method arguments."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

EPOCH = 1_700_000_000  # seconds of the first message ts
MAX_TEXT = 40_000
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")


class SlackError(Exception):
    """Ends a method with `{"ok": false, "error": error, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    creator: str
    members: set[str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    is_archived: bool = False

    def render(self, viewer: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": False,
            "created": EPOCH,
            "creator": self.creator,
            "is_member": viewer in self.members,
            "num_members": len(self.members),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def message(self, ts: str) -> dict[str, Any]:
        for message in self.messages:
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")


def flag(args: dict[str, Any], name: str) -> bool:
    return str(args.get(name, "")).lower() in ("1", "true")


def number(args: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(args.get(name) or default)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def csv_list(value: Any) -> list[str]:
    parts = value if isinstance(value, list) else str(value or "").split(",")
    return [part.strip() for part in parts if part.strip()]


def json_arg(value: Any, error: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise SlackError(error) from None


def ts_key(ts: str) -> int:
    """A message timestamp ("1700000000.000100") as an integer number of microseconds."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")[:6])


def ts_bound(args: dict[str, Any], name: str) -> int | None:
    try:
        return ts_key(str(args[name])) if args.get(name) else None
    except ValueError:
        raise SlackError(f"invalid_ts_{name}") from None


def check_channel_name(name: str) -> None:
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > 80:
        raise SlackError("invalid_name_maxlength")
    if not _CHANNEL_NAME.fullmatch(name):
        raise SlackError("invalid_name_specials")
    if not any(char.isalnum() for char in name):
        raise SlackError("invalid_name_punctuation")


def message_content(args: dict[str, Any]) -> dict[str, Any]:
    """The text, blocks and metadata of a posted or edited message, checked as Slack does."""
    checked: dict[str, Any] = {}
    text = args.get("text")
    if text:
        if len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        checked["text"] = str(text)
    if args.get("blocks"):
        blocks = json_arg(args["blocks"], "invalid_blocks_format")
        if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
            raise SlackError("invalid_blocks")
        checked["blocks"] = blocks
    if not checked:
        raise SlackError("no_text")
    if args.get("metadata"):
        metadata = json_arg(args["metadata"], "invalid_metadata_format")
        if not isinstance(metadata, dict):
            raise SlackError("invalid_metadata_format")
        if not metadata.get("event_type") or not isinstance(metadata.get("event_payload"), dict):
            raise SlackError("invalid_metadata_schema")
        checked["metadata"] = {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}
    return checked


def render_message(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    rendered = copy.deepcopy(message)
    if not with_metadata:
        rendered.pop("metadata", None)
    return rendered
