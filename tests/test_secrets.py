"""A secret in every form it takes (the token, its start and end, `Basic base64(user:token)` at any alignment,
Bearer, URL userinfo) is redacted in every message before it is stored or printed: the Jira test server echoes
them in its error bodies, and no file under IR_HOME and no output holds any of them afterwards (issue 13)."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest
from test_integrations import live, run_live  # noqa: F401 - the live playbook and its environment

from ir.redact import redact

from runs import incident_id

TOKEN = "SENTINEL-jira-0042-f00dcafe"


def test_the_tokens_are_the_secrets_and_the_addresses_and_the_user_are_not():
    """What ir redacts wherever it writes: the tokens. The addresses and the Jira user are said in messages (`cannot
    reach https://...`), so they are not secrets."""
    from ir.config import Secrets

    env = {"SLACK_BOT_TOKEN": "xoxb-1", "IR_SLACK_BASE_URL": "http://127.0.0.1:9/api/", "JIRA_URL": "https://a.example",
           "JIRA_USER": "ic@a.example", "JIRA_API_TOKEN": "atl-2", "JIRA_PAT": "pat-3"}
    assert sorted(Secrets.from_env(env).values()) == ["atl-2", "pat-3", "xoxb-1"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(user: str) -> list[str]:
    """Every form of the token a scan must not find: itself, its base64 (alone and with the user), its ends."""
    basic = b64(f"{user}:{TOKEN}")
    return [TOKEN, b64(TOKEN), basic, basic.rstrip("="), TOKEN[-8:], TOKEN[-12:], TOKEN[:10],
            base64.urlsafe_b64encode(f"{user}:{TOKEN}".encode()).decode()]


def echo(user: str) -> str:
    """An error body as a careless proxy writes it: the request's headers and URL quoted back."""
    return (f"bad credentials: Authorization: Basic {b64(f'{user}:{TOKEN}')}; retried with Bearer {TOKEN}; "
            f"via https://{user}:{TOKEN}@proxy.example/rest; token ending …{TOKEN[-9:]}; "
            f"trace {b64('x' + user + ':' + TOKEN + ' trailing')}")


@pytest.mark.parametrize("text", [
    f"Basic {b64('dana@example.com:' + TOKEN)}", f"Bearer {TOKEN}", f"https://dana:{TOKEN}@jira.example/",
    f"blob {b64('ab' + TOKEN + 'cd')} end", f"…{TOKEN[-8:]}", f"{TOKEN[:12]}…", f"token={TOKEN}"])
def test_every_form_of_a_secret_is_redacted(text):
    out = redact(text, [TOKEN])
    assert "[secret]" in out
    assert not any(form in out for form in leaks("dana@example.com")), out


def test_redacting_leaves_other_text_alone():
    assert redact("Jira refused it (HTTP 400): Field 'due' is invalid", [TOKEN]) == \
        "Jira refused it (HTTP 400): Field 'due' is invalid"
    prose = "add pins:write to the app's bot token scopes; the token lacks it; Bearer tokens expire"
    assert redact(prose, [TOKEN]) == prose  # a word after "token" is not a credential
    assert redact("Authorization: Bearer 9f8e7d6c5b4a", []) == "Authorization: Bearer [secret]"  # one unknown to ir
    # a secret as short as a letter is hidden where it stands alone, not inside every word ("pro[secret]y")
    assert redact("check IR_SLACK_BASE_URL if you use a proxy; the token was x.", ["x"]) == \
        "check IR_SLACK_BASE_URL if you use a proxy; the token was [secret]."


