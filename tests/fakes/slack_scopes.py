"""The OAuth scopes a bot token needs for each Web API method the fake serves (docs/services.md, "OAuth scopes").

Where Slack's method reference accepts one scope per conversation type, the fake asks for the one that goes with
the channel at hand: the public-channel scope for a public channel, the private-channel one for a private channel.
"""

from __future__ import annotations

# Every scope ir's Slack integration asks for: what a SlackServer grants unless told otherwise.
IR_SCOPES = ("channels:history", "channels:join", "channels:manage", "channels:read", "chat:write", "files:write",
             "groups:history", "groups:read", "groups:write", "pins:write", "usergroups:read", "users:read",
             "users:read.email")

# method -> (scope for a public channel, scope for a private channel)
_BY_CHANNEL_KIND = {
    "conversations.create": ("channels:manage", "groups:write"),
    "conversations.invite": ("channels:manage", "groups:write"),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
}
# method -> every scope it needs, in the order the fake checks them
_FIXED = {
    "auth.test": (),
    "conversations.join": ("channels:join",),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "pins.add": ("pins:write",),
    "users.lookupByEmail": ("users:read.email", "users:read"),
    "users.list": ("users:read",),
    "users.info": ("users:read",),
    "usergroups.list": ("usergroups:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}
_LIST_TYPES = {"public_channel": "channels:read", "private_channel": "groups:read"}


def needed(method: str, private: bool | None, list_types: list[str]) -> tuple[str, ...]:
    """The scopes `method` needs; `private` is the kind of the channel it names (None: no such channel, the method
    then fails on the channel, not on a scope), `list_types` the types conversations.list asked for."""
    if method == "conversations.list":
        return tuple(dict.fromkeys(_LIST_TYPES[kind] for kind in list_types if kind in _LIST_TYPES))
    if method in _BY_CHANNEL_KIND:
        return () if private is None else (_BY_CHANNEL_KIND[method][private],)
    if method not in _FIXED:
        raise KeyError(f"no scopes recorded for Slack method {method!r}: add it to slack_scopes")
    return _FIXED[method]
