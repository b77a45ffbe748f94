"""Slack and Jira through the real slack_sdk and jira clients, against the stateful fake servers on 127.0.0.1:
live runs, every failure mode ending with exactly one message or issue, and no secret written anywhere."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from jira import JIRA
from slack_sdk import WebClient

from ir.integrations.registry import retry_after
from ir.store.sqlite import SqliteStore

from conftest import IR
from runs import incident_id, timeline

LIVE = """\
id: live
title: Live response
version: "1.0.0"
incident_title: "Trojanized {{ inputs.vendor }}"
severity: high
roles: [{id: commander, title: Incident commander}]
inputs: [{id: vendor, type: string, default: ACME}]
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis,
     invite: [dana@example.com]}
  - {id: status, kind: notify, action: status, title: Post the status, phase: detection-analysis}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis,
     summary: "{{ incident.title }}", description: "Vendor {{ inputs.vendor }}", due: "2026-12-01"}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared: {{ incident.title }}"}
  - {id: brief, kind: notify, title: Brief, phase: detection-analysis, channel: "#security-leadership",
     message: "Declared: {{ incident.title }}"}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment, comment: "Containment begins"}
  - {id: contain, kind: ticket, action: transition, title: Move to containment, phase: containment,
     transition: Contain}
  - {id: task, kind: ticket, action: task, title: Reimage task, phase: eradication, summary: "Reimage hosts"}
  - {id: followup, kind: notify, title: Follow up, phase: eradication, message: "Reimaging started", thread: true}
  - {id: status2, kind: notify, action: status, title: Update the status, phase: recovery, message: "Recovering"}