def scan(root: Path, outputs: list[str], user: str) -> None:
    written = [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    for form in leaks(user):
        assert not any(form in text for text in outputs), form
        assert not any(form.encode() in data for data in written), form


def test_an_echoed_token_is_in_no_file_and_no_output(run_ir, live, jira_server, isolated):  # noqa: F811
    jira_server.token = TOKEN
    env = {**live, "JIRA_API_TOKEN": TOKEN}
    jira_server.fail("POST /rest/api/2/issue/{issueIdOrKey}/comment", "error", error=echo(jira_server.user))
    result = run_live(run_ir, env)
    assert result.returncode == 0, result.stdout + result.stderr
    incident = incident_id(result)
    assert "jira ticket.comment failed (Jira refused it (HTTP 400): bad credentials: Authorization: Basic [secret]" \
        in result.stdout
    outputs = [result.stdout, result.stderr]
    jira_server.fail("GET /rest/api/2/project/{projectIdOrKey}", "error", error=echo(jira_server.user))
    for args in (["flush", incident], ["timeline", incident], ["timeline", incident, "--json"], ["outbox", "--json"],
                 ["status", incident], ["integrations", "check"], ["export", incident, "--format", "json"],
                 ["export", incident, "--format", "html"], ["incidents", "--json"]):
        done = run_ir(*args, env=env)
        outputs += [done.stdout, done.stderr]
    assert any("project IR: Jira refused it (HTTP 400): bad credentials: Authorization: Basic [secret]" in text
               for text in outputs)
    scan(isolated.parent, outputs, jira_server.user)


def test_credentials_in_jira_url_are_refused_and_never_shown(run_ir, live, jira_server, isolated):  # noqa: F811
    url = jira_server.url.replace("://", f"://{jira_server.user}:{TOKEN}@")
    env = {**live, "JIRA_URL": url}
    for args in (["integrations", "check"], ["run", "live", "--non-interactive"]):
        result = run_ir(*args, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "error: JIRA_URL holds credentials (user:password@ before the host); they are not used or shown" \
            in result.stderr
        assert "set JIRA_URL to the address alone" in result.stderr
        scan(isolated.parent, [result.stdout, result.stderr], jira_server.user)
    assert not jira_server.issues


SLACK_TOKEN = "xoxb-SENTINEL-slack-0042-beefcafe"


def forms(secret: str) -> list[str]:
    """A secret as a careless write would hold it: whole, its ends, percent-encoded, and its base64 at each of the
    three alignments (the part of the encoding made of the secret's bytes only, found inside any larger blob)."""
    aligned = [base64.b64encode(b"a" * k + secret.encode()).decode()[4:-4] for k in range(3)]
    return [secret, secret[-8:], secret[-12:], secret[:12], quote(secret, safe=""), *aligned,
            base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")]


def test_no_form_of_either_token_is_in_any_byte_ir_writes(run_ir, live, slack_server, jira_server, isolated):  # noqa: F811
    """Every byte under the test's root (the store with its outbox payloads and refs, the -wal, the logs, the
    exports and the report the close uploads) and every output, after a live run that posts, files, fails,
    retries and closes."""
    slack_server.token, jira_server.token = SLACK_TOKEN, TOKEN
    env = {**live, "SLACK_BOT_TOKEN": SLACK_TOKEN, "JIRA_API_TOKEN": TOKEN}
    slack_server.fail("chat.postMessage", "server_error")  # left in the outbox, then flushed
    result = run_live(run_ir, env)
    assert result.returncode == 0, result.stdout + result.stderr
    incident = incident_id(result)
    outputs = [result.stdout, result.stderr]
    for args in (["flush", incident], ["outbox", "--json"], ["timeline", incident, "--json"],
                 *(["export", incident, "--format", fmt, "-o", f"export.{fmt}"] for fmt in ("json", "html", "markdown")),
                 ["verify", incident], ["close", incident, "--note", "done"],
                 ["integrations", "check", "--playbook", "live"]):
        done = run_ir(*args, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs += [done.stdout, done.stderr]
    assert slack_server.files and [m for m in slack_server.requests if SLACK_TOKEN in str(m.headers)]
    written = {p: p.read_bytes() for p in isolated.parent.rglob("*") if p.is_file()}
    assert any(p.name == "ir.db" for p in written) and any(p.name == "export.json" for p in written)
    for form in forms(SLACK_TOKEN) + forms(TOKEN):
        assert not [text for text in outputs if form in text], form
        assert not [p for p, data in written.items() if form.encode() in data], form
