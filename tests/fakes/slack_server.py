"""A stateful fake of the Slack Web API, for the real `slack_sdk.WebClient`.

    with SlackServer() as slack:
        client = WebClient(token=slack.token, base_url=slack.url, retry_handlers=[])

Every method answers HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": "..."}`, as Slack
does, with the token's scopes in the `X-OAuth-Scopes` header. Opt-in realism (docs/services.md says what each
models and where Slack documents it): `scopes=` for a token without some scopes, `plan="free"` for a workspace
without user groups, `rate_limits=` for a method's tier, `archive_channel()` and `add_channels()` for seeding. The request log names Web API calls by their method ("chat.postMessage") and the raw POST of
a file's bytes to its upload URL by UPLOAD_API.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from .httpbase import FakeServer, RecordedRequest, Reply, json_reply, paginate
from .ratewindow import RateWindow
from .slack_model import (
    EPOCH,
    Channel,
    SlackError,
    check_channel_name,
    csv_list,
    flag,
    json_arg,
    message_content,
    number,
    render_message,
    ts_bound,
    ts_key,
)
from .slack_scopes import IR_SCOPES, needed

UPLOAD_API = "files.upload"  # the POST of a file's bytes to the upload_url, not a Web API method
_FAILURES = {"ratelimit": (429, "ratelimited"), "server_error": (500, "internal_error"),
             "error": (200, "fatal_error")}
PLANS = ("free", "pro", "business+", "enterprise")
MAX_LIST_LIMIT = 1000  # conversations.list: "Must be an integer no larger than 1000"


class SlackServer(FakeServer):
    """Slack with one workspace, one bot (the token's owner), and the channels, users, user groups,
    messages, pins and files that tests seed or the client creates."""

    raw_body_apis = frozenset({UPLOAD_API})
    team_id = "T0IR00001"
    bot_user_id = "U0BOT0001"
    bot_id = "B0BOT0001"
    admin_user_id = "U0ADMIN01"  # creator of the channels tests seed with add_channel

    def __init__(self, token: str = "xoxb-test", *, scopes: tuple[str, ...] | None = None, plan: str = "pro",
                 rate_limits: dict[str, tuple[int, float]] | None = None) -> None:
        """`scopes`: the token's OAuth scopes (default: every scope ir asks for); `plan`: the workspace's plan
        ("free" has no user groups); `rate_limits`: method -> (calls, window seconds) beyond which it answers 429."""
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}, not {plan!r}")
        super().__init__()
        self.token, self.plan = token, plan
        self.scopes = tuple(IR_SCOPES if scopes is None else scopes)
        self._windows = {method: RateWindow(calls, window) for method, (calls, window) in (rate_limits or {}).items()}
        self._names: set[str] = set()
        self._serial = itertools.count(1)
        self._clock = itertools.count(1)
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: list[dict[str, Any]] = []
        self._files: dict[str, dict[str, Any]] = {}
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "conversations.create": self._conversations_create,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "pins.add": self._pins_add,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.list": self._users_list,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    @property
    def url(self) -> str:
        """The Web API base, for `WebClient(base_url=...)`."""
        return f"{self.root_url}/api/"

    # -- seeding and inspection by tests ------------------------------------------------------

    def add_user(self, name: str, email: str, *, handle: str | None = None, deleted: bool = False,
                 is_bot: bool = False) -> str:
        """A member: `name` is their real and display name, `handle` their @name (`name` unless given)."""
        with self._lock:
            user_id = self._new_id("U")
            profile = {"email": email, "real_name": name, "display_name": name}
            self._users[user_id] = {"id": user_id, "team_id": self.team_id, "name": handle or name, "real_name": name,
                                    "deleted": deleted, "is_bot": is_bot, "profile": profile}
            return user_id

    def add_channel(self, name: str, *, is_private: bool = False, members: tuple[str, ...] = (),
                    bot_is_member: bool = True) -> str:
        """A channel created by someone else; the bot is in it only if `bot_is_member`."""
        with self._lock:
            everyone = set(members) | ({self.bot_user_id} if bot_is_member else set())
            return self._new_channel(name, is_private, creator=self.admin_user_id, members=everyone).id

    def add_usergroup(self, handle: str, name: str, users: tuple[str, ...] = ()) -> str:
        with self._lock:
            group_id = self._new_id("S")
            self._usergroups.append({"id": group_id, "team_id": self.team_id, "handle": handle, "name": name,
                                     "description": "", "is_usergroup": True, "users": list(users)})
            return group_id

    @property
    def channels(self) -> dict[str, dict[str, Any]]:
        """Channel name -> the channel as the bot sees it, plus its sorted `members`."""
        with self._lock:
            return {channel.name: {**channel.render(self.bot_user_id), "members": sorted(channel.members)}
                    for channel in self._channels.values()}

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message of a channel (name or id) in posting order, replies and metadata included."""
        with self._lock:
            return copy.deepcopy(self._known_channel(channel).messages)

    def pins(self, channel: str) -> list[str]:
        """The ts of the pinned messages of a channel (name or id), in pinning order."""
        with self._lock:
            return list(self._known_channel(channel).pins)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """File id -> name, title, length, content (bytes, None until uploaded), channels."""
        with self._lock:
            return copy.deepcopy(self._files)

    def _known_channel(self, name_or_id: str) -> Channel:
        for channel in self._channels.values():
            if name_or_id in (channel.id, channel.name):
                return channel
        raise KeyError(f"no channel {name_or_id!r}; channels: {sorted(c.name for c in self._channels.values())}")

    def add_messages(self, name_or_id: str, texts: list[str], *, user: str = admin_user_id) -> None:
        """Messages posted in a channel by someone else (the admin unless `user` says who), oldest first."""
        with self._lock:
            channel = self._known_channel(name_or_id)
            channel.messages += [{"type": "message", "user": user, "team": self.team_id, "text": text,
                                  "ts": self._new_ts()} for text in texts]

    def archive_channel(self, name_or_id: str) -> None:
        """Archive a channel, as a workspace member would: it keeps its name and members."""
        with self._lock:
            self._known_channel(name_or_id).is_archived = True

    def add_channels(self, prefix: str, count: int, *, is_private: bool = False,
                     bot_is_member: bool = False) -> list[str]:
        """`count` channels named prefix-00001, prefix-00002...: a large workspace, seeded fast."""
        with self._lock:
            members = {self.bot_user_id} if bot_is_member else set()
            return [self._new_channel(f"{prefix}-{number:05d}", is_private, creator=self.admin_user_id,
                                      members=set(members)).id for number in range(1, count + 1)]

    # -- FakeServer hooks ---------------------------------------------------------------------

    def api_for(self, method: str, path: str) -> str:
        if path.startswith("/api/"):
            return path.removeprefix("/api/")
        if path.startswith("/upload/v1/"):
            return UPLOAD_API
        return path

    def handle(self, request: RecordedRequest) -> Reply:
        if request.api == UPLOAD_API:
            return self._receive_upload(request)
        method = self._methods.get(request.api)
        if method is None:
            return json_reply(404, {"ok": False, "error": "unknown_method"})
        try:
            self._authenticate(request)
        except SlackError as refusal:
            return json_reply(200, {"ok": False, "error": refusal.error})
        window = self._windows.get(request.api)
        wait = window.admit() if window is not None else None
        if wait is not None:
            reply = json_reply(429, {"ok": False, "error": "ratelimited"})
            reply.headers["Retry-After"] = str(wait)
        else:
            try:
                self._check_scopes(request)
                reply = json_reply(200, {"ok": True, **method(request.args)})
            except SlackError as refusal:
                reply = json_reply(200, {"ok": False, "error": refusal.error, **refusal.extra})
        reply.headers["x-oauth-scopes"] = ",".join(self.scopes)  # lower case, as slack.com sends it
        return reply

    def failure_reply(self, mode: str, error: str | None, status: int | None) -> Reply:
        usual_status, usual_error = _FAILURES[mode]
        return json_reply(status or usual_status, {"ok": False, "error": error or usual_error})

    # -- plumbing -----------------------------------------------------------------------------

    def _authenticate(self, request: RecordedRequest) -> None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        token = credential if scheme.lower() == "bearer" else request.args.get("token")
        if not token:
            raise SlackError("not_authed")
        if token != self.token:
            raise SlackError("invalid_auth")

    def _check_scopes(self, request: RecordedRequest) -> None:
        args = request.args
        if request.api == "conversations.create":
            private: bool | None = flag(args, "is_private")
        else:
            channel = self._channels.get(str(args.get("channel", "")))
            private = None if channel is None else channel.is_private
        for scope in needed(request.api, private, csv_list(args.get("types") or "public_channel")):
            if scope not in self.scopes:
                raise SlackError("missing_scope", needed=scope, provided=",".join(self.scopes))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial):08d}"

    def _new_ts(self) -> str:
        micros = EPOCH * 1_000_000 + next(self._clock) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_channel(self, name: str, is_private: bool, creator: str, members: set[str]) -> Channel:
        check_channel_name(name)
        if name in self._names:  # archived channels keep their names
            raise SlackError("name_taken")
        channel = Channel(self._new_id("C"), name, is_private, creator, members)
        self._channels[channel.id] = channel
        self._names.add(name)
        return channel

    def _channel(self, channel_id: Any) -> Channel:
        """The channel an argument names by id, as the bot may see it."""
        channel = self._channels.get(str(channel_id))
        if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
            raise SlackError("channel_not_found")
        return channel

    def _joined_channel(self, channel_id: Any) -> Channel:
        channel = self._channel(channel_id)
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _writable_channel(self, channel_id: Any) -> Channel:
        """A channel the bot may change: an archived one refuses with is_archived."""
        channel = self._channel(channel_id)
        if channel.is_archived:
            raise SlackError("is_archived")
        return self._joined_channel(channel.id)

    def _post(self, channel: Channel, body: dict[str, Any], thread_ts: str | None) -> dict[str, Any]:
        message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "team": self.team_id,
                   "text": "", **body, "ts": self._new_ts()}
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = next((m for m in channel.messages if m["ts"] == thread_ts), None)
            if parent is not None:
                parent.update(thread_ts=thread_ts, reply_count=parent.get("reply_count", 0) + 1,
                              latest_reply=message["ts"])
        channel.messages.append(message)
        return message

    def _page_of_messages(self, messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        """Filter by oldest/latest (exclusive unless `inclusive`), then page by limit/cursor."""
        oldest, latest = ts_bound(args, "oldest"), ts_bound(args, "latest")
        inclusive = flag(args, "inclusive")

        def in_window(message: dict[str, Any]) -> bool:
            key = ts_key(message["ts"])
            after = oldest is None or (key >= oldest if inclusive else key > oldest)
            before = latest is None or (key <= latest if inclusive else key < latest)
            return after and before

        try:
            page, cursor = paginate([m for m in messages if in_window(m)], args.get("cursor"),
                                    number(args, "limit", 100))
        except ValueError:
            raise SlackError("invalid_cursor") from None
        metadata = flag(args, "include_all_metadata")
        return {"messages": [render_message(message, metadata) for message in page], "has_more": cursor is not None,
                "response_metadata": {"next_cursor": cursor or ""}}

    # -- Web API methods ----------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://ir-test.slack.com/", "team": "IR Test", "user": "ir-bot", "team_id": self.team_id,
                "user_id": self.bot_user_id, "bot_id": self.bot_id, "is_enterprise_install": False}

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._new_channel(str(args.get("name", "")), flag(args, "is_private"), creator=self.bot_user_id,
                                    members={self.bot_user_id})
        return {"channel": channel.render(self.bot_user_id)}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(csv_list(args.get("types") or "public_channel"))
        limit = number(args, "limit", 100)
        if limit > MAX_LIST_LIMIT:
            raise SlackError("invalid_limit")
        visible = [
            channel for channel in self._channels.values()
            if ("private_channel" if channel.is_private else "public_channel") in types
            and (not channel.is_private or self.bot_user_id in channel.members)
        ]
        try:
            page, cursor = paginate(visible, args.get("cursor"), limit)
        except ValueError:
            raise SlackError("invalid_cursor") from None
        if flag(args, "exclude_archived"):  # applied to the page, as Slack does: a page may come back short
            page = [channel for channel in page if not channel.is_archived]
        return {"channels": [channel.render(self.bot_user_id) for channel in page],
                "response_metadata": {"next_cursor": cursor or ""}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(args.get("channel")).render(self.bot_user_id)}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        """All or nothing, unless `force`: then the valid users are invited and the others listed in `errors`."""
        channel = self._writable_channel(args.get("channel"))
        users = csv_list(args.get("users"))
        if not users:
            raise SlackError("no_user")
        refused = []
        for user in users:
            if user == self.bot_user_id:
                error = "cant_invite_self"
            elif user not in self._users:
                error = "user_not_found"
            elif user in channel.members:
                error = "already_in_channel"
            else:
                continue
            refused.append({"user": user, "ok": False, "error": error})
        if refused and not (flag(args, "force") and len(refused) < len(users)):
            raise SlackError(refused[0]["error"], errors=refused)
        channel.members.update(user for user in users if user not in {r["user"] for r in refused})
        return {"channel": channel.render(self.bot_user_id), **({"errors": refused} if refused else {})}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id in channel.members:
            return {"channel": channel.render(self.bot_user_id), "warning": "already_in_channel",
                    "response_metadata": {"warnings": ["already_in_channel"]}}
        channel.members.add(self.bot_user_id)
        return {"channel": channel.render(self.bot_user_id)}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._joined_channel(args.get("channel"))
        top_level = [m for m in channel.messages if m.get("thread_ts", m["ts"]) == m["ts"]]
        return self._page_of_messages(top_level[::-1], args)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._joined_channel(args.get("channel"))
        ts = args.get("ts")
        thread = [m for m in channel.messages if ts in (m["ts"], m.get("thread_ts"))]
        if not thread or thread[0].get("thread_ts", ts) != ts:
            raise SlackError("thread_not_found")
        return self._page_of_messages(thread, args)

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("channel", "")).removeprefix("#")
        by_name = next((c.id for c in self._channels.values() if c.name == name and not c.is_private), name)
        channel = self._writable_channel(by_name)
        message = self._post(channel, message_content(args), args.get("thread_ts"))
        return {"channel": channel.id, "ts": message["ts"], "message": render_message(message, with_metadata=True)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable_channel(args.get("channel"))
        message = channel.message(str(args.get("ts")))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        message.update(message_content(args), edited={"user": self.bot_user_id, "ts": self._new_ts()})
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"],
                "message": render_message(message, with_metadata=True)}

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable_channel(args.get("channel"))
        if not args.get("timestamp"):
            raise SlackError("no_item_specified")
        ts = channel.message(str(args["timestamp"]))["ts"]
        if ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(ts)
        return {}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for user in self._users.values():
            if user["profile"]["email"].lower() == email:
                return {"user": copy.deepcopy(user)}
        raise SlackError("users_not_found")

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """The workspace's members, a page at a time (limit up to 1000, cursor), as users.list answers."""
        limit = number(args, "limit", 100)
        if limit > MAX_LIST_LIMIT:
            raise SlackError("invalid_limit")
        try:
            page, cursor = paginate(list(self._users.values()), args.get("cursor"), limit)
        except ValueError:
            raise SlackError("invalid_cursor") from None
        return {"members": copy.deepcopy(page), "response_metadata": {"next_cursor": cursor or ""}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.plan == "free":
            raise SlackError("plan_upgrade_required")
        with_users = flag(args, "include_users")
        return {"usergroups": [
            {**group, "user_count": len(group["users"]), "users": list(group["users"]) if with_users else []}
            for group in self._usergroups
        ]}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename"), number(args, "length", 0)
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = {"id": file_id, "name": filename, "title": filename, "length": length,
                                "content": None, "channels": []}
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _receive_upload(self, request: RecordedRequest) -> Reply:
        file = self._files.get(request.path.rsplit("/", 1)[-1])
        if request.method != "POST" or file is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        file["content"] = request.body
        return Reply(200, f"OK - {len(request.body)}".encode(), {"Content-Type": "text/plain"})

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        wanted = json_arg(args.get("files"), "invalid_arguments")
        if not isinstance(wanted, list) or not wanted:
            raise SlackError("invalid_arguments")
        shared_in = csv_list(args.get("channel_id") or args.get("channels"))
        channels = [self._writable_channel(channel_id) for channel_id in shared_in]
        files = []
        for entry in wanted:
            file = self._files.get(str(entry.get("id")) if isinstance(entry, dict) else "")
            if file is None or file["content"] is None:
                raise SlackError("file_not_found")
            file["title"] = entry.get("title") or file["name"]
            files.append(file)
        shared = [{"id": file["id"], "name": file["name"], "title": file["title"]} for file in files]
        for channel in channels:
            self._post(channel, {"text": args.get("initial_comment") or "", "files": shared}, args.get("thread_ts"))
            for file in files:
                file["channels"].append(channel.id)
        return {"files": [{**summary, "size": len(file["content"]), "channels": list(file["channels"])}
                          for summary, file in zip(shared, files)]}