"""


@pytest.fixture
def live(isolated: Path, slack_server, jira_server) -> dict[str, str]:
    """The live playbook, an ir.toml for the fake Jira project, and the environment that points ir at the fakes."""
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "live.yaml").write_text(LIVE)
    (isolated / "ir.toml").write_text('[slack]\nchannels = { security-leadership = "leadership" }\n\n'
                                      '[jira]\nproject = "IR"\n')
    slack_server.dana = slack_server.add_user("Dana Reyes", "dana@example.com")
    slack_server.add_channel("leadership")
    return {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url,
            "JIRA_URL": jira_server.url, "JIRA_USER": jira_server.user, "JIRA_API_TOKEN": jira_server.token}


def run_live(run_ir, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ir("run", "live", "--non-interactive", *args, env=env)


def only_issue(jira_server) -> dict:
    incidents = [i for i in jira_server.issues.values() if i["fields"]["issuetype"]["name"] == "Incident"]
    assert len(incidents) == 1, [i["key"] for i in incidents]
    return incidents[0]


def test_a_live_run_opens_the_channel_and_ticket_and_keeps_the_status_current(run_ir, live, slack_server,
                                                                               jira_server):
    result = run_live(run_ir, live)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    assert "would" not in result.stdout and "not configured" not in result.stdout

    channel_name = f"ir-{incident.lower()}"
    channel = slack_server.channels[channel_name]
    assert slack_server.dana in channel["members"]
    messages = slack_server.messages(channel_name)
    status, announce = messages[0], messages[1]
    assert slack_server.pins(channel_name) == [status["ts"]]
    assert "Phase: *recovery*" in status["text"] and "Recovering" in status["text"]  # updated in place
    assert "Severity: *high*" in status["text"]
    assert announce["text"] == "Declared: Trojanized ACME"
    assert announce["metadata"]["event_payload"]["key"] == f"{incident}/announce/post"
    assert [m["text"] for m in slack_server.messages("leadership")] == ["Declared: Trojanized ACME"]
    replies = [m for m in messages if m.get("thread_ts") == status["ts"] and m["ts"] != status["ts"]]
    assert [m["text"] for m in replies] == ["Reimaging started"]
    refreshed = any(e["step"] == "_links" and e["data"]["action"] == "notify.status"
                    for e in timeline(run_ir, incident) if e["kind"] == "integration.done")  # the ticket came late
    assert len(slack_server.calls("chat.update")) == 1 + refreshed
    assert len(slack_server.calls("chat.postMessage")) == 4  # status, announce, the brief to leadership, follow-up

    ticket = only_issue(jira_server)
    fields = ticket["fields"]
    assert fields["summary"] == "Trojanized ACME"
    assert fields["priority"]["name"] == "High"
    assert fields["duedate"] == "2026-12-01"
    assert {"ir", f"ir-{incident.lower()}"} <= set(fields["labels"])
    assert fields["status"]["name"] == "Contained"
    comments = jira_server.comments(ticket["key"])
    assert len(comments) == 1 and comments[0].startswith("Containment begins")
    tasks = [i for i in jira_server.issues.values() if i["fields"]["issuetype"]["name"] == "Task"]
    assert [t["fields"]["summary"] for t in tasks] == ["Reimage hosts"]
    report = run_ir("export", incident, "--format", "markdown").stdout
    assert f"- task: Reimage hosts ({tasks[0]['key']})\n" in report.split("## Follow-up actions", 1)[1]
    assert [r["object"]["url"] for r in jira_server.remote_links(ticket["key"])] == [
        f"{team_url(slack_server)}archives/{channel['id']}"]

    events = timeline(run_ir, incident)
    done = [e for e in events if e["kind"] == "integration.done"]
    assert {e["data"]["action"] for e in done} == {"notify.create_channel", "notify.status", "ticket.create",
                                                   "notify.post", "ticket.comment", "ticket.transition",
                                                   "ticket.task", "ticket.remote_link"}
    assert next(e for e in done if e["data"]["action"] == "ticket.create")["data"]["ref"]["key"] == ticket["key"]
    outbox = json.loads(run_ir("outbox", incident, "--json").stdout)
    assert {i["status"] for i in outbox} == {"done"}
    assert len(outbox) == 11 + refreshed


def slack_client(slack_server):  # noqa: ANN201 - slack_sdk.WebClient
    return WebClient(token=slack_server.token, base_url=slack_server.url, retry_handlers=[])


def team_url(slack_server) -> str:
    return slack_client(slack_server).auth_test()["url"]


def test_integrations_check_names_each_missing_scope_and_a_channel_the_bot_is_not_in(run_ir, live, isolated):
    from fakes.slack_scopes import IR_SCOPES
    from fakes.slack_server import SlackServer

    with SlackServer(scopes=[s for s in IR_SCOPES if s not in ("pins:write", "usergroups:read")]) as slack:
        slack.add_channel("sec-leads", bot_is_member=False)
        slack.add_user("Dana Reyes", "dana@example.com")
        (isolated / "ir.toml").write_text('[slack]\nchannels = { security-leadership = "sec-leads" }\n')
        result = run_ir("integrations", "check", "--playbook", "live", env={**live, "SLACK_BOT_TOKEN": slack.token,
                                                                            "IR_SLACK_BASE_URL": slack.url})
    lines = [line for line in result.stdout.splitlines() if "slack" in line or line.startswith("  fix")]
    assert result.returncode == 1
    fix = "  fix: add {} to the app's bot token scopes (OAuth & Permissions) and reinstall the app"
    assert lines[1:] == [
        "✗ slack: the bot lacks the pins:write scope, which ir uses to pin the status message", fix.format("pins:write"),
        "✗ slack: the bot lacks the usergroups:read scope, which ir uses to invite user groups (@handle)",
        fix.format("usergroups:read"),
        "✗ slack: channel #sec-leads found, but the bot is not in it: its posts there would be refused "
        "(not_in_channel)", "  fix: invite the bot to #sec-leads (/invite @ir-bot)",
        "✓ slack: invite dana@example.com found"], lines


def test_integrations_check_reads_a_default_software_projects_create_screens(run_ir, live, isolated, jira_server):
    jira_server.add_software_project("SEC", "Security")
    jira_server.set_create_screen("SEC", "Task", ["summary", "description", "duedate"])
    (isolated / "ir.toml").write_text('[jira]\nproject = "SEC"\nissue_type = "Task"\n')
    result = run_ir("integrations", "check", env=live)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[3:7] == [
        "✓ jira: issue type 'Task'",
        "✗ jira: the create screen of 'Task' has no labels field: tickets cannot be opened, and ir finds a ticket "
        "again by its label", "  fix: add labels to the create screen of 'Task' in SEC",
        "✓ jira: the create screen of 'Task' has no priority field: tickets are opened without one (a warning each)"]


def jira_server_info(jira_server) -> dict:
    client = JIRA(server=jira_server.url, basic_auth=(jira_server.user, jira_server.token), max_retries=0)
    try:
        return client.server_info()
    finally:
        client.close()


SHORT = """\
id: short
title: Short response
version: "1.0.0"
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis, summary: Incident}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared"}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment, comment: "Contain now"}
"""


@pytest.fixture
def short(live: dict[str, str], isolated: Path) -> dict[str, str]:
    (isolated / "playbooks" / "short.yaml").write_text(SHORT)
    # the fake's search shows a new issue at once (no index lag), so a search that misses one is trusted at once
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\ntimeout = 1\nindex_lag = 0\n')
    return live


def run_short(run_ir, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    result = run_ir("run", "short", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    return result, incident_id(result)


def item_error(run_ir, incident: str, action: str) -> str:
    """The error the outbox recorded for the incident's `action`."""
    return next(i["error"] for i in json.loads(run_ir("outbox", incident, "--json").stdout) if i["action"] == action)


