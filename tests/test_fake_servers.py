"""The fake Slack and Jira servers, driven by the real slack_sdk and jira clients.

The clients are configured as the integrations must be: they never retry a write on their own.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from jira import JIRA, JIRAError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from fakes.httpbase import FakeServerCrashed, RecordedRequest, Reply
from fakes.jira_server import JiraServer
from fakes.slack_scopes import IR_SCOPES
from fakes.slack_server import SlackServer

METADATA = {"event_type": "ir_step_done", "event_payload": {"incident": "inc-1", "step": "notify"}}


@pytest.fixture
def slack(slack_server: SlackServer) -> WebClient:
    return WebClient(token=slack_server.token, base_url=slack_server.url, retry_handlers=[])


def _cloud_client(server: JiraServer, **options: object) -> JIRA:
    return JIRA(server=server.url, basic_auth=(server.user, server.token), max_retries=0, **options)


@pytest.fixture
def jira(jira_server: JiraServer) -> Iterator[JIRA]:
    client = _cloud_client(jira_server, get_server_info=True)
    yield client
    client.close()


@pytest.fixture
def jira_dc(jira_server_dc: JiraServer) -> Iterator[JIRA]:
    client = JIRA(server=jira_server_dc.url, token_auth=jira_server_dc.token, max_retries=0)
    yield client
    client.close()


def _refused(call: Callable[[], object]) -> SlackResponse:
    """The response of a Slack call that must fail: the client raises SlackApiError."""
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response


# -- Slack -------------------------------------------------------------------------------------


def test_slack_auth_test_sends_the_bearer_token(slack: WebClient, slack_server: SlackServer) -> None:
    assert slack.auth_test()["user_id"] == slack_server.bot_user_id
    (request,) = slack_server.calls("auth.test")
    assert (request.method, request.headers["Authorization"]) == ("POST", "Bearer xoxb-test")


def test_slack_refuses_a_wrong_or_missing_token(slack_server: SlackServer) -> None:
    wrong = _refused(WebClient(token="xoxb-wrong", base_url=slack_server.url, retry_handlers=[]).auth_test)
    missing = _refused(WebClient(base_url=slack_server.url, retry_handlers=[]).auth_test)
    assert (wrong.status_code, wrong["error"]) == (200, "invalid_auth")
    assert missing["error"] == "not_authed"


def test_slack_creates_channels_by_slack_name_rules(slack: WebClient, slack_server: SlackServer) -> None:
    channel = slack.conversations_create(name="inc-2024-001")["channel"]
    assert channel["name"] == "inc-2024-001" and channel["id"].startswith("C") and channel["is_member"]
    assert _refused(lambda: slack.conversations_create(name="inc-2024-001"))["error"] == "name_taken"
    assert _refused(lambda: slack.conversations_create(name="Inc 1"))["error"] == "invalid_name_specials"
    too_long = _refused(lambda: slack.conversations_create(name="x" * 81))
    assert too_long["error"] == "invalid_name_maxlength"
    assert slack_server.channels["inc-2024-001"]["members"] == [slack_server.bot_user_id]


def test_slack_lists_channels_page_by_page(slack: WebClient, slack_server: SlackServer) -> None:
    for number in range(5):
        slack.conversations_create(name=f"inc-{number}")
    slack.conversations_create(name="inc-private", is_private=True)
    slack_server.add_channel("someone-elses-secret", is_private=True, bot_is_member=False)

    # the client follows response_metadata.next_cursor; each page reuses one response object
    pages = [[c["name"] for c in page["channels"]] for page in slack.conversations_list(limit=2)]
    assert pages == [["inc-0", "inc-1"], ["inc-2", "inc-3"], ["inc-4"]]
    both = slack.conversations_list(types="public_channel,private_channel", limit=100)["channels"]
    assert [c["name"] for c in both][-1] == "inc-private" and len(both) == 6
    bad = _refused(lambda: slack.conversations_list(cursor="not-a-cursor"))
    assert bad["error"] == "invalid_cursor"


def test_slack_conversations_info_and_unknown_channels(slack: WebClient) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    assert slack.conversations_info(channel=channel_id)["channel"]["name"] == "inc-1"
    for call in (lambda: slack.conversations_info(channel="C404"),
                 lambda: slack.conversations_info(channel="inc-1"),  # names are not ids
                 lambda: slack.chat_postMessage(channel="C404", text="hi")):
        assert _refused(call)["error"] == "channel_not_found"


def test_slack_invites_users_once(slack: WebClient, slack_server: SlackServer) -> None:
    alice, bob = slack_server.add_user("alice", "alice@example.com"), slack_server.add_user("bob", "bob@example.com")
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    slack.conversations_invite(channel=channel_id, users=[alice, bob])
    assert slack_server.calls("conversations.invite")[0].args["users"] == f"{alice},{bob}"
    assert set(slack_server.channels["inc-1"]["members"]) == {slack_server.bot_user_id, alice, bob}
    again = _refused(lambda: slack.conversations_invite(channel=channel_id, users=alice))
    assert again["error"] == "already_in_channel"
    unknown = _refused(lambda: slack.conversations_invite(channel=channel_id, users="U404"))
    assert unknown["error"] == "user_not_found"


def test_slack_messages_carry_metadata_back_through_history(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Contained*"}}]
    first = slack.chat_postMessage(channel=channel_id, text="Contained", blocks=blocks, metadata=METADATA)
    second = slack.chat_postMessage(channel="#inc-1", text="plain")

    assert (first["channel"], first["ts"], second["ts"]) == (channel_id, "1700000000.000100", "1700000000.000200")
    assert first["message"]["blocks"] == blocks
    history = slack.conversations_history(channel=channel_id, include_all_metadata=True)["messages"]
    assert [m["text"] for m in history] == ["plain", "Contained"]  # newest first
    assert history[1]["metadata"] == METADATA and "metadata" not in history[0]
    assert "metadata" not in slack.conversations_history(channel=channel_id)["messages"][1]
    stored = slack_server.messages("inc-1")[0]
    assert (stored["text"], stored["blocks"], stored["metadata"]) == ("Contained", blocks, METADATA)


def test_slack_accepts_form_encoded_posts_with_json_strings(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    blocks = [{"type": "divider"}]
    slack.api_call("chat.postMessage", params={"channel": channel_id, "text": "form", "blocks": json.dumps(blocks),
                                               "metadata": json.dumps(METADATA)})
    (request,) = slack_server.calls("chat.postMessage")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    (message,) = slack_server.messages(channel_id)
    assert (message["blocks"], message["metadata"]) == (blocks, METADATA)
    bad = _refused(lambda: slack.api_call("chat.postMessage", params={"channel": channel_id, "blocks": "[oops"}))
    assert bad["error"] == "invalid_blocks_format"
    empty = _refused(lambda: slack.api_call("chat.postMessage", params={"channel": channel_id, "text": ""}))
    assert empty["error"] == "no_text"


def test_slack_history_pages_by_oldest_limit_and_cursor(slack: WebClient) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    stamps = [slack.chat_postMessage(channel=channel_id, text=str(n))["ts"] for n in range(5)]
    first = slack.conversations_history(channel=channel_id, oldest=stamps[0], limit=2)
    assert [m["text"] for m in first["messages"]] == ["4", "3"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    rest = slack.conversations_history(channel=channel_id, oldest=stamps[0], limit=2, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["2", "1"] and not rest["has_more"]
    inclusive = slack.conversations_history(channel=channel_id, oldest=stamps[0], inclusive=True)
    assert len(inclusive["messages"]) == 5


def test_slack_threads_and_replies(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    parent = slack.chat_postMessage(channel=channel_id, text="timeline")["ts"]
    slack.chat_postMessage(channel=channel_id, text="step 1", thread_ts=parent, metadata=METADATA)
    slack.chat_postMessage(channel=channel_id, text="step 2", thread_ts=parent)

    assert [m["text"] for m in slack.conversations_history(channel=channel_id)["messages"]] == ["timeline"]
    replies = slack.conversations_replies(channel=channel_id, ts=parent, include_all_metadata=True)["messages"]
    assert [(m["text"], m.get("thread_ts")) for m in replies] == [("timeline", parent), ("step 1", parent),
                                                                 ("step 2", parent)]
    assert replies[0]["reply_count"] == 2 and replies[1]["metadata"] == METADATA
    no_thread = _refused(lambda: slack.conversations_replies(channel=channel_id, ts="1.2"))
    assert no_thread["error"] == "thread_not_found"
    assert [m["thread_ts"] for m in slack_server.messages("inc-1")[1:]] == [parent, parent]


def test_slack_chat_update_edits_in_place(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    ts = slack.chat_postMessage(channel=channel_id, text="Status: open")["ts"]
    updated = slack.chat_update(channel=channel_id, ts=ts, text="Status: contained", metadata=METADATA)
    assert (updated["ts"], updated["text"]) == (ts, "Status: contained")
    (message,) = slack_server.messages("inc-1")
    assert (message["text"], message["metadata"], message["edited"]["user"]) == ("Status: contained", METADATA,
                                                                                 slack_server.bot_user_id)
    missing = _refused(lambda: slack.chat_update(channel=channel_id, ts="1700000000.999900", text="x"))
    assert missing["error"] == "message_not_found"


def test_slack_pins_once(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    ts = slack.chat_postMessage(channel=channel_id, text="Incident brief")["ts"]
    slack.pins_add(channel=channel_id, timestamp=ts)
    assert _refused(lambda: slack.pins_add(channel=channel_id, timestamp=ts))["error"] == "already_pinned"
    assert slack_server.pins("inc-1") == [ts]


def test_slack_bot_must_be_in_the_channel(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack_server.add_channel("security", bot_is_member=False)
    outside = _refused(lambda: slack.chat_postMessage(channel=channel_id, text="hi"))
    assert outside["error"] == "not_in_channel"
    assert slack_server.messages("security") == []


def test_slack_users_and_usergroups(slack: WebClient, slack_server: SlackServer) -> None:
    alice = slack_server.add_user("alice", "Alice@Example.com")
    group = slack_server.add_usergroup("ir-oncall", "IR on call", users=(alice,))
    assert slack.users_lookupByEmail(email="alice@example.com")["user"]["id"] == alice
    nobody = _refused(lambda: slack.users_lookupByEmail(email="x@example.com"))
    assert nobody["error"] == "users_not_found"
    (listed,) = slack.usergroups_list(include_users=True)["usergroups"]
    assert (listed["id"], listed["handle"], listed["users"]) == (group, "ir-oncall", [alice])
    assert slack.usergroups_list()["usergroups"][0]["users"] == []


def test_slack_files_upload_v2_takes_three_requests(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    uploaded = slack.files_upload_v2(channel=channel_id, content=b"a,b\n1,2\n", filename="iocs.csv", title="IOCs",
                                     initial_comment="Indicators")
    assert [r.api for r in slack_server.requests[1:]] == ["files.getUploadURLExternal", "files.upload",
                                                          "files.completeUploadExternal"]
    file = slack_server.files[uploaded["file"]["id"]]
    assert (file["name"], file["title"], file["content"], file["channels"]) == ("iocs.csv", "IOCs", b"a,b\n1,2\n",
                                                                               [channel_id])
    (share,) = slack_server.messages("inc-1")
    assert (share["text"], share["files"][0]["id"]) == ("Indicators", file["id"])


def test_slack_ratelimit_is_a_429_with_retry_after(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    slack_server.fail("chat.postMessage", "ratelimit", retry_after=30)
    refused = _refused(lambda: slack.chat_postMessage(channel=channel_id, text="hi"))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "30")
    assert refused["error"] == "ratelimited"
    assert slack_server.messages("inc-1") == []
    slack.chat_postMessage(channel=channel_id, text="hi")  # the script is used up
    assert len(slack_server.calls("chat.postMessage")) == 2


def test_slack_server_error_changes_nothing(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    slack_server.fail("chat.postMessage", "server_error", status=503)
    assert _refused(lambda: slack.chat_postMessage(channel=channel_id, text="hi")).status_code == 503
    assert slack_server.messages("inc-1") == []


def test_slack_slow_reply_times_out_after_the_post_is_committed(slack_server: SlackServer) -> None:
    impatient = WebClient(token=slack_server.token, base_url=slack_server.url, retry_handlers=[], timeout=0.5)
    channel_id = impatient.conversations_create(name="inc-1")["channel"]["id"]
    slack_server.fail("chat.postMessage", "slow", delay=2)
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel=channel_id, text="hi", metadata=METADATA)
    assert [m["metadata"] for m in slack_server.messages("inc-1")] == [METADATA]


def test_slack_dropped_connection_after_the_post_is_committed(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    slack_server.fail("chat.postMessage", "drop_after_commit")
    with pytest.raises(ConnectionError):
        slack.chat_postMessage(channel=channel_id, text="hi")
    assert [m["text"] for m in slack_server.messages("inc-1")] == ["hi"]


def test_slack_default_client_posts_twice_after_a_drop(slack_server: SlackServer) -> None:
    """Why the integration passes retry_handlers=[]: by default the client retries a connection error."""
    default = WebClient(token=slack_server.token, base_url=slack_server.url)
    channel_id = default.conversations_create(name="inc-1")["channel"]["id"]
    slack_server.fail("chat.postMessage", "drop_after_commit")
    default.chat_postMessage(channel=channel_id, text="hi")
    assert [m["text"] for m in slack_server.messages("inc-1")] == ["hi", "hi"]


def test_slack_answers_with_the_tokens_scopes_in_a_header(slack: WebClient) -> None:
    scopes = slack.auth_test().headers["x-oauth-scopes"]
    assert scopes.split(",") == list(IR_SCOPES)


@pytest.mark.parametrize(("scopes", "call", "needed"), [
    (("channels:read",), lambda c, ch: c.chat_postMessage(channel=ch, text="hi"), "chat:write"),
    (("chat:write",), lambda c, ch: c.pins_add(channel=ch, timestamp="1.0"), "pins:write"),
    (("chat:write",), lambda c, ch: c.conversations_history(channel=ch), "channels:history"),
    (("channels:history",), lambda c, ch: c.conversations_info(channel=ch), "channels:read"),
    (("channels:read",), lambda c, ch: c.conversations_list(types="public_channel,private_channel"), "groups:read"),
    (("groups:write",), lambda c, ch: c.conversations_create(name="inc-9"), "channels:manage"),
    (("channels:manage",), lambda c, ch: c.conversations_create(name="inc-9", is_private=True), "groups:write"),
    (("users:read",), lambda c, ch: c.users_lookupByEmail(email="a@example.com"), "users:read.email"),
    (("users:read.email",), lambda c, ch: c.users_lookupByEmail(email="a@example.com"), "users:read"),
    (("chat:write",), lambda c, ch: c.usergroups_list(), "usergroups:read"),
    (("chat:write",), lambda c, ch: c.conversations_join(channel=ch), "channels:join"),
    (("chat:write",), lambda c, ch: c.files_getUploadURLExternal(filename="a.txt", length=1), "files:write"),
])
def test_slack_refuses_a_method_without_its_scope(scopes: tuple[str, ...], call: Callable, needed: str) -> None:
    with SlackServer(scopes=scopes) as server:
        channel_id = server.add_channel("inc-1")
        client = WebClient(token=server.token, base_url=server.url, retry_handlers=[])
        refused = _refused(lambda: call(client, channel_id))
        assert refused.data == {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(scopes)}
        assert refused.headers["x-oauth-scopes"] == ",".join(scopes)
        assert server.messages("inc-1") == [] and "inc-9" not in server.channels


def test_slack_free_plan_has_no_user_groups() -> None:
    with SlackServer(plan="free") as server:
        client = WebClient(token=server.token, base_url=server.url, retry_handlers=[])
        assert _refused(client.usergroups_list)["error"] == "plan_upgrade_required"
    with pytest.raises(ValueError, match="plan must be one of"):
        SlackServer(plan="gold")


def test_slack_archived_channels_keep_their_names(slack: WebClient, slack_server: SlackServer) -> None:
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    ts = slack.chat_postMessage(channel=channel_id, text="before")["ts"]
    slack_server.archive_channel("inc-1")
    assert _refused(lambda: slack.conversations_create(name="inc-1"))["error"] == "name_taken"
    for call in (lambda: slack.chat_postMessage(channel=channel_id, text="after"),
                 lambda: slack.chat_update(channel=channel_id, ts=ts, text="edited"),
                 lambda: slack.pins_add(channel=channel_id, timestamp=ts),
                 lambda: slack.conversations_join(channel=channel_id)):
        assert _refused(call)["error"] == "is_archived"
    assert [m["text"] for m in slack_server.messages("inc-1")] == ["before"]
    listed = slack.conversations_list()["channels"]
    assert [(c["name"], c["is_archived"]) for c in listed] == [("inc-1", True)]
    assert slack.conversations_list(exclude_archived=True)["channels"] == []
    for name in ("inc-2", "inc-3"):
        slack.conversations_create(name=name)
    # the filter applies to each page of `limit` channels, so a page may come back short
    first = slack.conversations_list(exclude_archived=True, limit=2)
    assert [c["name"] for c in first["channels"]] == ["inc-2"] and first["response_metadata"]["next_cursor"]
    assert slack.conversations_info(channel=channel_id)["channel"]["is_archived"] is True


def test_slack_bot_joins_public_channels_only(slack: WebClient, slack_server: SlackServer) -> None:
    public = slack_server.add_channel("security", bot_is_member=False)
    secret = slack_server.add_channel("secret", is_private=True, bot_is_member=False)
    joined = slack.conversations_join(channel=public)
    assert joined["channel"]["is_member"] is True and "warning" not in joined.data
    again = slack.conversations_join(channel=public)
    assert (again["warning"], again["response_metadata"]["warnings"]) == ("already_in_channel", ["already_in_channel"])
    slack.chat_postMessage(channel=public, text="hi")
    assert _refused(lambda: slack.conversations_join(channel=secret))["error"] == "channel_not_found"
    mine = slack.conversations_create(name="mine", is_private=True)["channel"]["id"]
    assert _refused(lambda: slack.conversations_join(channel=mine))["error"] == "method_not_supported_for_channel_type"


def test_slack_invite_refuses_the_whole_batch_unless_forced(slack: WebClient, slack_server: SlackServer) -> None:
    alice, bob = slack_server.add_user("alice", "alice@example.com"), slack_server.add_user("bob", "bob@example.com")
    channel_id = slack.conversations_create(name="inc-1")["channel"]["id"]
    slack.conversations_invite(channel=channel_id, users=alice)
    batch = _refused(lambda: slack.conversations_invite(channel=channel_id, users=[bob, alice, "U404"]))
    assert batch["error"] == "already_in_channel"
    assert batch["errors"] == [{"user": alice, "ok": False, "error": "already_in_channel"},
                               {"user": "U404", "ok": False, "error": "user_not_found"}]
    assert bob not in slack_server.channels["inc-1"]["members"]
    forced = slack.conversations_invite(channel=channel_id, users=[bob, "U404"], force=True)
    assert forced["errors"] == [{"user": "U404", "ok": False, "error": "user_not_found"}]
    assert bob in slack_server.channels["inc-1"]["members"]
    alone = _refused(lambda: slack.conversations_invite(channel=channel_id, users="U404", force=True))
    assert alone["error"] == "user_not_found"


def test_slack_lists_a_large_workspace_within_the_documented_limit(slack: WebClient,
                                                                   slack_server: SlackServer) -> None:
    slack_server.add_channels("team", 8000)
    assert _refused(lambda: slack.conversations_list(limit=1001))["error"] == "invalid_limit"
    names = [c["name"] for page in slack.conversations_list(limit=1000) for c in page["channels"]]
    assert len(names) == 8000 and names[0] == "team-00001" and names[-1] == "team-08000"
    assert len(slack_server.calls("conversations.list")) == 1 + 8


def test_slack_rate_limits_a_method_by_its_tier() -> None:
    with SlackServer(rate_limits={"conversations.list": (2, 1.5)}) as server:
        client = WebClient(token=server.token, base_url=server.url, retry_handlers=[])
        client.conversations_list()
        client.conversations_list()
        limited = _refused(client.conversations_list)
        assert (limited.status_code, limited["error"], limited.headers["Retry-After"]) == (429, "ratelimited", "2")
        client.auth_test()  # other methods are not limited
        time.sleep(1.6)
        assert client.conversations_list()["ok"]


def test_scripted_error_uses_the_slack_envelope(slack: WebClient, slack_server: SlackServer) -> None:
    slack_server.fail("auth.test", "error", error="account_inactive")
    assert _refused(slack.auth_test).data == {"ok": False, "error": "account_inactive"}
    with pytest.raises(ValueError, match="unknown failure mode 'flaky'"):
        slack_server.fail("auth.test", "flaky")
    with pytest.raises(ValueError, match="needs a delay"):
        slack_server.fail("auth.test", "slow")


# -- Jira --------------------------------------------------------------------------------------


def test_jira_cloud_creates_an_issue_with_absolute_self_links(jira: JIRA, jira_server: JiraServer) -> None:
    issue = jira.create_issue(project="IR", summary="Phishing wave", issuetype={"name": "Incident"},
                              description="Reported by 3 users", labels=["ir-inc-1-open"], priority={"name": "High"},
                              duedate="2024-03-01")
    assert [r.api for r in jira_server.requests] == [
        "GET /rest/api/2/serverInfo", "GET /rest/api/2/project/{projectIdOrKey}", "POST /rest/api/2/issue",
        "GET /rest/api/2/issue/{issueIdOrKey}"]
    assert jira_server.requests[0].headers["Authorization"].startswith("Basic ")
    assert (issue.key, issue.fields.summary, issue.fields.labels) == ("IR-1", "Phishing wave", ["ir-inc-1-open"])
    assert (issue.fields.status.name, issue.fields.priority.name, issue.fields.issuetype.name) == ("Open", "High",
                                                                                                 "Incident")
    assert (issue.fields.description, issue.fields.duedate, issue.fields.issuelinks) == ("Reported by 3 users",
                                                                                         "2024-03-01", [])
    assert issue.self == f"{jira_server.url}/rest/api/2/issue/{issue.id}"
    assert issue.fields.status.self.startswith(jira_server.url) and issue.fields.project.key == "IR"
    assert jira_server.issues["IR-1"]["fields"]["summary"] == "Phishing wave"


def test_jira_create_answers_201_with_id_key_and_self(jira_server: JiraServer) -> None:
    reply = requests.post(f"{jira_server.url}/rest/api/2/issue", auth=(jira_server.user, jira_server.token), json={
        "fields": {"project": {"key": "IR"}, "issuetype": {"name": "Task"}, "summary": "x"}}, timeout=2)
    assert (reply.status_code, reply.json()) == (201, {"id": "10001", "key": "IR-1",
                                                       "self": f"{jira_server.url}/rest/api/2/issue/10001"})


def test_jira_lists_projects_types_priorities_and_fields(jira: JIRA) -> None:
    assert [p.key for p in jira.projects()] == ["IR"]
    assert [t.name for t in jira.project("IR").issueTypes] == ["Task", "Incident"]
    assert [t.name for t in jira.issue_types()] == ["Task", "Incident"]
    assert [p.name for p in jira.priorities()] == ["Highest", "High", "Medium", "Low", "Lowest"]
    assert {"summary", "labels", "duedate"} <= {f["id"] for f in jira.fields()}
    with pytest.raises(JIRAError, match="No project could be found with key 'NOPE'") as raised:
        jira.project("NOPE")
    assert raised.value.status_code == 404


@pytest.mark.parametrize(("fields", "message"), [
    ({"project": {"key": "IR"}, "issuetype": {"name": "Task"}}, "You must specify a summary of the issue."),
    ({"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "x"}, "valid project is required"),
    ({"project": {"key": "IR"}, "issuetype": {"name": "Epic"}, "summary": "x"}, "valid issue type is required"),
    ({"project": {"key": "IR"}, "issuetype": {"name": "Task"}, "summary": "x", "labels": ["two words"]},
     "The label 'two words' contains spaces which is invalid."),
    ({"project": {"key": "IR"}, "issuetype": {"name": "Task"}, "summary": "x", "severity": "S1"},
     "Field 'severity' cannot be set. It is not on the appropriate screen, or unknown."),
])
def test_jira_refuses_bad_creates_with_the_error_envelope(jira: JIRA, jira_server: JiraServer, fields: dict,
                                                         message: str) -> None:
    with pytest.raises(JIRAError) as raised:
        jira.create_issue(fields=fields)
    assert (raised.value.status_code, raised.value.text) == (400, message)
    assert jira_server.issues == {}


def test_jira_unknown_issue_is_a_404(jira: JIRA) -> None:
    with pytest.raises(JIRAError) as raised:
        jira.issue("IR-404")
    assert (raised.value.status_code, raised.value.text) == (404, "Issue does not exist or you do not have "
                                                                  "permission to see it.")


def test_jira_refuses_wrong_credentials(jira_server: JiraServer, jira_server_dc: JiraServer) -> None:
    for make in (lambda: JIRA(server=jira_server.url, basic_auth=(jira_server.user, "wrong"), max_retries=0),
                 lambda: JIRA(server=jira_server.url, token_auth=jira_server.token, max_retries=0),
                 lambda: JIRA(server=jira_server_dc.url, basic_auth=("ir-bot", jira_server_dc.token), max_retries=0)):
        with pytest.raises(JIRAError) as raised:
            make()
        assert raised.value.status_code == 401


def test_jira_edits_fields_and_labels(jira: JIRA, jira_server: JiraServer) -> None:
    issue = jira.create_issue(project="IR", summary="Phish", issuetype={"name": "Task"}, labels=["a"])
    issue.update(fields={"summary": "Phishing wave"}, labels=[{"add": "b"}, {"remove": "a"}])
    (edit,) = jira_server.calls("PUT /rest/api/2/issue/{issueIdOrKey}")
    assert edit.path == f"/rest/api/2/issue/{issue.id}"
    assert (issue.fields.summary, issue.fields.labels) == ("Phishing wave", ["b"])
    with pytest.raises(JIRAError, match="contains spaces"):
        issue.update(fields={"summary": "kept?", "labels": ["a b"]})
    assert jira_server.issues["IR-1"]["fields"]["summary"] == "Phishing wave"


def test_jira_comments(jira: JIRA, jira_server: JiraServer) -> None:
    key = jira.create_issue(project="IR", summary="Phish", issuetype={"name": "Task"}).key
    comment = jira.add_comment(key, "Contained at 10:02")
    assert comment.body == "Contained at 10:02" and comment.self.startswith(jira_server.url)
    assert [c.body for c in jira.comments(key)] == ["Contained at 10:02"]
    assert jira_server.comments(key) == ["Contained at 10:02"]
    with pytest.raises(JIRAError, match="Comment body can not be empty!"):
        jira.add_comment(key, "")


def test_jira_transitions_by_name(jira: JIRA, jira_server: JiraServer) -> None:
    key = jira.create_issue(project="IR", summary="Phish", issuetype={"name": "Task"}).key
    assert [t["name"] for t in jira.transitions(key)] == ["Triage", "Contain", "Eradicate", "Recover", "Resolve"]
    jira.transition_issue(key, "Contain", comment="isolated host")
    jira.transition_issue(key, "resolve")  # the client matches names without case
    issue = jira.issue(key)
    assert (issue.fields.status.name, issue.fields.status.statusCategory.key) == ("Resolved", "done")
    assert jira_server.transitions_done(key) == ["Contain", "Resolve"]
    assert jira_server.comments(key) == ["isolated host"]
    with pytest.raises(JIRAError, match="Transition id '99' is not valid for this issue."):
        jira.transition_issue(key, "99")


def test_jira_workflows_are_configurable_per_project(jira: JIRA, jira_server: JiraServer) -> None:
    jira_server.add_project("SEC", "Security", workflow={"Start work": "In Progress", "Done": "Closed"})
    key = jira.create_issue(project="SEC", summary="x", issuetype={"name": "Task"}).key
    assert key == "SEC-1" and [t["name"] for t in jira.transitions(key)] == ["Start work", "Done"]
    jira.transition_issue(key, "Start work")
    assert [t["name"] for t in jira.transitions(key)] == ["Done"]


def test_jira_issue_links(jira: JIRA, jira_server: JiraServer) -> None:
    first, second = (jira.create_issue(project="IR", summary=s, issuetype={"name": "Task"}).key for s in "ab")
    assert "Relates" in [t.name for t in jira.issue_link_types()]
    jira.create_issue_link("Relates", first, second)
    jira.create_issue_link("Relates", first, second)  # Jira ignores a repeat
    assert jira_server.links == [{"type": "Relates", "inward": first, "outward": second}]
    (link,) = jira.issue(first).fields.issuelinks
    assert (link.type.name, link.outwardIssue.key) == ("Relates", second)
    assert jira.issue(second).fields.issuelinks[0].inwardIssue.key == first
    with pytest.raises(JIRAError, match="No issue link type with name 'Causes' found.") as raised:
        jira.create_issue_link("Causes", first, second)
    assert raised.value.status_code == 404


def test_jira_remote_links_update_by_global_id(jira: JIRA, jira_server: JiraServer) -> None:
    key = jira.create_issue(project="IR", summary="Phish", issuetype={"name": "Task"}).key
    jira.add_remote_link(key, {"url": "https://slack.example/C1", "title": "#inc-1"}, globalId="slack:C1")
    jira.add_remote_link(key, {"url": "https://slack.example/C1", "title": "#inc-1 (renamed)"}, globalId="slack:C1")
    jira.add_remote_link(key, {"url": "https://wiki.example/runbook", "title": "Runbook"})
    assert [link.object.title for link in jira.remote_links(key)] == ["#inc-1 (renamed)", "Runbook"]
    assert [link["globalId"] for link in jira_server.remote_links(key)[:1]] == ["slack:C1"]
    assert jira_server.remote_links(key)[0]["self"].startswith(jira_server.url)


def test_jira_cloud_search_pages_by_next_page_token(jira: JIRA, jira_server: JiraServer) -> None:
    for number in range(5):
        jira.create_issue(project="IR", summary=f"s{number}", issuetype={"name": "Task"}, labels=[f"ir-{number % 2}"],
                          prefetch=False)
    assert [i.key for i in jira.search_issues('project = IR AND labels = "ir-1" ORDER BY created DESC')] == [
        "IR-2", "IR-4"]
    assert [i.key for i in jira.search_issues("labels in (ir-0, ir-1) AND key = IR-3")] == ["IR-3"]
    page = jira.enhanced_search_issues("project = IR", maxResults=2)
    assert [i.key for i in page] == ["IR-1", "IR-2"] and page.nextPageToken
    rest = jira.enhanced_search_issues("project = IR", maxResults=10, nextPageToken=page.nextPageToken)
    assert [i.key for i in rest] == ["IR-3", "IR-4", "IR-5"] and rest.nextPageToken is None
    assert {r.api for r in jira_server.requests} >= {"GET /rest/api/2/search/jql"}


def test_jira_cloud_without_server_info_hits_the_removed_search(jira_server: JiraServer) -> None:
    blind = _cloud_client(jira_server, get_server_info=False)
    with pytest.raises(JIRAError, match="The requested API has been removed") as raised:
        blind.search_issues("project = IR")
    blind.close()
    assert raised.value.status_code == 410


def test_jira_cloud_removed_search_is_gone_for_post_too(jira: JIRA, jira_server: JiraServer) -> None:
    with pytest.raises(JIRAError, match="Please migrate to the /rest/api/3/search/jql API") as raised:
        jira._session.post(f"{jira_server.url}/rest/api/2/search", json={"jql": "project = IR"})
    assert raised.value.status_code == 410


def test_jira_cloud_search_lags_behind_writes_unless_reconciled() -> None:
    with JiraServer("Cloud", index_lag=0.5) as server:
        client = _cloud_client(server)
        issue = client.create_issue(project="IR", summary="phish", issuetype={"name": "Task"}, labels=["ir-1"])
        assert list(client.enhanced_search_issues("labels = ir-1")) == []
        for use_post in (False, True):
            found = client.enhanced_search_issues("labels = ir-1", reconcileIssues=[int(issue.id)], use_post=use_post)
            assert [i.key for i in found] == [issue.key]
        time.sleep(0.6)
        assert [i.key for i in client.enhanced_search_issues("labels = ir-1")] == [issue.key]
        client.add_comment(issue.key, "updated")  # a write puts it behind the index again
        assert list(client.enhanced_search_issues("labels = ir-1")) == []
        too_many = list(range(1, 52))
        with pytest.raises(JIRAError, match="at most 50") as raised:
            client.enhanced_search_issues("labels = ir-1", reconcileIssues=too_many, use_post=True)
        assert raised.value.status_code == 400
        client.close()


def test_jira_server_info_answers_the_sites_base_url() -> None:
    with JiraServer("Cloud", base_url="https://example.atlassian.net") as server:
        client = _cloud_client(server, get_server_info=True)
        assert client.server_info()["baseUrl"] == "https://example.atlassian.net"
        key = client.create_issue(project="IR", summary="x", issuetype={"name": "Task"}).key
        assert server.issues[key]["self"].startswith(server.url)  # the API's own links keep the address it serves
        client.close()


def test_jira_link_types_are_configurable_per_server() -> None:
    blocks = {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"}
    with JiraServer("Cloud", link_types=[blocks]) as server:
        client = _cloud_client(server)
        first, second = (client.create_issue(project="IR", summary=s, issuetype={"name": "Task"}).key for s in "ab")
        assert [t.name for t in client.issue_link_types()] == ["Blocks"]
        with pytest.raises(JIRAError, match="No issue link type with name 'Relates' found.") as raised:
            client.create_issue_link("Relates", first, second)
        assert raised.value.status_code == 404 and server.links == []
        client.create_issue_link("Blocks", first, second)
        assert client.issue(second).fields.issuelinks[0].type.name == "Blocks"
        client.close()
    with pytest.raises(ValueError, match="exactly id, name, inward and outward"):
        JiraServer(link_types=[{"name": "Relates"}])


def test_jira_software_project_has_its_own_types_and_workflow(jira: JIRA, jira_server: JiraServer) -> None:
    jira_server.add_software_project("SW", "Software")
    assert [t.name for t in jira.project("SW").issueTypes] == ["Epic", "Task", "Bug", "Story"]
    assert [t.name for t in jira.issue_types()] == ["Task", "Incident", "Epic", "Bug", "Story"]
    with pytest.raises(JIRAError) as raised:
        jira.create_issue(project="SW", summary="x", issuetype={"name": "Incident"})
    assert raised.value.response.json()["errors"] == {"issuetype": "valid issue type is required"}
    key = jira.create_issue(project="SW", summary="x", issuetype={"name": "Bug"}).key
    status = jira.issue(key).raw["fields"]["status"]
    assert (status["name"], status["statusCategory"]["key"], status["statusCategory"]["name"]) == (
        "To Do", "new", "To Do")
    offered = jira.transitions(key)
    assert [(t["id"], t["name"], t["to"]["statusCategory"]["key"]) for t in offered] == [
        ("21", "In Progress", "indeterminate"), ("31", "Done", "done")]
    assert set(offered[0]["to"]["statusCategory"]) == {"self", "id", "key", "colorName", "name"}
    jira.transition_issue(key, "In Progress")
    assert [t["name"] for t in jira.transitions(key)] == ["To Do", "Done"]
    with pytest.raises(JIRAError, match="Transition id '21' is not valid for this issue."):
        jira.transition_issue(key, "21")  # no transition from a status to itself
    jira.transition_issue(key, "Done")
    assert jira.issue(key).raw["fields"]["status"]["statusCategory"] == {
        "self": f"{jira_server.url}/rest/api/2/statuscategory/3", "id": 3, "key": "done", "colorName": "green",
        "name": "Done"}


def test_jira_createmeta_lists_the_create_screen(jira_dc: JIRA, jira_server_dc: JiraServer) -> None:
    assert [t.name for t in jira_dc.project_issue_types("IR")] == ["Task", "Incident"]
    fields = [f.fieldId for f in jira_dc.project_issue_fields("IR", "10001")]
    assert fields == ["issuetype", "project", "summary", "description", "labels", "priority", "duedate"]
    jira_server_dc.set_create_screen("IR", "Task", ["summary", "description", "labels"])
    assert [f.fieldId for f in jira_dc.project_issue_fields("IR", "10001")] == [
        "issuetype", "project", "summary", "description", "labels"]
    with pytest.raises(JIRAError) as raised:
        jira_dc.create_issue(project="IR", summary="x", issuetype={"name": "Task"}, priority={"name": "High"},
                             duedate="2024-01-31")
    assert raised.value.status_code == 400 and raised.value.response.json()["errors"] == {
        "priority": "Field 'priority' cannot be set. It is not on the appropriate screen, or unknown.",
        "duedate": "Field 'duedate' cannot be set. It is not on the appropriate screen, or unknown."}
    assert jira_server_dc.issues == {}
    assert jira_dc.create_issue(project="IR", summary="x", issuetype={"name": "Incident"}, priority={"name": "High"})
    with pytest.raises(JIRAError) as unknown:
        jira_dc._get_json("issue/createmeta/IR/issuetypes/10004")
    assert unknown.value.status_code == 404


def test_jira_cloud_createmeta_pages_under_its_own_keys(jira: JIRA) -> None:
    types = jira._get_json("issue/createmeta/IR/issuetypes")
    assert [t["name"] for t in types["issueTypes"]] == ["Task", "Incident"] and types["total"] == 2
    fields = jira._get_json("issue/createmeta/IR/issuetypes/10002", params={"maxResults": 3})
    assert [f["fieldId"] for f in fields["fields"]] == ["issuetype", "project", "summary"]
    assert (fields["total"], "values" in fields) == (7, False)


def test_jira_server_search_pages_by_start_at(jira_dc: JIRA, jira_server_dc: JiraServer) -> None:
    for number in range(5):
        jira_dc.create_issue(project="IR", summary=f"s{number}", issuetype={"name": "Task"}, prefetch=False)
    page = jira_dc.search_issues("project = IR", startAt=2, maxResults=2)
    assert ([i.key for i in page], page.total) == (["IR-3", "IR-4"], 5)
    everything = jira_dc.search_issues("project = IR", maxResults=False)  # pages until `total`
    assert [i.key for i in everything] == [f"IR-{n}" for n in range(1, 6)]
    assert jira_server_dc.requests[0].headers["Authorization"] == f"Bearer {jira_server_dc.token}"
    assert {r.api for r in jira_server_dc.requests} >= {"GET /rest/api/2/field", "GET /rest/api/2/search"}
    assert "accountId" not in jira_dc.issue("IR-1").fields.reporter.raw


@pytest.mark.parametrize(("jql", "message"), [
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
    ("assignee = me", "Field 'assignee' does not exist or you do not have permission to view it."),
    ("project = IR OR labels = x",
     "Error in the JQL Query: Expecting 'AND' between clauses; this fake supports no OR."),
])
def test_jira_refuses_jql_it_cannot_answer(jira: JIRA, jql: str, message: str) -> None:
    with pytest.raises(JIRAError) as raised:
        jira.search_issues(jql)
    assert (raised.value.status_code, raised.value.text) == (400, message)


def test_jira_ratelimit_and_server_error_change_nothing(jira: JIRA, jira_server: JiraServer) -> None:
    jira_server.fail("POST /rest/api/2/issue", "ratelimit", retry_after=20)
    with pytest.raises(JIRAError) as limited:
        jira.create_issue(project="IR", summary="x", issuetype={"name": "Task"})
    assert (limited.value.status_code, limited.value.response.headers["Retry-After"]) == (429, "20")
    jira_server.fail("POST /rest/api/2/issue", "server_error")
    with pytest.raises(JIRAError) as failed:
        jira.create_issue(project="IR", summary="x", issuetype={"name": "Task"})
    assert (failed.value.status_code, failed.value.text) == (500, "Internal server error")
    assert jira_server.issues == {} and len(jira_server.calls("POST /rest/api/2/issue")) == 2


def test_jira_scripted_error_reaches_the_client_as_its_message(jira: JIRA, jira_server: JiraServer) -> None:
    jira_server.fail("POST /rest/api/2/issue/{issueIdOrKey}/comment", "error", error="Comments are locked.")
    key = jira.create_issue(project="IR", summary="x", issuetype={"name": "Task"}).key
    with pytest.raises(JIRAError) as raised:
        jira.add_comment(key, "hello")
    assert (raised.value.status_code, raised.value.text) == (400, "Comments are locked.")


def test_jira_slow_create_times_out_after_the_issue_is_committed(jira_server: JiraServer) -> None:
    impatient = _cloud_client(jira_server, timeout=0.5)
    jira_server.fail("POST /rest/api/2/issue", "slow", delay=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.create_issue(fields={"project": {"key": "IR"}, "issuetype": {"name": "Task"}, "summary": "x",
                                       "labels": ["ir-inc-1-ticket"]})
    impatient.close()
    assert [issue["fields"]["labels"] for issue in jira_server.issues.values()] == [["ir-inc-1-ticket"]]


def test_jira_dropped_create_is_committed(jira: JIRA, jira_server: JiraServer) -> None:
    jira_server.fail("POST /rest/api/2/issue", "drop_after_commit")
    with pytest.raises(requests.exceptions.ConnectionError):
        jira.create_issue(fields={"project": {"key": "IR"}, "issuetype": {"name": "Task"}, "summary": "x"})
    assert list(jira_server.issues) == ["IR-1"]
    assert [i.key for i in jira.search_issues("project = IR")] == ["IR-1"]  # the client carries on afterwards


# A bug in a fake fails the test ---------------------------------------------------------------------------
class CrashingSlack(SlackServer):
    """A fake with a bug in one of its methods."""

    def handle(self, request: RecordedRequest) -> Reply:
        if request.api == "auth.test":
            raise RuntimeError("a bug in the fake")
        return super().handle(request)


SERVICES_DOC = Path(__file__).resolve().parents[1] / "docs" / "services.md"


@pytest.mark.parametrize("server", [SlackServer, JiraServer])
def test_every_opt_in_of_a_fake_is_documented(server: type) -> None:
    """docs/services.md names each opt-in argument and seeding method, with what the service does and the source."""
    page = SERVICES_DOC.read_text(encoding="utf-8")
    keyword_only = [name for name, parameter in inspect.signature(server.__init__).parameters.items()
                    if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
    seeding = {SlackServer: ("archive_channel", "add_channels"),
               JiraServer: ("add_software_project", "set_create_screen")}[server]
    assert keyword_only and [name for name in keyword_only if f"{name}=" not in page] == []
    assert [name for name in seeding if f"{server.__name__}.{name}(" not in page] == []


def test_a_crash_in_a_fake_answers_500_and_raises_when_the_server_stops() -> None:
    server = CrashingSlack()
    with pytest.raises(FakeServerCrashed) as crashed, server:
        assert requests.post(f"{server.url}auth.test", timeout=10).status_code == 500  # no hang
        assert requests.post(f"{server.url}no.such", timeout=10).json() == {"ok": False, "error": "unknown_method"}

    [trace] = server.crashes
    assert trace.startswith("POST /api/auth.test:\nTraceback (most recent call last):\n")
    assert trace.endswith("RuntimeError: a bug in the fake\n")
    assert str(crashed.value) == (
        "CrashingSlack crashed on 1 request(s): a bug in the fake, not an outage of the service it stands for; "
        f"the test's outcome is not to be trusted.\n\n{trace}")


def test_a_crash_in_a_fake_is_added_to_the_error_of_a_block_that_failed() -> None:
    server = CrashingSlack()
    with pytest.raises(KeyError) as failed, server:
        requests.post(f"{server.url}auth.test", timeout=10)
        raise KeyError("the test's own failure")
    assert failed.value.__notes__ == [server.crash_report()]


def test_a_crash_in_a_fake_fails_the_test_that_uses_its_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["fakes.plugin"]')
    pytester.makepyfile(test_crash="""
        import requests

        def test_passes_but_its_fake_crashed(slack_server):
            def broken(request):
                raise RuntimeError("a bug in the fake")

            slack_server.handle = broken
            assert requests.post(slack_server.url + "chat.postMessage", timeout=10).status_code == 500
        """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_passes_but_its_fake_crashed*",
        "*SlackServer crashed on 1 request(s): a bug in the fake, not an outage of the service it stands for*",
        "POST /api/chat.postMessage:",
        "Traceback (most recent call last):",
        "RuntimeError: a bug in the fake",
    ])
