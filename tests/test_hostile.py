"""Hostile input (issue 13): what an attacker writes into a log line, a file name, a note or an answer goes
through the real CLI to every sink, and comes out harmless there. The payloads are files in tests/hostile/.

- the terminal: the output fed to a terminal emulator (pyte) sets no title, erases or rewrites no line, forges no
  line and plants no link; the payload is shown, escaped;
- Slack and Jira (the test servers): the text they receive has the payload escaped, while what the playbook itself
  writes (a `<!here>`, a role holder's mention) stays live;
- the reports: the Markdown rendered by markdown-it, and the HTML report, hold no element from input;
- CSV: a formula is a text cell (`--raw` keeps it as recorded).
"""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pyte
import pytest
from markdown_it import MarkdownIt

from ir import sinks

from runs import incident_id

HOSTILE = Path(__file__).with_name("hostile")
TERMINAL = sorted(p.name for p in HOSTILE.glob("terminal-*.txt"))
SLACK = sorted(p.name for p in HOSTILE.glob("slack-*.txt"))


def payload(name: str) -> str:
    return (HOSTILE / name).read_bytes().decode("utf-8")  # a carriage return stays one


PLAYBOOK = """\
id: hostile
title: Hostile input
version: "1.0.0"
incident_title: "Suspicious {{ inputs.host }}"
inputs: [{id: host, type: string}]
steps:
  - {id: log, kind: note, title: Log it, phase: detection-analysis, message: "seen on {{ inputs.host }}"}
  - {id: look, kind: manual, title: "Look at {{ inputs.host }}", phase: detection-analysis,
     instructions: "Check **{{ inputs.host }}**", checklist: ["Isolate {{ inputs.host }}"]}
"""


def screen(text: str) -> pyte.Screen:
    """What a terminal shows after `text` is written to it (a line feed returns the cursor, as a tty does)."""
    shown = pyte.Screen(400, 80)
    pyte.Stream(shown).feed(text.replace("\n", "\r\n"))
    return shown


def assert_harmless_on_a_terminal(output: str) -> list[str]:
    """The output sets no title and plants no link (no escape sequence at all), and every line written is on the
    screen as written: none erased, overwritten or moved. Returns the lines."""
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", output), repr(output)
    shown = screen(output)
    assert shown.title == ""
    written = output.splitlines()
    assert [line.rstrip() for line in shown.display[:len(written)]] == [line.rstrip() for line in written]
    return written


@pytest.fixture
def hostile_incident(run_ir, write_playbook):
    """Run the playbook with a payload as its input, and return (incident id, the run's output)."""

    def start(name: str) -> tuple[str, str]:
        write_playbook("playbooks/hostile.yaml", PLAYBOOK)
        result = run_ir("run", "hostile", "--non-interactive", "--var", f"host={payload(name)}")
        assert result.returncode == 0, result.stderr + result.stdout
        return incident_id(result), result.stdout + result.stderr

    return start


@pytest.mark.parametrize("name", TERMINAL)
def test_the_terminal_shows_hostile_text_escaped_one_event_one_line(run_ir, hostile_incident, name):
    incident, run_output = hostile_incident(name)
    assert_harmless_on_a_terminal(run_output)
    noted = run_ir("note", incident, payload(name))
    assert noted.returncode == 0, noted.stderr
    shown = run_ir("timeline", incident)
    lines = assert_harmless_on_a_terminal(shown.stdout)
    events = run_ir("timeline", incident, "--json").stdout.splitlines()
    assert len(lines) == len(events)  # one event, one line: a newline in a message forges none
    assert [int(line.split()[0]) for line in lines] == list(range(1, len(events) + 1))
    assert lines[-1].endswith(f"tester: note {sinks.terminal(payload(name))}")
    for command in (["status", incident], ["incidents"]):
        result = run_ir(*command)
        assert result.returncode == 0, result.stderr
        assert_harmless_on_a_terminal(result.stdout)
        title = sinks.terminal(f"Suspicious {payload(name)}").split()  # as rich wraps it, or not
        assert " ".join(title) in " ".join(result.stdout.split())