def posts(slack_server, incident: str) -> list[str]:
    return [m["text"] for m in slack_server.messages(f"ir-{incident.lower()}")]


def test_rate_limited_post_waits_for_retry_after_and_posts_once(run_ir, short, slack_server):
    slack_server.fail("chat.postMessage", "ratelimit", retry_after=1)
    began = time.monotonic()
    result, incident = run_short(run_ir, short)
    assert time.monotonic() - began >= 1.0
    assert posts(slack_server, incident) == ["Declared"]
    assert len(slack_server.calls("chat.postMessage")) == 2  # refused once with 429, then sent


def test_a_rate_limited_jira_create_waits_for_retry_after_and_creates_once(run_ir, short, jira_server):
    jira_server.fail("POST /rest/api/2/issue", "ratelimit", retry_after=1)
    began = time.monotonic()
    result, incident = run_short(run_ir, short)
    assert time.monotonic() - began >= 1.0
    ticket = only_issue(jira_server)
    assert len(jira_server.calls("POST /rest/api/2/issue")) == 2  # refused once with 429, then created
    assert jira_server.comments(ticket["key"])[0].startswith("Contain now")
    assert "failed" not in result.stdout


@pytest.mark.parametrize(("api", "mode"), [
    ("chat.postMessage", "drop_after_commit"),  # Slack wrote it, the connection died before the reply
    ("chat.postMessage", "slow"),               # Slack wrote it, the reply came after the timeout
    ("chat.postMessage", "server_error"),       # 500: nothing written
    ("chat.postMessage", "error"),              # HTTP 200 fatal_error: Slack says it may have partly succeeded
    ("chat.postMessage", "internal_error"),     # the same for internal_error (api.slack.com, common errors)
])
def test_an_unknown_slack_outcome_is_looked_up_before_it_is_sent_again(run_ir, short, slack_server, api, mode):
    if mode == "internal_error":
        slack_server.fail(api, "error", error="internal_error")
    else:
        slack_server.fail(api, mode, delay=3.0 if mode == "slow" else 0.0)
    result, incident = run_short(run_ir, short)
    assert (f"slack notify.post failed ({{}}); what goes to its incident channel waits, retried in 5 s while this run "
            f"is open; `ir flush {incident}` retries now").format(item_error(run_ir, incident, "notify.post")) \
        in result.stdout.splitlines()
    item = next(i for i in json.loads(run_ir("outbox", incident, "--json").stdout) if i["action"] == "notify.post")
    assert item["status"] == "unknown"
    flushed = run_ir("flush", incident, env=short)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert posts(slack_server, incident) == ["Declared"]  # exactly once
    done = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.done"
            and e["data"]["action"] == "notify.post"]
    assert len(done) == 1
    assert done[0]["data"]["ref"].get("found", False) is (mode in ("drop_after_commit", "slow"))  # really written


