"""Delivery as real workspaces and projects answer (issue 12): a failure holds back only what needs it, partial
success is success with a warning and is never redone, an outcome stays unknown until a lookup that answered says
otherwise, and the run retries what failed while it is open, at once when `ir flush` asks."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IR
from runs import incident_id, timeline

LANES = """\
id: lanes
title: Lanes
version: "1.0.0"
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis,
     invite: ["@no-such-group", dana@example.com, ghost@example.com]}
  - {id: status, kind: notify, action: status, title: Post the status, phase: detection-analysis}
  - {id: brief, kind: notify, title: Brief leadership, phase: detection-analysis, channel: "#leadership",
     message: "Brief"}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared"}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis, summary: Beacon}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment, comment: "Contain now"}
  - {id: task, kind: ticket, action: task, title: Reimage task, phase: eradication, summary: "Reimage hosts"}
"""
WAITING = LANES.replace("id: lanes", "id: waiting").replace(
    '  - {id: ticket,', '  - {id: wait, kind: manual, title: Wait, phase: detection-analysis, instructions: "Wait."}\n'
                       '  - {id: ticket,')


@pytest.fixture
def env(isolated: Path, slack_server, jira_server) -> dict[str, str]:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "lanes.yaml").write_text(LANES)
    (isolated / "playbooks" / "waiting.yaml").write_text(WAITING)
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\ntimeout = 1\n')
    slack_server.dana = slack_server.add_user("Dana Reyes", "dana@example.com")
    slack_server.add_channel("leadership", bot_is_member=False)
    return {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url,
            "JIRA_URL": jira_server.url, "JIRA_USER": jira_server.user, "JIRA_API_TOKEN": jira_server.token}


def outbox(run_ir, incident: str) -> dict[str, dict]:
    return {i["key"].split("/", 1)[1]: i for i in json.loads(run_ir("outbox", incident, "--json").stdout)}


def texts(slack_server, channel: str) -> list[str]:
    return [m["text"] for m in slack_server.messages(channel)]


def test_a_failure_holds_back_only_what_needs_it(run_ir, env, isolated, slack_server, jira_server):
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\nissue_type = "Bug"\n')
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    items = outbox(run_ir, incident)
    assert {key: i["status"] for key, i in items.items()} == {
        "channel/create_channel": "done", "status/status": "done", "brief/post": "failed", "announce/post": "done",
        "ticket/create": "failed", "comment/comment": "pending", "task/task": "done"}
    channel = f"ir-{incident.lower()}"
    assert texts(slack_server, channel)[1:] == ["Declared"]  # after the status; #leadership's refusal held nothing
    lines = result.stdout.splitlines()
    assert ("slack notify.post failed (not_in_channel); what goes to its #leadership waits, retried in 5 s while "
            f"this run is open; `ir flush {incident}` retries now") in lines
    assert ("jira ticket.create failed (Jira refused it (HTTP 400): valid issue type is required); what acts "
            f"on the incident ticket waits, retried in 5 s while this run is open; `ir flush {incident}` "
            "retries now") in lines
    tasks = [i for i in jira_server.issues.values() if i["fields"]["issuetype"]["name"] == "Task"]
    assert [t["fields"]["summary"] for t in tasks] == ["Reimage hosts"]
    assert f"jira ticket.task: done, but {tasks[0]['key']} is not linked to the incident ticket, which does not " \
           "exist yet: link them by hand once it does" in lines

    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\n')  # the fix
    flushed = run_ir("flush", incident, env=env)
    assert flushed.returncode == 1  # #leadership still refuses
    items = outbox(run_ir, incident)
    assert (items["ticket/create"]["status"], items["comment/comment"]["status"]) == ("done", "done")
    assert items["brief/post"]["status"] == "failed"
    incidents = [i for i in jira_server.issues.values() if i["fields"]["issuetype"]["name"] == "Incident"]
    assert len(incidents) == 1 and len(jira_server.comments(incidents[0]["key"])) == 1
    assert len(tasks) == 1


def test_invitees_slack_cannot_find_are_named_once_and_the_channel_is_used(run_ir, env, slack_server):
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    channel = slack_server.channels[f"ir-{incident.lower()}"]
    assert slack_server.dana in channel["members"]
    fix = ("fix the entry in [slack] invite in ir.toml or in the playbook (a user group's @handle, an e-mail "
           "address of a Slack account, or a user id), then invite them by hand")
    warnings = [line for line in result.stdout.splitlines() if "was not invited" in line]
    assert warnings == [f"slack notify.create_channel: done, but @no-such-group was not invited (no Slack user group "
                        f"@no-such-group): {fix}",
                        f"slack notify.create_channel: done, but ghost@example.com was not invited (users_not_found): "
                        f"{fix}"]
    done = next(e for e in timeline(run_ir, incident) if e["kind"] == "integration.done"
                and e["data"]["action"] == "notify.create_channel")
    assert done["message"].count("was not invited") == 2
    assert outbox(run_ir, incident)["channel/create_channel"]["status"] == "done"
    assert texts(slack_server, f"ir-{incident.lower()}")[1:] == ["Declared"]


def test_one_invitee_already_there_does_not_drop_the_others(run_ir, env, slack_server):
    """Slack refuses the whole invite for one user already in the channel (`already_in_channel`, as after a create
    done again): the others are invited one by one (taking the refusal for success dropped them all)."""
    lee = slack_server.add_user("Lee Park", "lee@example.com")
    slack_server.add_usergroup("secops", "Security operations", (slack_server.dana, lee))
    playbook = LANES.replace('["@no-such-group", dana@example.com, ghost@example.com]', '[dana@example.com, "@secops"]')
    Path("playbooks/lanes.yaml").write_text(playbook)
    slack_server.fail("conversations.invite", "error", error="already_in_channel")  # the batch, refused whole
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    assert {slack_server.dana, lee} <= set(slack_server.channels[f"ir-{incident.lower()}"]["members"])
    assert "was not invited" not in result.stdout
    assert len(slack_server.calls("conversations.invite")) == 3  # the batch, then each of the two


def test_a_status_whose_pin_is_refused_is_posted_once_with_a_warning(run_ir, env, slack_server):
    slack_server.fail("pins.add", "error", error="missing_scope")
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    assert ("slack notify.status: done, but the status message was not pinned (missing_scope): give the bot the "
            "pins:write scope") in result.stdout.splitlines()
    assert run_ir("flush", incident, env=env).returncode == 1  # only #leadership is left, and still refused
    channel = f"ir-{incident.lower()}"
    assert len([m for m in slack_server.messages(channel) if m["text"].startswith("*Lanes*")]) == 1
    assert slack_server.pins(channel) == []


def test_a_task_whose_link_fails_is_created_once(run_ir, env, jira_server):
    jira_server.fail("POST /rest/api/2/issueLink", "server_error")
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    run_ir("flush", incident, env=env)
    tasks = [i for i in jira_server.issues.values() if i["fields"]["issuetype"]["name"] == "Task"]
    assert len(tasks) == 1
    assert f"jira ticket.task: done, but {tasks[0]['key']} is not linked to IR-1 (Jira answered 500: Internal server error): link " \
           "them by hand" in result.stdout.splitlines()


def test_a_refused_lookup_leaves_the_outcome_unknown_and_sends_nothing_again(run_ir, env, slack_server):
    slack_server.fail("chat.postMessage", "drop_after_commit")  # the status post went through, its reply was lost
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    assert outbox(run_ir, incident)["status/status"]["status"] == "unknown"
    slack_server.fail("conversations.history", "error", error="missing_scope")  # the bot may not read the channel
    refused = run_ir("flush", incident, env=env)
    assert refused.returncode == 1
    item = outbox(run_ir, incident)["status/status"]
    assert (item["status"], item["error"]) == ("unknown", "could not check whether it went through: missing_scope")
    channel = f"ir-{incident.lower()}"
    assert len([m for m in slack_server.messages(channel) if m["text"].startswith("*Lanes*")]) == 1
    answered = run_ir("flush", incident, env=env)
    assert outbox(run_ir, incident)["status/status"]["status"] == "done", answered.stdout
    assert len([m for m in slack_server.messages(channel) if m["text"].startswith("*Lanes*")]) == 1


def waiting_run(env: dict[str, str]) -> subprocess.Popen[str]:
    """`ir run waiting` held at its manual step (its standard input stays open), as a responder at the prompt."""
    process = subprocess.Popen([*IR, "run", "waiting"], env={**os.environ, **env},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None
    # the four notify steps before the manual one go on by themselves (input that is not a terminal: no pause)
    return process


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def announced(slack_server) -> bool:
    return any("Declared" in texts(slack_server, name) for name in slack_server.channels if name.startswith("ir-"))


def test_the_run_retries_a_failed_lane_while_the_responder_is_at_a_prompt(run_ir, env, slack_server):
    slack_server.fail("chat.postMessage", "error", error="channel_not_found")  # the status: refused, retried in 5 s
    process = waiting_run(env)
    try:
        assert wait_for(lambda: announced(slack_server), 30), "the run did not retry its incident channel"
    finally:
        out, err = process.communicate(input="", timeout=60)
    incident = incident_id(subprocess.CompletedProcess([], 0, out, err))
    assert outbox(run_ir, incident)["status/status"]["status"] == "done"
    posted = texts(slack_server, f"ir-{incident.lower()}")
    assert len(posted) == 2 and posted[0].startswith("*Lanes*") and posted[1] == "Declared"
    kinds = [e["kind"] for e in timeline(run_ir, incident) if e["step"] == "status" and
             e["kind"].startswith("integration.")]
    assert kinds == ["integration.requested", "integration.failed", "integration.done"]


def test_flush_during_a_run_makes_that_run_retry_now(run_ir, env, slack_server):
    slack_server.fail("chat.postMessage", "ratelimit", retry_after=300)  # the status: retried in 300 s
    process = waiting_run(env)
    try:
        assert wait_for(lambda: any(c for c in slack_server.calls("chat.postMessage")), 30)
        incident = json.loads(run_ir("incidents", "--json").stdout)[0]["id"]
        assert wait_for(lambda: outbox(run_ir, incident)["status/status"]["status"] == "failed", 30)
        asked = run_ir("flush", incident, env=env)
        assert asked.returncode == 0, asked.stderr
        assert "that run was asked to retry its undelivered actions now" in asked.stdout
        assert wait_for(lambda: outbox(run_ir, incident)["status/status"]["status"] == "done", 15)
    finally:
        process.communicate(input="", timeout=60)
    assert len([m for m in slack_server.messages(f"ir-{incident.lower()}") if m["text"].startswith("*")]) == 1


def test_the_responder_skips_an_action_and_retries_one(run_ir, env, isolated, slack_server, jira_server):
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\nissue_type = "Bug"\n')
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    incident = incident_id(result)
    brief, ticket = f"{incident}/brief/post", f"{incident}/ticket/create"

    skipped = run_ir("outbox", "skip", brief, "--reason", "read out on the bridge call", env=env)
    assert (skipped.returncode, skipped.stdout) == (0, f"{brief}: skipped\n"), skipped.stderr
    again = run_ir("outbox", "skip", brief, "--reason", "twice", env=env)
    assert (again.returncode, again.stderr) == (1, f"error: {brief} is skipped: only an undelivered action can be "
                                                   "retried or skipped\n")
    event = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.skipped"]
    assert [(e["actor"], e["data"]["reason"]) for e in event] == [("tester", "read out on the bridge call")]
    assert "was skipped by tester: read out on the bridge call" in run_ir(
        "export", incident, "--format", "markdown").stdout.replace("\n  ", " ")  # a follow-up wrapped at 80 columns

    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\n')
    retried = run_ir("outbox", "retry", ticket, env=env)
    assert (retried.returncode, retried.stdout) == (0, f"{ticket}: done\n"), retried.stderr
    items = outbox(run_ir, incident)
    assert (items["ticket/create"]["status"], items["comment/comment"]["status"]) == ("done", "pending")
    assert run_ir("flush", incident, env=env).returncode == 0  # the comment; the skipped brief is never sent
    assert outbox(run_ir, incident)["comment/comment"]["status"] == "done"
    assert texts(slack_server, "leadership") == []
    assert run_ir("verify", incident).returncode == 0
    missing = run_ir("outbox", "retry", f"{incident}/nothing/post")
    assert (missing.returncode, missing.stderr) == (1, f"error: no integration action '{incident}/nothing/post'\n"
                                                       "  fix: `ir outbox INCIDENT` lists the keys\n")


def test_a_channel_in_ir_toml_gets_what_the_playbook_sends_it_once_and_nothing_else(run_ir, env, isolated,
                                                                                  slack_server):
    """`channels` maps a playbook's channel to the workspace's (with or without #); it used to copy every post there,
    which sent a leadership brief twice and every incident-channel message to leadership."""
    slack_server.add_channel("sec-leads")
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\nchannels = { "#leadership" = "sec-leads" }\n')
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    assert texts(slack_server, "sec-leads") == ["Brief"]
    assert texts(slack_server, "leadership") == []
    assert texts(slack_server, f"ir-{incident.lower()}")[1:] == ["Declared"]
    assert outbox(run_ir, incident)["brief/post"]["payload"]["channel"] == "#sec-leads"
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\nchannels = ["leadership"]\n')  # a list: as they are
    listed = run_ir("run", "lanes", "--non-interactive", env=env)
    assert outbox(run_ir, incident_id(listed))["brief/post"]["payload"]["channel"] == "#leadership"


def test_a_queued_post_is_sent_to_another_channel_and_the_change_is_recorded(run_ir, env, slack_server):
    slack_server.add_channel("sec-leads")
    result = run_ir("run", "lanes", "--non-interactive", env=env)
    incident = incident_id(result)
    brief = f"{incident}/brief/post"
    assert outbox(run_ir, incident)["brief/post"]["status"] == "failed"  # the bot is not in #leadership
    wrong = run_ir("outbox", "edit", brief, "--invite", "dana@example.com")
    assert (wrong.returncode, wrong.stderr) == (1, f"error: {brief} is a notify.post: only a create_channel "
                                                   "invites people\n")
    edited = run_ir("outbox", "edit", brief, "--channel", "#sec-leads")
    assert (edited.returncode, edited.stdout) == (0, f"{brief}: failed, now channel #sec-leads\n"), edited.stderr
    (event,) = [e for e in timeline(run_ir, incident) if e["kind"] == "integration.amended"]
    assert (event["data"]["was"], event["data"]["now"]) == ({"channel": "#leadership"}, {"channel": "#sec-leads"})
    assert run_ir("verify", incident).returncode == 0  # the new payload is sealed by its event
    assert run_ir("flush", incident, env=env).returncode == 0
    assert texts(slack_server, "sec-leads") == ["Brief"] and texts(slack_server, "leadership") == []


ROLES = """\
id: roles
title: Roles
version: "1.0.0"
roles: [{id: commander, title: Incident commander}]
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis,
     invite: ["{{ roles.commander }}"]}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis,
     message: "Commander: {{ roles.commander }}"}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis, summary: Roles}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment,
     comment: "Commander: {{ roles.commander }}"}
