"""Slack, through the official slack_sdk `WebClient` (imported only when a connection is made).

The client's own retries are off (`retry_handlers=[]`): it would repeat a post after a dropped connection and
Slack has no idempotency key, so a retry could post twice. The outbox decides instead: every post carries the
idempotency key in its message metadata, and an unknown outcome is looked up in the channel history first.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from ir import sinks
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
    from slack_sdk import WebClient

    from ir.store.records import OutboxItem

EVENT_TYPE = "ir_action"
HISTORY_PAGES = 10  # how far back (x200 messages) an unknown post is looked for
# The bot token's scopes ir uses, and what for (api.slack.com/methods: each method's required scopes)
SCOPES = {"chat:write": "post messages and update the pinned status",
          "channels:manage": "create the incident channel and invite people (public channels)",
          "groups:write": "invite people to private channels",
          "channels:read": "find channels by name", "groups:read": "find private channels by name",
          "channels:history": "look up a post whose outcome is unknown before posting again, and read back the "
                              "published heads (ir verify --witnesses)",
          "pins:write": "pin the status message", "users:read": "find invitees", "users:read.email":
          "find invitees by e-mail address", "usergroups:read": "invite user groups (@handle)",
          "files:write": "upload the closing report"}
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")  # a channel's id, as opposed to its name (which is lowercase)
LIST_LIMIT = 1000  # channels a conversations.list page asks for: Slack's maximum (it pages larger workspaces)
WITNESS_PAGES = 50  # how far back (x200 messages) `ir verify --witnesses` reads the incident channel
POST_INTERVAL = 1.0  # Slack allows about one message per second per channel
# Slack documents these two as "it is possible some aspect of the operation succeeded" (api.slack.com/methods,
# common errors): the outcome is unknown, so the action is looked up before it is sent again, never just resent.
MAYBE_DONE = frozenset({"internal_error", "fatal_error"})
# conversations.invite's errors about one of the users (api.slack.com/methods/conversations.invite): Slack refuses the
# whole list for one of them, so the others are invited one by one
PER_USER = frozenset({"already_in_channel", "cant_invite", "cant_invite_self", "user_not_found", "user_is_restricted",
                      "user_is_ultra_restricted", "ura_max_channels", "no_user"})
_INVITE_FIX = ("fix the entry in [slack] invite in ir.toml or in the playbook (a user group's @handle, an e-mail "
               "address of a Slack account, or a user id), then invite them by hand")


def channel_name(text: str) -> str:
    """Slack's rules: lowercase letters, digits, - and _; at most 80 characters."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower().lstrip("#")).strip("-")
    return name[:80] or "incident"