def test_flush_leaves_an_incident_that_another_process_runs_to_that_run(run_ir, short, slack_server):
    slack_server.fail("chat.postMessage", "server_error")
    result, incident = run_short(run_ir, short)
    store = SqliteStore(Path(os.environ["IR_HOME"]) / "ir.db")
    with store.running(incident):  # as a run in another process would
        busy = run_ir("flush", incident, env=short)
    assert busy.returncode == 0
    assert re.fullmatch(rf"{incident}: {incident} is being run by {getpass.getuser()} \(pid {os.getpid()} on "
                        rf"{re.escape(socket.gethostname())}, since [\dT:.Z-]+\): that run was asked to retry its "
                        r"undelivered actions now\n", busy.stdout), busy.stdout
    asked = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.retry"]
    assert [e["message"] for e in asked] == ["retry of the undelivered actions asked for"]
    assert posts(slack_server, incident) == []
    flushed = run_ir("flush", incident, env=short)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert posts(slack_server, incident) == ["Declared"]
    store.close()


@pytest.mark.parametrize("mode", ["drop_after_commit", "server_error", "slow"])
def test_an_unknown_jira_create_is_found_by_its_label_not_created_twice(run_ir, short, jira_server, mode):
    jira_server.fail("POST /rest/api/2/issue", mode, delay=3.0 if mode == "slow" else 0.0)
    result, incident = run_short(run_ir, short)
    assert "jira ticket.create failed (" in result.stdout
    outbox = {i["action"]: i for i in json.loads(run_ir("outbox", incident, "--json").stdout)}
    assert outbox["ticket.create"]["status"] == "unknown"
    assert outbox["ticket.comment"]["status"] == "pending"  # it waits for its ticket, in order
    assert run_ir("flush", incident, env=short).returncode == 0
    ticket = only_issue(jira_server)
    assert jira_server.comments(ticket["key"])[0].startswith("Contain now")
    assert len(jira_server.comments(ticket["key"])) == 1


def test_jira_server_with_a_personal_access_token(run_ir, short, jira_server_dc):
    env = {**short, "JIRA_URL": jira_server_dc.url, "JIRA_PAT": jira_server_dc.token}
    del env["JIRA_USER"], env["JIRA_API_TOKEN"]
    result, incident = run_short(run_ir, env)
    ticket = only_issue(jira_server_dc)
    assert jira_server_dc.requests[0].headers["Authorization"] == f"Bearer {jira_server_dc.token}"
    assert len(jira_server_dc.comments(ticket["key"])) == 1


def test_a_refusing_slack_leaves_the_run_going_and_flush_delivers_once_fixed(run_ir, short, slack_server):
    wrong = {**short, "SLACK_BOT_TOKEN": "xoxb-wrong"}
    result, incident = run_short(run_ir, wrong)
    assert "Playbook finished" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "slack" in line]
    assert lines == ["slack notify.create_channel failed (invalid_auth); what goes to its incident channel waits, "
                     f"retried in 5 s while this run is open; `ir flush {incident}` retries now"]
    failed = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.failed"]
    assert [e["message"] for e in failed] == ["slack notify.create_channel failed: invalid_auth (not done)"]
    listed = run_ir("outbox", incident).stdout.splitlines()
    assert [line.split()[:3] for line in listed if " slack " in line] == [
        ["failed", "slack", "notify.create_channel"], ["pending", "slack", "notify.post"]]
    still = run_ir("flush", incident, env=wrong)
    assert still.returncode == 1
    fixed = run_ir("flush", incident, env=short)
    assert fixed.returncode == 0, fixed.stdout
    assert posts(slack_server, incident) == ["Declared"]
    assert run_ir("flush", incident, env=short).stdout == ""  # nothing left, nothing sent again
    assert len(slack_server.calls("chat.postMessage")) == 1