"""


def test_a_role_holder_typed_as_a_name_is_found_in_slack_mentioned_and_invited(run_ir, env, isolated, slack_server,
                                                                              jira_server):
    (isolated / "playbooks" / "roles.yaml").write_text(ROLES)
    (isolated / "answers.yaml").write_text("roles:\n  commander: dana reyes\n")
    result = run_ir("run", "roles", "--non-interactive", "--answers", "answers.yaml", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    incident = incident_id(result)
    dana = slack_server.dana
    assert f"commander: dana reyes is Dana Reyes (@Dana Reyes, {dana}) in Slack" in result.stdout.splitlines()
    assert dana in slack_server.channels[f"ir-{incident.lower()}"]["members"]
    assert texts(slack_server, f"ir-{incident.lower()}") == [f"Commander: <@{dana}>"]
    (ticket,) = jira_server.issues
    assert jira_server.comments(ticket)[0].startswith("Commander: dana reyes\n")  # Jira gets the name
    assigned = [e for e in timeline(run_ir, incident) if e["kind"] == "role.assigned"]
    assert [(e["data"]["value"], e["data"]["slack"]) for e in assigned] == [("dana reyes", dana)]

    (isolated / "answers.yaml").write_text("roles:\n  commander: Nobody Here\n")
    refused = run_ir("run", "roles", "--non-interactive", "--answers", "answers.yaml", env=env)
    assert refused.returncode == 1
    assert "the value for roles.commander is refused: no Slack user is named Nobody Here: give their e-mail " \
           "address, @handle or user id" in refused.stderr


def test_a_ticket_that_arrives_after_the_status_was_posted_is_named_in_it(run_ir, env, isolated, slack_server,
                                                                          jira_server):
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\nissue_type = "Bug"\n')
    result = run_ir("run", "lanes", "--non-interactive", env=env)  # the ticket fails: the status says none yet
    incident = incident_id(result)
    channel = f"ir-{incident.lower()}"
    assert "Ticket: none yet" in texts(slack_server, channel)[0]
    (isolated / "ir.toml").write_text('[slack]\ntimeout = 1\n\n[jira]\nproject = "IR"\n')
    run_ir("flush", incident, env=env)
    status = texts(slack_server, channel)[0]
    (ticket,) = [key for key, issue in jira_server.issues.items() if issue["fields"]["summary"] == "Beacon"]
    assert f"|{ticket}>" in status and "none yet" not in status
    assert len(slack_server.calls("chat.update")) == 1


def test_a_role_prompt_asks_again_until_slack_finds_the_person(run_ir, env, isolated, slack_server):
    (isolated / "playbooks" / "roles.yaml").write_text(ROLES)
    typed = "Nobody Here\ndana@example.com\n" + "c\n\n" * 4  # the commander, then complete the four steps
    result = run_ir("run", "roles", input=typed, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    shown = " ".join(result.stdout.split())  # as the terminal wraps it
    assert "> no Slack user is named Nobody Here: give their e-mail address, @handle or user id Incident " \
           "commander: who?" in shown  # asked again, saying why
    assert f"commander: dana@example.com is Dana Reyes (@Dana Reyes, {slack_server.dana}) in Slack" in shown
    incident = incident_id(result)
    assert texts(slack_server, f"ir-{incident.lower()}") == [f"Commander: <@{slack_server.dana}>"]