class SlackSettings(Model):
    """The `[slack]` table of ir.toml; a playbook's `integrations: slack:` overrides it."""

    channel_template: str = "ir-{{ incident.id | lower }}"
    """The incident channel's name: a template over the incident (lowercase, digits, - and _ are kept)."""
    channels: dict[str, str] = {}
    """The channels playbooks post to (`channel:`), each mapped to your workspace's name for it: a post to
    `#security-leadership` goes to the channel given here (`{ security-leadership = "sec-leads" }`); a list names
    channels kept as they are. Nothing else goes to them. `ir integrations check` checks each one."""

    @field_validator("channels", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        """A list names channels kept as they are; names are taken with or without their #."""
        pairs = [(name, name) for name in value] if isinstance(value, list) else \
            value.items() if isinstance(value, dict) else None
        if pairs is None:
            return value
        return {str(k).lstrip("#"): str(v).lstrip("#") for k, v in pairs}
    invite: list[str] = []
    """People (e-mail or user id) and groups (@handle) invited to every incident channel."""
    timeout: float = 10.0
    """Seconds before a request counts as unanswered (its outcome is then checked before any retry)."""


class Slack:
    name = "slack"
    handles = frozenset({"notify"})
    settings_model = SlackSettings
    environment = {"SLACK_BOT_TOKEN": EnvVar("the Slack bot token (`xoxb-...`)"),
                   "IR_SLACK_BASE_URL": EnvVar("optional Slack API base URL (a proxy; the tests' fake server)",
                                               secret=False)}

    def connect(self, settings: SlackSettings, env: Mapping[str, str]) -> SlackConnection:
        if "SLACK_BOT_TOKEN" not in env:
            raise NotConfigured("set SLACK_BOT_TOKEN to a bot token (xoxb-...) to send to Slack")
        from slack_sdk import WebClient

        client = WebClient(token=env["SLACK_BOT_TOKEN"], base_url=env.get("IR_SLACK_BASE_URL",
                                                                           "https://slack.com/api/"),
                           timeout=max(1, round(settings.timeout)), retry_handlers=[])
        return SlackConnection(client, settings)


class SlackConnection:
    def __init__(self, client: WebClient, settings: SlackSettings):
        self.client, self.settings = client, settings
        self._channel_ids: dict[str, str] = {}
        self._member: dict[str, bool] = {}  # channel name -> whether the bot is in it, as the list said
        self._listed: str | None = ""  # where the channel list goes on: "" its start, None its end (all read)
        self._groups: list[dict[str, Any]] | None = None  # the workspace's user groups, read once when needed
        self._users: list[dict[str, Any]] | None = None  # its members, read once when a role holder is a name
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()

    # the Connection protocol -------------------------------------------------------------------------
    def perform(self, item: OutboxItem, target: Target) -> dict[str, Any]:
        with _errors():
            if item.action == "notify.create_channel":
                return self._create_channel(item)
            if item.action == "notify.status":
                return self._status(item, target)
            if item.action == "notify.post":
                return self._post(item, target, self._destination(item, target), self._text(item),
                                  self._thread(item, target))
            if item.action == "notify.upload":
                return self._upload(item, target, self._channel(item, target))
        raise Refused(f"slack cannot do {item.action}")

    def reconcile(self, item: OutboxItem, target: Target) -> dict[str, Any] | None:
        with _errors():
            if item.action == "notify.create_channel":
                return self._create_channel(item)  # by name: finding it again is the same call
            if item.action == "notify.status" and "notify.status" in target.refs:
                return None  # chat.update of the pinned message: doing it again is harmless
            if item.action == "notify.upload":
                return self._find_file(self._channel(item, target), item.payload["filename"])
            return self._find(self._channel(item, target), item.key)

    def check(self) -> list[Finding]:
        out = []
        try:
            with _errors():
                who = self.client.auth_test()
            out.append(Finding(True, f"slack: authenticated as {who['user']} in {who['team']}"))
        except (Refused, Unknown) as exc:
            return [Finding(False, f"slack: auth.test failed: {exc}",
                            "check SLACK_BOT_TOKEN (and IR_SLACK_BASE_URL if you use a proxy)")]
        granted = (who.headers or {}).get("x-oauth-scopes") or (who.headers or {}).get("X-OAuth-Scopes")
        if granted is not None:  # Slack reports the token's scopes in a header of every answer
            has = {scope.strip() for scope in str(granted).split(",")}
            missing = [scope for scope in SCOPES if scope not in has]
            out += [Finding(False, f"slack: the bot lacks the {scope} scope, which ir uses to {SCOPES[scope]}",
                            f"add {scope} to the app's bot token scopes (OAuth & Permissions) and reinstall the app")
                    for scope in missing]
            if not missing:
                out.append(Finding(True, f"slack: the token has every scope ir uses ({', '.join(SCOPES)})"))
        for name in dict.fromkeys(self.settings.channels.values()):
            try:
                with _errors():
                    self._channel_id(name)
            except (Refused, Unknown) as exc:
                out.append(Finding(False, f"slack: channel #{name}: {exc}",
                                   f"create #{name} and invite the bot, or map the name to your channel in "
                                   "[slack] channels of ir.toml"))
                continue
            member = self._member.get(name, True)
            out.append(Finding(member, f"slack: channel #{name} found" + ("" if member else
                               ", but the bot is not in it: its posts there would be refused (not_in_channel)"),
                               None if member else f"invite the bot to #{name} (/invite @{who['user']})"))
        for entry in self.settings.invite:
            if "@" not in entry:
                out.append(Finding(True, f"slack: invite {entry}: a user id, used as it is (not looked up)"))
                continue
            try:
                with _errors():
                    found = self._person(entry)
                out.append(Finding(True, f"slack: invite {entry} found" + (f" ({len(found)} people)"
                                                                         if entry.startswith("@") else "")))
            except (Refused, Unknown) as exc:
                out.append(Finding(False, f"slack: invite {entry}: {exc}",
                                   "create it in Slack, or fix the entry where it is named ([slack] invite in "
                                   "ir.toml, a playbook's invite list); the bot needs the usergroups:read and "
                                   "users:read.email scopes to find groups and addresses"))
        return out

    def witnesses(self, target: Target) -> list[Witness]:
        """The heads in the bot's own messages of the incident channel (a thread's replies are not read)."""
        if not target.channel:
            return []
        found, cursor = [], None
        with _errors():
            me = self.client.auth_test()["user_id"]
            for _ in range(WITNESS_PAGES):
                page = self.client.conversations_history(channel=target.channel, limit=200, cursor=cursor)
                messages: list[dict[str, Any]] = page.get("messages", [])
                for message in messages:
                    if message.get("user") == me:
                        found += witnesses_in(json.dumps([message.get("text"), message.get("blocks")]),
                                              f"Slack message {message.get('ts')}")
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        return found

    def person(self, entry: str) -> tuple[str, str] | None:
        """The Slack user a role holder's text names (id, how Slack names them): a user id, an e-mail address, an
        @handle, or a name (real or display; the workspace's members read once). None for the @handle of a user
        group (kept as typed, invited as the group); a ValueError, saying why, for text naming nobody or several."""
        text = entry.strip()
        if re.fullmatch(r"[UW][A-Z0-9]{6,}", text):
            return self._user(lambda: self.client.users_info(user=text)["user"], f"no Slack user has the id {text}")
        if "@" in text[1:]:
            return self._user(lambda: self.client.users_lookupByEmail(email=text)["user"],
                              f"no Slack account has the address {text}")
        handle, wanted = text.startswith("@"), text.lstrip("@").casefold()

        def names(user: dict[str, Any]) -> set[str]:
            found = [user.get("name")] if handle else [user.get("real_name"), user.get("profile", {}).get(
                "display_name")]
            return {str(name).casefold() for name in found if name}

        with _errors():
            matches = [user for user in self._members() if wanted in names(user)]
        if len(matches) == 1:
            return matches[0]["id"], _shown(matches[0])
        if handle and not matches and self._group(text) is not None:
            return None
        if matches:
            raise ValueError(f"{len(matches)} Slack users are named {text}: give an e-mail address or an @handle")
        raise ValueError(f"no Slack user is named {text}: give their e-mail address, @handle or user id")

    def _user(self, lookup: Any, missing: str) -> tuple[str, str]:
        try:
            with _errors():
                user = lookup()
        except Refused as exc:
            if str(exc) in ("users_not_found", "user_not_found"):
                raise ValueError(f"{missing}: give their e-mail address, @handle or user id") from None
            raise
        return user["id"], _shown(user)

    def _members(self) -> list[dict[str, Any]]:
        if self._users is None:
            users: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = self.client.users_list(limit=LIST_LIMIT, cursor=cursor)
                members: list[dict[str, Any]] = page.get("members", [])
                users += [u for u in members if not u.get("deleted") and not u.get("is_bot")]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
            self._users = users
        return self._users

    def _group(self, handle: str) -> dict[str, Any] | None:
        with _errors():
            if self._groups is None:
                self._groups = self.client.usergroups_list(include_users=True)["usergroups"]
        return next((g for g in self._groups if g["handle"] == handle.lstrip("@")), None)

    # actions ------------------------------------------------------------------------------------------
    def _create_channel(self, item: OutboxItem) -> dict[str, Any]:

        wanted = channel_name(item.payload["channel_name"])
        channel, name = self._new_channel(wanted)
        users, warnings = self._invitees([*self.settings.invite, *item.payload.get("invite", [])])
        if name != wanted:
            warnings.insert(0, f"#{wanted} is the name of an archived channel (Slack keeps it), so the incident "
                               f"channel is #{name}")
        warnings += self._invite(channel, users)
        team_url = self.client.auth_test().get("url", "")
        ref = {"channel": channel, "name": name, "url": f"{team_url}archives/{channel}" if team_url else None}
        return ref | ({"warnings": warnings} if warnings else {})

    def _new_channel(self, wanted: str) -> tuple[str, str]:
        """Create the channel (id, name); a name already taken by an active channel is that channel (a create
        done before, whose answer was lost); one kept by an archived channel is passed over for -2, -3, ..."""
        from slack_sdk.errors import SlackApiError

        for name in [wanted, *(f"{wanted[:77]}-{n}" for n in range(2, 10))]:
            try:
                made = self._channel_ids[name] = self.client.conversations_create(name=name)["channel"]["id"]
                return made, name
            except SlackApiError as exc:
                if exc.response.get("error") != "name_taken":
                    raise
            try:
                return self._channel_id(name), name
            except Refused:  # not among the active channels: an archived one holds the name
                continue
        raise Refused(f"name_taken: #{wanted} and #{wanted}-2 to -9 are all held by archived channels; set "
                      "[slack] channel_template in ir.toml")

    def _invitees(self, entries: list[str]) -> tuple[list[str], list[str]]:
        """The user ids of the invite entries, and a warning with the fix for each entry that names nobody: the
        channel is made and used all the same."""
        users, warnings = [], []
        for entry in dict.fromkeys(entries):
            try:
                with _errors():
                    users += self._person(entry)
            except Refused as exc:
                warnings.append(f"{entry} was not invited ({exc}): {_INVITE_FIX}")
        return list(dict.fromkeys(users)), warnings

    def _invite(self, channel: str, users: list[str]) -> list[str]:
        """Invite the users; Slack refuses the whole list for one bad id, so then each one on its own. A warning for
        each one who could not be invited (already there is fine)."""
        from slack_sdk.errors import SlackApiError

        if not users:
            return []
        try:
            self.client.conversations_invite(channel=channel, users=",".join(users))
            return []
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in PER_USER:
                raise
            if len(users) == 1:
                return [] if error == "already_in_channel" else [
                    f"user {users[0]} was not invited ({error}): {_INVITE_FIX}"]
        return [warning for user in users for warning in self._invite(channel, [user])]
    def _status(self, item: OutboxItem, target: Target) -> dict[str, Any]:
        channel = self._channel(item, target)
        text = self._status_text(item, target)
        pinned = target.refs.get("notify.status")
        if pinned and pinned.get("channel") == channel:
            self.client.chat_update(channel=channel, ts=pinned["ts"], text=text, blocks=_blocks(text, item, target))
            return {"channel": channel, "ts": pinned["ts"], "updated": True}
        ref = self._post(item, target, channel, text, None)
        try:  # the post is the action; the pin is a courtesy, never a reason to post again
            with _errors():
                self.client.pins_add(channel=channel, timestamp=ref["ts"])
        except (Refused, Unknown) as exc:
            ref["warnings"] = [f"the status message was not pinned ({exc}): give the bot the pins:write scope"]
        return ref

    def _post(self, item: OutboxItem, target: Target, channel: str, text: str, thread: str | None) -> dict[str, Any]:
        """Post to a channel id, or a channel's name (chat.postMessage takes either): its id comes back and is kept,
        so a named channel is found without listing the workspace's channels."""
        named = str(item.payload.get("channel") or "").lstrip("#")
        self._pace(channel_name(named) if named and not CHANNEL_ID.fullmatch(named) else channel)  # by id or name

        reply = self.client.chat_postMessage(
            channel=channel, text=text, blocks=_blocks(text, item, target), thread_ts=thread, unfurl_links=False,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": item.key}})
        ref = {"channel": reply["channel"], "ts": reply["ts"]}
        if named and not CHANNEL_ID.fullmatch(named):
            name = channel_name(named)
            self._channel_ids[name] = reply["channel"]
            ref["name"] = name
        return ref

    def _find(self, channel: str, key: str) -> dict[str, Any] | None:
        cursor = None
        for _ in range(HISTORY_PAGES):
            page = self.client.conversations_history(channel=channel, include_all_metadata=True, limit=200,
                                                     cursor=cursor)
            messages: list[dict[str, Any]] = page.get("messages", [])
            for message in messages:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == EVENT_TYPE and metadata.get("event_payload", {}).get("key") == key:
                    return {"channel": channel, "ts": message["ts"], "found": True}
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    def _upload(self, item: OutboxItem, target: Target, channel: str) -> dict[str, Any]:
        from pathlib import Path

        content = Path(item.payload["path"]).read_bytes()
        title = _exercise(item, item.payload["title"])
        reply = self.client.files_upload_v2(channel=channel, content=content, filename=item.payload["filename"],
                                            title=title, initial_comment=" · ".join(filter(None, [
                                                sinks.slack(title), witness(target.head)])))
        return {"channel": channel, "file": reply["files"][0]["id"] if reply.get("files") else reply.get("file")}

    def _find_file(self, channel: str, filename: str) -> dict[str, Any] | None:
        page = self.client.conversations_history(channel=channel, limit=200)
        messages: list[dict[str, Any]] = page.get("messages", [])
        for message in messages:
            for shared in message.get("files", []):
                if shared.get("name") == filename:
                    return {"channel": channel, "file": shared["id"], "found": True}
        return None

    # helpers ------------------------------------------------------------------------------------------
    def _destination(self, item: OutboxItem, target: Target) -> str:
        """Where a post goes: the id of a channel found before, else its name, else the incident channel."""
        named = str(item.payload.get("channel") or "").lstrip("#")
        if named and not CHANNEL_ID.fullmatch(named):
            name = channel_name(named)
            return target.channels.get(name) or self._channel_ids.get(name) or name
        return self._channel(item, target)

    def _channel(self, item: OutboxItem, target: Target) -> str:
        named = str(item.payload.get("channel") or "").lstrip("#")
        if named:
            return named if CHANNEL_ID.fullmatch(named) else target.channels.get(channel_name(named)) or \
                self._channel_id(channel_name(named))
        if not target.channel:
            raise Refused("the incident channel does not exist yet (its create_channel step has not succeeded)")
        return target.channel

    def _channel_id(self, name: str) -> str:
        """A channel's id by its name, from the workspace's channel list: read once, a page at a time, going on
        where it stopped (a rate limit of its tier stops it in a large workspace), as far as the name."""
        name = name.lstrip("#")
        if CHANNEL_ID.fullmatch(name):
            return name
        while name not in self._channel_ids and self._listed is not None:
            page = self.client.conversations_list(types="public_channel,private_channel", limit=LIST_LIMIT,
                                                  exclude_archived=True, cursor=self._listed or None)
            for channel in page["channels"]:
                self._channel_ids.setdefault(channel["name"], channel["id"])
                self._member.setdefault(channel["name"], bool(channel.get("is_member", True)))
            self._listed = (page.get("response_metadata") or {}).get("next_cursor") or None
        if name not in self._channel_ids:
            raise Refused(f"channel_not_found: #{name}")
        return self._channel_ids[name]

    def _person(self, entry: str) -> list[str]:
        """The user ids an invite entry names: `@handle` a user group's members, an e-mail address its user, else
        a user id as it is."""
        if entry.startswith("@"):
            found = self._group(entry)
            if found is None:
                raise Refused(f"no Slack user group {entry}")
            return list(found.get("users", []))
        if "@" in entry:
            return [self.client.users_lookupByEmail(email=entry)["user"]["id"]]
        return [entry]

    def _pace(self, channel: str) -> None:
        with self._lock:
            wait = self._last_post.get(channel, 0.0) + POST_INTERVAL - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_post[channel] = time.monotonic()

    @staticmethod
    def _text(item: OutboxItem) -> str:
        return _exercise(item, item.payload["message"])

    @staticmethod
    def _thread(item: OutboxItem, target: Target) -> str | None:
        pinned = target.refs.get("notify.status")
        return pinned["ts"] if item.payload.get("thread") and pinned else None

    @staticmethod
    def _status_text(item: OutboxItem, target: Target) -> str:
        incident = item.payload["incident"]
        ticket = target.refs.get("ticket.create")
        lines = [f"*{sinks.slack(incident['title'])}* ({incident['id']})",
                 f"Severity: *{incident['severity']}*  ·  Phase: *{item.payload.get('phase', '?')}*  ·  "
                 f"Commander: {sinks.slack_person(incident.get('commander') or 'unassigned')}  ·  Ticket: "
                 + (f"<{ticket['url']}|{ticket['key']}>" if ticket else "none yet")]
        if item.payload.get("message"):
            lines.append(item.payload["message"])
        return _exercise(item, "\n".join(lines))


def _shown(user: dict[str, Any]) -> str:
    return f"{user.get('real_name') or user.get('name')} (@{user.get('name')}, {user['id']})"


def _exercise(item: OutboxItem, text: str) -> str:
    return f"[EXERCISE] {text}" if item.payload["incident"].get("exercise") else text


def _blocks(text: str, item: OutboxItem, target: Target) -> list[dict[str, Any]]:
    """The message, and a context line: the incident, the step, and the timeline's head as it is sent."""
    context = [item.payload["incident"]["id"], sinks.slack(item.payload.get("step_title", "")), witness(target.head)]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(filter(None, context))}]}]


@contextmanager
def _errors() -> Iterator[None]:
    """Slack's answers as the outbox's outcomes: a refusal (not done), or an unknown outcome."""
    from http.client import HTTPException  # here, not at the top: with ssl, 5 ms of every `ir validate` and `ir list`

    from slack_sdk.errors import SlackApiError, SlackRequestError

    try:
        yield
    except SlackApiError as exc:
        status = exc.response.status_code
        if status == 429:
            header = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            raise Refused("rate limited by Slack", retry_after=retry_after(header)) from None
        if status >= 500:
            raise Unknown(f"Slack answered HTTP {status}") from None
        error = str(exc.response.get("error") or f"HTTP {status}")
        if error in MAYBE_DONE:
            raise Unknown(f"Slack answered {error}") from None
        raise Refused(error) from None
    except (OSError, HTTPException, SlackRequestError) as exc:  # timeout, connection dropped
        raise Unknown(f"no answer from Slack ({type(exc).__name__})") from None


integration: Integration[SlackSettings] = Slack()