def kill_mid_request(run_ir, env: dict[str, str], server, api: str, action: str) -> str:
    """Run `short` until `api` has reached the server (which answers only after 5 s), SIGKILL it, check the action
    was left `sending` (in doubt), resume; the incident's id."""
    server.fail(api, "slow", delay=5.0)
    process = subprocess.Popen([*IR, "run", "short", "--non-interactive"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not server.calls(api):  # the request is at the server, the reply is not back
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=30)
    incident = json.loads(run_ir("incidents", "--json").stdout)[0]["id"]
    item = next(i for i in json.loads(run_ir("outbox", incident, "--json").stdout) if i["action"] == action)
    assert item["status"] == "sending"
    resumed = run_ir("resume", incident, "--non-interactive", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    return incident


def test_sigkill_between_request_and_reply_then_resume_posts_once(run_ir, short, slack_server):
    incident = kill_mid_request(run_ir, short, slack_server, "chat.postMessage", "notify.post")
    assert posts(slack_server, incident) == ["Declared"]
    done = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.done"
            and e["data"]["action"] == "notify.post"]
    assert [e["data"]["ref"]["found"] for e in done] == [True]


def test_sigkill_while_jira_creates_the_ticket_then_resume_creates_it_once(run_ir, short, jira_server):
    kill_mid_request(run_ir, short, jira_server, "POST /rest/api/2/issue", "ticket.create")
    ticket = only_issue(jira_server)  # found by its label, not created again
    assert len(jira_server.calls("POST /rest/api/2/issue")) == 1
    assert jira_server.comments(ticket["key"])[0].startswith("Contain now")


def test_no_secret_reaches_the_store_the_timeline_the_output_or_the_logs(run_ir, live, slack_server, jira_server,
                                                                         isolated):
    sentinels = {"SLACK_BOT_TOKEN": "xoxb-SENTINEL-slack-0042", "JIRA_API_TOKEN": "SENTINEL-jira-0042"}
    slack_server.token, jira_server.token = sentinels["SLACK_BOT_TOKEN"], sentinels["JIRA_API_TOKEN"]
    env = {**live, **sentinels}
    # A service that quotes the token back in its error message: ir must not repeat it anywhere.
    jira_server.fail("POST /rest/api/2/issue/{issueIdOrKey}/comment", "error",
                     error=f"bad credentials {sentinels['JIRA_API_TOKEN']}")
    result = run_live(run_ir, env)
    assert result.returncode == 0, result.stdout + result.stderr
    incident = incident_id(result)
    assert "jira ticket.comment failed (Jira refused it (HTTP 400): bad credentials [secret]); nothing else " \
           "waits for it" in result.stdout
    outputs = [result.stdout, result.stderr]
    for args in (["flush", incident], ["timeline", incident, "--json"], ["outbox", "--json"], ["status", incident],
                 ["note", incident, "checked"], ["verify", incident], ["integrations", "check"],
                 ["incidents", "--json"]):
        done = run_ir(*args, env=env)
        outputs += [done.stdout, done.stderr]
    written = [p.read_bytes() for p in isolated.parent.rglob("*") if p.is_file()]
    for secret in sentinels.values():
        assert not any(secret in text for text in outputs), secret
        assert not any(secret.encode() in data for data in written), secret
    assert any(slack_server.token in r.headers.get("Authorization", "") for r in slack_server.requests)


def test_closing_uploads_the_report_to_the_incident_channel_once(run_ir, live, slack_server):
    incident = incident_id(run_live(run_ir, live))
    closed = run_ir("close", incident, "--note", "contained and recovered", env=live)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    uploads = list(slack_server.files.values())
    assert [f["name"] for f in uploads] == [f"{incident}-report.md"]
    assert uploads[0]["content"].decode().startswith("# ")
    channel = slack_server.channels[f"ir-{incident.lower()}"]["id"]
    assert uploads[0]["channels"] == [channel]
    events = timeline(run_ir, incident)
    assert [e["data"]["action"] for e in events if e["kind"] == "integration.done"][-1] == "notify.upload"
    assert run_ir("flush", incident, env=live).stdout == ""


def test_jira_server_search_finds_an_unknown_create_by_its_label(run_ir, short, jira_server_dc):
    env = {**short, "JIRA_URL": jira_server_dc.url, "JIRA_PAT": jira_server_dc.token}
    del env["JIRA_USER"], env["JIRA_API_TOKEN"]
    jira_server_dc.fail("POST /rest/api/2/issue", "drop_after_commit")
    result, incident = run_short(run_ir, env)
    assert run_ir("flush", incident, env=env).returncode == 0
    assert len(only_issue(jira_server_dc)["fields"]["labels"]) >= 3
    searches = [r.path for r in jira_server_dc.requests if "/search" in r.path]
    assert searches and all(p.startswith("/rest/api/2/search?") for p in searches)  # Server's search, not /jql
    assert len(jira_server_dc.calls("POST /rest/api/2/issue")) == 1


def test_a_mistake_in_ir_toml_is_named_at_its_line_and_nothing_runs(run_ir, isolated):
    (isolated / "ir.toml").write_text('[slack]\nchanel_template = "x"\ntimeout = "soon"\n\n[jira]\nproject = 5\n'
                                      '[pagerduty]\nkey = 1\n')
    result = run_ir("integrations", "check")
    assert (result.returncode, result.stdout) == (1, "")
    toml = isolated / "ir.toml"
    assert result.stderr == (
        f"{toml}:2: slack.chanel_template: unknown setting `chanel_template`\n  fix: did you mean `channel_template`?\n"
        f"{toml}:3: slack.timeout: Input should be a valid number, unable to parse string as a number\n"
        "  fix: see the settings in README.md\n"
        f"{toml}:6: jira.project: Input should be a valid string\n  fix: see the settings in README.md\n"
        f"{toml}:7: pagerduty: unknown setting `pagerduty`\n  fix: settings here: exercise, store, jira, slack\n")
    (isolated / "ir.toml").write_text("[slack\n")
    result = run_ir("run", "supply-chain", "--dry-run", "--non-interactive")
    assert (result.returncode, result.stderr) == (1, f"{toml}:1:7: not valid TOML: Expected ']' at the end of a "
                                                     "table declaration\n  fix: fix the syntax\n")
    listed = run_ir("incidents")  # the store may be named there ([store] url): none is guessed
    assert (listed.returncode, listed.stderr) == (1, result.stderr)
    (isolated / "ir.toml").write_text("")
    assert run_ir("incidents").stdout.startswith("No incidents yet.")  # the refused run opened nothing


def test_integrations_check_says_what_works_and_how_to_fix_what_does_not(run_ir, live, slack_server, jira_server,
                                                                         isolated):
    result = run_ir("integrations", "check", "--playbook", "live", env=live)
    assert result.returncode == 0, result.stdout
    info = jira_server_info(jira_server)
    slack_auth = slack_client(slack_server).auth_test()
    assert result.stdout.splitlines() == [
        "✓ jira: credentials: JIRA_USER with JIRA_API_TOKEN",
        f"✓ jira: Cloud {info['version']} at {jira_server.url}",
        "✓ jira: project IR (Incident Response)",
        "✓ jira: issue type 'Incident'",
        "✓ jira: the create screen of 'Incident' has every field ir sets",
        "✓ jira: issue type 'Task'",
        "✓ jira: the create screen of 'Task' has every field ir sets",
        "✓ jira: link type 'Relates' (follow-up tasks to the ticket)",
        "✓ jira: transition names are checked against the ticket's workflow when used; one the workflow lacks moves "
        "the ticket to a status of its category (Triage, Contain, Eradicate, Recover: in progress; Resolve: done)",
        f"✓ slack: authenticated as {slack_auth['user']} in {slack_auth['team']}",
        "✓ slack: the token has every scope ir uses (chat:write, channels:manage, groups:write, channels:read, "
        "groups:read, channels:history, pins:write, users:read, users:read.email, usergroups:read, files:write)",
        "✓ slack: channel #leadership found",
        "✓ slack: invite dana@example.com found",
    ]
    every = run_ir("integrations", "check", env=live)  # the bundled playbooks' invitees and channels too
    assert every.returncode == 1
    assert "✗ slack: invite @soc: no Slack user group @soc" in every.stdout.splitlines()
    assert "✗ slack: channel #it-announcements: channel_not_found: #it-announcements" in every.stdout.splitlines()

    (isolated / "ir.toml").write_text('[slack]\nchannels = ["nowhere"]\ninvite = ["dana@example.com", "@nobody", '
                                      '"ghost@example.com", "U0DANA"]\n\n[jira]\nproject = "NOPE"\n')
    broken = run_ir("integrations", "check", "--playbook", "live", env=live)
    assert broken.returncode == 1
    assert "✗ jira: project NOPE: Jira refused it (HTTP 404)" in broken.stdout
    assert "  fix: set [jira] project in ir.toml to a project key the account can create issues in" in broken.stdout
    assert "✗ slack: channel #nowhere: channel_not_found: #nowhere" in broken.stdout
    fix = ("  fix: create it in Slack, or fix the entry where it is named ([slack] invite in ir.toml, a playbook's "
           "invite list); the bot needs the usergroups:read and users:read.email scopes to find groups and addresses")
    assert broken.stdout.splitlines()[-6:] == [
        "✓ slack: invite dana@example.com found", "✗ slack: invite @nobody: no Slack user group @nobody", fix,
        "✗ slack: invite ghost@example.com: users_not_found", fix,
        "✓ slack: invite U0DANA: a user id, used as it is (not looked up)"]
    slack_server.fail("users.lookupByEmail", "server_error")  # a service in trouble is a finding, not a crash
    down = run_ir("integrations", "check", "--playbook", "live", env=live)
    assert down.returncode == 1 and down.stderr == ""
    assert "✗ slack: invite dana@example.com: Slack answered HTTP 500" in down.stdout.splitlines()

    # Both kinds of credential: a site that is not *.atlassian.net is taken for Server / Data Center, and says so
    pat = run_ir("integrations", "check", env={**live, "JIRA_PAT": "left-over"})
    assert pat.stdout.splitlines()[0] == ("✓ jira: credentials: JIRA_PAT (JIRA_USER and JIRA_API_TOKEN are set too, "
                                          "and not used)")
    assert "left-over" not in pat.stdout + pat.stderr

    bare = run_ir("integrations", "check")
    assert bare.returncode == 1
    assert bare.stdout.splitlines() == [
        "✗ jira: not configured: actions are shown and recorded, not sent",
        "  fix: set JIRA_URL, and JIRA_USER with JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/DC)",
        "✗ slack: not configured: actions are shown and recorded, not sent",
        "  fix: set SLACK_BOT_TOKEN to a bot token (xoxb-...) to send to Slack",
    ]


def test_retry_after_reads_seconds_and_http_dates_and_never_crashes():
    """RFC 9110 allows delay-seconds or an HTTP-date; a malformed header gives the default wait (it was a crash)."""
    assert retry_after("45") == 45.0 and retry_after(None) == 1.0 and retry_after("soon") == 1.0
    assert retry_after("-5") == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < retry_after(later) <= 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now