def test_an_untrusted_playbook_title_cannot_relabel_its_list_row(run_ir, write_playbook):
    forged = "Fine\r\x1b[2Kincident-triage  1.0.0  Incident triage  bundled (trusted)"
    write_playbook("playbooks/hostile.yaml", PLAYBOOK.replace("title: Hostile input", f'title: "{forged!s}"')
                   .replace("\r", "\\r").replace("\x1b", "\\e"))
    result = run_ir("list")
    assert result.returncode == 0, result.stderr
    lines = assert_harmless_on_a_terminal(result.stdout)
    row = next(line for line in lines if line.startswith("hostile "))
    assert "Fine\\r\\x1b[2Kincident-triage" in row and row.endswith("playbooks/hostile.yaml")
    shown = run_ir("show", "hostile")
    assert_harmless_on_a_terminal(shown.stdout)


def test_a_person_at_the_terminal_sees_hostile_input_escaped(run_ir, write_playbook):
    write_playbook("playbooks/hostile.yaml", PLAYBOOK)
    host = payload("terminal-osc0-title.txt") + payload("terminal-erase-line.txt")
    result = run_ir("run", "hostile", "--var", f"host={host}", input="y\nc\n\n")
    assert result.returncode == 0, result.stderr + result.stdout
    assert_harmless_on_a_terminal(result.stdout)
    assert "\\x1b]0;ir: all clear\\x07host-7web01\\r\\x1b[2K" in result.stdout


LOUD = """\
id: loud
title: Loud
version: "1.0.0"
incident_title: "Alert on {{ inputs.host }}"
severity: high
roles: [{id: commander, title: Incident commander}]
inputs: [{id: host, type: string}]
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: status, kind: notify, action: status, title: "Status of {{ inputs.host }}", phase: detection-analysis}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis,
     message: "<!here> *{{ inputs.host }}* is down; commander {{ roles.commander }}"}
  - {id: brief, kind: notify, title: Brief, phase: detection-analysis, channel: "#security-leadership",
     message: "<!here> *{{ inputs.host }}* is down; commander {{ roles.commander }}"}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis,
     summary: "{{ incident.title }}", description: "Host {{ inputs.host }}"}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment,
     comment: "*Seen* on {{ inputs.host }}"}
"""


@pytest.fixture
def loud(isolated: Path, run_ir, slack_server, jira_server):
    """Run the loud playbook live against the test servers with `host` as its input."""
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "loud.yaml").write_text(LOUD)
    (isolated / "ir.toml").write_text('[slack]\nchannels = { security-leadership = "leadership" }\n\n'
                                      '[jira]\nproject = "IR"\n')
    (isolated / "answers.yaml").write_text("roles:\n  commander: \"<@U777>\"\n")
    slack_server.add_channel("leadership")
    env = {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url,
           "JIRA_URL": jira_server.url, "JIRA_USER": jira_server.user, "JIRA_API_TOKEN": jira_server.token}

    def run(host: str) -> str:
        result = run_ir("run", "loud", "--non-interactive", "--answers", "answers.yaml", "--var", f"host={host}",
                        env=env)
        assert result.returncode == 0, result.stderr + result.stdout
        return incident_id(result)

    return run


@pytest.mark.parametrize("name", SLACK)
def test_slack_receives_hostile_input_escaped_and_the_playbooks_own_mentions_live(loud, slack_server, name):
    host = payload(name)
    incident = loud(host)
    escaped = host.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    announce = f"<!here> *{escaped}* is down; commander <@U777>"
    for channel in (f"ir-{incident.lower()}", "leadership"):
        texts = [m["text"] for m in slack_server.messages(channel)]
        assert announce in texts
        for message in slack_server.messages(channel):
            assert host not in message["text"].removeprefix("<!here> ")  # the playbook's own, live
            for block in message.get("blocks") or []:
                for part in [block.get("text") or {}, *block.get("elements", [])]:
                    assert host not in part.get("text", "").removeprefix("<!here> "), block
    status = slack_server.messages(f"ir-{incident.lower()}")[0]
    assert status["text"].startswith(f"*Alert on {escaped}* ({incident})")
    context = status["blocks"][1]["elements"][0]["text"]  # the incident, the step, the timeline's head as it was sent
    assert re.fullmatch(f"{re.escape(incident)} · Status of {re.escape(escaped)} · ir timeline #\\d+ [0-9a-f]{{16}}",
                        context), context


@pytest.mark.parametrize("name", ["jira-link.txt", "jira-html.txt"])
def test_jira_receives_hostile_input_with_its_wiki_markup_escaped(loud, jira_server, name):
    host = payload(name)
    incident = loud(host)
    (issue,) = jira_server.issues.values()
    escaped = sinks.jira(host)
    assert sinks.jira("[link|http://evil]") == "\\[link\\|http://evil\\]"
    assert issue["fields"]["description"].startswith(f"Host {escaped}\n\nOpened by ir for incident {incident}")
    assert issue["fields"]["summary"] == f"Alert on {host}"  # a summary is plain text in Jira, not wiki markup
    (comment,) = jira_server.comments(issue["key"])
    assert comment.startswith(f"*Seen* on {escaped}\n")
    for body in (issue["fields"]["description"], comment):
        assert "{html}" not in body and "[link|" not in body


class Elements(HTMLParser):
    """The start tags of an HTML document, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def test_the_reports_hold_no_element_from_input(run_ir, hostile_incident, isolated):
    incident, _ = hostile_incident("jira-html.txt")
    evidence = isolated / payload("markdown-file-name.txt")
    evidence.write_text("log\n")
    assert run_ir("evidence", incident, str(evidence)).returncode == 0
    for name in ("markdown-file-name.txt", "slack-link.txt", "jira-link.txt"):
        assert run_ir("note", incident, payload(name)).returncode == 0
    markdown = run_ir("export", incident, "--format", "markdown").stdout
    assert sinks.markdown_code(evidence) in markdown
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    html = run_ir("export", incident, "--format", "html").stdout
    for document in (rendered, html):
        tags = elements(document)
        assert not [t for t in tags if t[0] in ("img", "script", "iframe", "object")], document
        assert not [t for t in tags if any(name.startswith("on") for name in t[1])]
        assert not [t for t in tags if "evil" in (t[1].get("href") or "")]
    assert "report``<img src=x onerror=alert(1)>``.txt" in "".join(
        re.findall(r"<code>(.*?)</code>", rendered)).replace("&lt;", "<").replace("&gt;", ">")


@pytest.mark.parametrize("mark", ["#", "-", "+", ">", "=", "---", "~~~", "1.", "1)", "- [ ]"])
def test_free_text_wrapped_in_the_markdown_report_starts_no_block_on_any_of_its_lines(mark):
    """Found in review: the report wraps prose and list items at 80 columns, and a word of recorded text that the
    wrap put at the start of a line began a block there (a heading, a sub-list, a quote, a setext underline that
    made the line before a heading; a setext underline is a line of its own: the text's last word)."""
    from ir.export.markdown import text, wrap

    md = MarkdownIt("commonmark")
    for before in range(1, 40):
        said = f"{'x' * before} {'word ' * 14}{mark}" + ("" if mark in ("=", "---") else " tail of the note")
        for lines, shape in ((wrap(text(said), "- ", "  "), ["ul", "li"]), (wrap(text(said)), ["p"])):
            html = md.render("\n".join(lines))
            assert [tag for tag, _ in elements(html)] == shape, (lines, html)
            assert " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split()) == said


def test_markdown_code_spans_cannot_be_closed_from_inside():
    md = MarkdownIt("commonmark")
    for text in ("a`b", "a``b", "```", "`x` <img src=x onerror=1>", " `lead", "trail` "):
        html = md.render(f"x {sinks.markdown_code(text)} y").strip()
        assert not [t for t in elements(html) if t[0] not in ("p", "code")], html
        assert html.count("<code>") == 1


def test_csv_exports_neutralise_formulas_unless_raw(run_ir, hostile_incident):
    incident, _ = hostile_incident("slack-here.txt")
    formula = payload("csv-hyperlink.txt")
    for text in (formula, "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert run_ir("note", incident, "--", text).returncode == 0
    for fmt, shown in (("csv", f"'{formula}"), ("timesketch-csv", f"note: {formula}")):
        rows = list(csv.DictReader(io.StringIO(run_ir("export", incident, "--format", fmt).stdout)))
        cells = [cell for row in rows for cell in row.values()]
        assert not [c for c in cells if c and c[0] in "=+-@\t\r"], fmt
        assert shown in [row["message"] for row in rows]
    raw = list(csv.DictReader(io.StringIO(run_ir("export", incident, "--format", "csv", "--raw").stdout)))
    messages = [row["message"] for row in raw]
    assert messages[messages.index(formula):][:5] == [formula, "+1", "-1", "@SUM(A1)", "\tx"]


def test_the_payload_corpus_is_there():
    """The parametrised tests above take their cases from tests/hostile/: an empty glob would skip them all."""
    assert len(TERMINAL) >= 4 and len(SLACK) >= 4


def test_the_terminal_sink_shows_line_separators_and_bidi_marks():
    """U+2028 and U+2029 break a line in some terminals and U+061C reorders text: shown, like other controls."""
    assert sinks.terminal("web\u202801\u061c\u2029") == "web\\u202801\\u061c\\u2029"
    assert sinks.terminal("a\u2028b", one_line=False) == "a\\u2028b"


def test_a_link_in_instructions_shows_its_address_and_a_playbook_default_is_escaped(run_ir, write_playbook):
    """rich renders a Markdown link as an OSC 8 hyperlink whose text hides its target; the runner prints the
    address instead. A default or example from someone else's playbook reaches the prompt escaped."""
    write_playbook("playbooks/linky.yaml", """\
        id: linky
        title: Linky
        version: "1.0.0"
        inputs: [{id: host, type: string, default: "web\\e]0;pwned\\a01"}]
        steps:
          - {id: look, kind: manual, title: Look, phase: detection-analysis,
             instructions: "[the vendor's page](https://evil.example/steal)"}
        """)
    result = run_ir("run", "linky", input="\nc\n\n")
    assert result.returncode == 0, result.stderr + result.stdout
    assert_harmless_on_a_terminal(result.stdout)
    assert "\x1b]8;" not in result.stdout and "https://evil.example/steal" in result.stdout
    assert "default: web\\x1b]0;pwned\\x0701" in result.stdout


def test_a_role_holder_that_is_not_a_mention_is_escaped_in_slack(loud, slack_server, isolated):
    """Only a role holder given as a user mention (`<@U777>`), or found in Slack (then mentioned by id), is live; a
    name with a broadcast in it is text, where it is shown, and never reaches Slack as one."""
    dana = slack_server.add_user("Dana <!channel>", "dana@example.com")  # a display name is the user's to choose
    (isolated / "answers.yaml").write_text('roles:\n  commander: "Dana <!channel>"\n')
    incident = loud("web01")
    texts = [m["text"] for m in slack_server.messages(f"ir-{incident.lower()}")]
    assert f"<!here> *web01* is down; commander <@{dana}>" in texts
    assert not any("<!channel>" in text for text in texts)


def test_an_included_playbooks_title_is_shown_as_text_in_the_step_heading(run_ir, write_playbook):
    """Found in review: the heading names the included playbook, and its title went to rich as markup: `[/]` was
    an internal error, `[link=...]` a live link."""
    write_playbook("playbooks/outer.yaml", """\
        id: outer
        title: Outer
        version: "1.0.0"
        steps:
          - {id: inner, kind: include, title: Inner, phase: detection-analysis, playbook: inner}
        """)
    write_playbook("playbooks/inner.yaml", """\
        id: inner
        title: "Inner [/] [link=https://evil.example]click[/link] [bold red]"
        version: "1.0.0"
        steps:
          - {id: look, kind: manual, title: Look, phase: detection-analysis, instructions: Look.}
        """)
    result = run_ir("run", "outer", "--dry-run", input="c\n", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Inner [/] [link=https://evil.example]click[/link] [bold red] 1/1" in result.stdout
    assert_harmless_on_a_terminal(result.stdout)
