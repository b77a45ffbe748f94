"""The post-incident report as leadership reads it (issue 16): names that never wrap letter by letter, Slack's
markup rendered as text, the integration actions not sent in one line, the roles nobody held in one line, every
duration from when things happened with the recording times beside it. Markdown is read with markdown-it-py
and kept to 80 columns where its text allows; the HTML is laid out by a real headless Chromium, measured and
photographed, with no request made."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from test_export import browse, chromium, loaded_resources, page_requests, pixels

from ir.export.report import plain
from ir.run.incidents import open_incident
from ir.store.records import Draft
from ir.store.sqlite import SqliteStore

LONG = "Maximiliana Oyelaran-Featherstonehaugh"  # a name as long as they come
ROLES = ("commander", "scribe", "liaison", "legal", "executive", "endpoint", "soc", "forensics", "network", "iam",
         "app_owner", "security_eng", "risk")
POSTED = ("*Status update: Compromised 3CX Desktop App* (severity high)\n*Now:* contained, see "
          "<https://wiki.example.com/ir/3cx|the runbook>; ping <@U024BE7LH> :rotating_light:\n"
          "_Next update by_ 16:00 in <#C0123|ir-3cx>, ~not~ before")
UNSENT = 31


def action(incident: str, n: int, integration: str, name: str, message: str, actor: str) -> list[Draft]:
    key = f"{incident}/step{n}/{name}"
    data = {"key": key, "integration": integration, "action": name}
    return [Draft("integration.requested", actor, f"{integration} {name} requested", phase="containment",
                  step=f"step{n}", data=data),
            Draft("integration.dry_run", actor, message, phase="containment", step=f"step{n}", data=data)]


@pytest.fixture
def leadership(isolated: Path) -> str:
    """A live incident whose Slack and Jira were not configured: 31 actions not sent, one real follow-up, one
    role of 13 held, milestones set afterwards at the moments they happened in 2023, people with long names."""
    store = SqliteStore()
    try:
        found = open_incident(store, "supply-chain", "2.0.0", "Compromised vendor software: 3CX Desktop App",
                              "high", {"supply-chain": b"id: supply-chain\n"}, "intake", actor=LONG, live=True).id
        store.record(found, [Draft("role.assigned", LONG, f"roles.{role} = ", data={
            "name": f"roles.{role}", "scope": "", "value": LONG if role == "commander" else None}) for role in ROLES])
        store.record(found, [
            Draft("milestone", "Sam Ortiz", "detected", "2023-03-22T10:00:00+00:00", "detection-analysis", "intake",
                  {"milestone": "detected"}),
            Draft("milestone", LONG, "declared", "2023-03-29T17:30:00-07:00", "detection-analysis", "declare",
                  {"milestone": "declared"}),
            Draft("milestone", LONG, "contained", "2023-03-31T09:15:00+02:00", "containment", "contain",
                  {"milestone": "contained"}),
            Draft("decision", LONG, "Is any affected build installed? -> Affected", None, "detection-analysis",
                  "affected", {"choice": "affected", "label": "Affected", "rationale": "six hosts run 18.12.416"}),
            Draft("note", "Sam Ortiz", "follow-up: rotate the vendor's API keys"),
        ])
        drafts = []
        for n in range(UNSENT):
            integration, name = ("slack", "notify.post") if n % 3 else ("jira", "ticket.comment")
            drafts += action(found, n, integration, name, f"would post to the incident channel: {POSTED}"
                             if integration == "slack" else "would comment on the incident ticket: Status \\*ok\\*",
                             LONG if n % 2 else "Sam Ortiz")
        store.record(found, drafts)
    finally:
        store.close()
    return found


def export(run_ir, found: str, fmt: str, *more: str) -> str:
    result = run_ir("export", found, "--format", fmt, *more)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n\n", 1)[1].split("\n## ", 1)[0]


RAW_SLACK = ("<@U", "<#C", "<https://", "|the runbook>", ":rotating_light:", "*Status update", "_Next update",
             "~not~", "&lt;", "\\*ok")


# Markdown --------------------------------------------------------------------------------------------------------
def test_the_markdown_report_reads_as_leadership_needs_it(run_ir, leadership):
    markdown = export(run_ir, leadership, "markdown")
    follow_ups = section(markdown, "Follow-up actions")
    assert follow_ups == (
        "- rotate the vendor's API keys\n"
        "- 31 integration action(s) were not sent (their integration was not configured):\n"
        "  11 jira ticket.comment, 20 slack notify.post; do by hand what they say (ir\n"
        f"  outbox {leadership} lists them)\n")
    assert "do it by hand" not in markdown
    tickets = section(markdown, "Tickets and channels")
    assert tickets.endswith("31 not sent (dry run): 11 jira ticket.comment, 20 slack notify.post; the\n"
                            "timeline shows what each would have sent.\n")
    assert "| slack | `notify.post` |" not in tickets  # no row per action not sent

    people = section(markdown, "Participants and roles")
    assert people.startswith(f"| Role | Who |\n| --- | --- |\n| `commander` | {LONG} |\n\nNot assigned: `scribe`, "
                             "`liaison`, `legal`, `executive`, `endpoint`, `soc`,\n`forensics`, `network`, `iam`, "
                             "`app_owner`, `security_eng`, `risk`.\n")
    assert "not assigned |" not in people

    milestones = section(markdown, "Milestones")
    measures = [line for line in milestones.splitlines() if line.startswith("| time to ")]
    assert measures[:2] == ["| time to declare | 7d 14h 30m | detected to declared | 0s |",
                            "| time to contain | 8d 21h 15m | detected to contained | 0s |"]
    assert measures[2:] == [f"| time to {what} | not reached | detected to {end} |  |" for what, end in (
        ("eradicate", "eradicated"), ("recover", "recovered"), ("close", "closed"))]
    assert "| Measure | Duration | Between | As recorded |" in milestones
    assert "| detected | 2023-03-22 10:00:00 UTC (recorded " in milestones

    # Read by a Markdown reader: the tables are tables, and none of Slack's markup is left in what it shows.
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert html.count("<table>") == markdown.count("\n| --- |") == 7  # roles, people, milestones, measures, timeline, decisions, notes
    shown = re.sub(r"<[^>]+>", "", html)
    for raw in RAW_SLACK:
        assert raw not in shown and raw not in markdown, raw
    assert ("slack notify.post dry-run: would post to the incident channel: Status update: Compromised 3CX Desktop "
            "App (severity high)<br>Now: contained, see the runbook (https://wiki.example.com/ir/3cx); ping "
            "@U024BE7LH<br>Next update by 16:00 in #ir-3cx, not before") in markdown

    # 80 columns wherever the text allows it: only a table's rows are longer.
    long = [line for line in markdown.splitlines() if len(line) > 80 and not line.startswith("|")]
    assert long == []


# HTML in Chromium ------------------------------------------------------------------------------------------------
MEASURE = """<script>
const cells = [...document.querySelectorAll("td.who, td.said, td.num, td.when")].map(cell => {
  const range = document.createRange(); range.selectNodeContents(cell);
  const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
  return {kind: cell.className, text: cell.textContent, lines: tops.size, words: cell.innerText.split(/[\\s-]+/).length,
          spaced: cell.innerText.trim().split(/\\s+/).length,
          width: Math.round(cell.getBoundingClientRect().width)};
});
document.body.setAttribute("data-measured", JSON.stringify(
  {cells: cells, scroll: document.documentElement.scrollWidth, inner: window.innerWidth}));
</script></body>"""


def measured(browser: str, html: str, folder: Path, width: int, *, name: str) -> list[dict[str, Any]]:
    """Each By cell (`who`) and event cell (`said`): its text, its number of lines and words, and its width, as
    Chromium lays the page out in a window `width` pixels wide (a copy of the page that lets this one inline script
    run, and no request)."""
    page = folder / f"{name}.html"
    page.write_text(html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
                    .replace("</body>", MEASURE))
    dump = browse(browser, page, folder, "--dump-dom", f"--window-size={width},1200")
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")[-2000:]
    found = re.search(r'data-measured="([^"]*)"', dump.stdout.decode())
    assert found, "the measuring script did not run"
    page_of = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert page_of["scroll"] <= page_of["inner"], f"the page is wider than a {width} px window: {page_of['scroll']}"
    return list(page_of["cells"])


def test_chromium_lays_the_html_report_out_for_leadership_without_a_request(run_ir, leadership, tmp_path):
    browser = chromium()
    page = tmp_path / "report.html"
    assert run_ir("export", leadership, "--format", "html", "-o", str(page)).returncode == 0
    html = page.read_text()
    assert loaded_resources(html) == []  # nothing in it loads anything
    assert "default-src 'none'" in html  # and the page forbids itself any request

    # No request, and a screenshot that is a page (looked at by hand: tmp_path/report.png).
    shot = browse(browser, page, tmp_path, f"--screenshot={tmp_path / 'report.png'}", "--window-size=1000,2400",
                  "--hide-scrollbars", f"--log-net-log={tmp_path / 'net.json'}")
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    assert page_requests(tmp_path / "net.json") == []
    width, height, sampled = pixels(tmp_path / "report.png")
    assert (width, height) == (1000, 2400)
    assert sum(1 for r, g, b in sampled if min(r, g, b) < 200) > len(sampled) * 0.01, "the page looks blank"

    # What the page says: Slack's markup as text, one line for the actions not sent and for the roles nobody held.
    dump = browse(browser, page, tmp_path, "--dump-dom")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dump.stdout.decode()))
    for raw in ("&lt;@U", "&lt;https://", ":rotating_light:", "*Status update", "_Next update", "\\*ok"):
        assert raw not in text, raw
    assert "Now: contained, see the runbook (https://wiki.example.com/ir/3cx); ping @U024BE7LH" in text
    assert "31 not sent (dry run)" in text and "not sent: do it by hand" not in text
    assert (f"31 integration action(s) were not sent (their integration was not configured): 11 jira "
            f"ticket.comment, 20 slack notify.post; do by hand what they say (ir outbox {leadership} lists them)") in text
    assert "Not assigned: scribe , liaison , legal" in text and "not assigned" not in text
    assert ("time to contain 8d 21h 15m detected to contained 0s" in text
            and "Every duration is between the moments the milestones happened; as recorded is between" in text)
    assert html.count('class="pill dry-run"') == 1  # no row per action not sent

    # The By column, measured in a narrow window and a wide one: a name breaks between words, never inside one;
    # and the column of what happened keeps room to be read (at least 15em: 210 px).
    for window in (800, 1280):
        cells = measured(browser, html, tmp_path, window, name=f"measure-{window}")
        who = [cell for cell in cells if cell["kind"] == "who"]
        assert {cell["text"] for cell in who} == {LONG, "Sam Ortiz"}
        assert len(who) > 20
        for cell in who:
            assert cell["lines"] <= cell["words"], (window, cell)
        said = [cell for cell in cells if cell["kind"] == "said"]
        assert len(said) > 20 and min(cell["width"] for cell in said) >= 210, (window, said)
        for cell in cells:  # an event number, a date or a time is never broken inside
            if cell["kind"] in ("num", "when"):
                assert cell["lines"] <= cell["spaced"], (window, cell)

    # The measure sees letter-by-letter wrapping where it happens: the same page without the By column's rule.
    broken = measured(browser, html.replace("td.who { overflow-wrap: normal;", "td.whom {"), tmp_path, 800,
                      name="measure-without")
    assert max(cell["lines"] - cell["words"] for cell in broken if cell["kind"] == "who") > 0
    # and a page wider than its window: the timeline's times kept on one line, whatever the width.
    with pytest.raises(AssertionError, match="the page is wider than a 800 px window"):
        measured(browser, html.replace("td.when { overflow-wrap: normal; min-width: 8.5em; }",
                                            "td.when { white-space: nowrap; }"),
                 tmp_path, 800, name="measure-nowrap")


@pytest.mark.parametrize(("recorded", "shown"), [
    ("*Declared* (severity _high_), ~maybe~ :rotating_light:", "Declared (severity high), maybe"),
    ("see <https://x.example/a?b=1|the runbook> or <https://x.example/b>", "see the runbook (https://x.example/a?b=1) "
                                                                            "or https://x.example/b"),
    ("<@U024BE7LH>, <!here>, <#C0123|ir-3cx>, <!subteam^S1|@oncall>, <mailto:a@b.example|a@b.example>",
     "@U024BE7LH, @here, #ir-3cx, @oncall, a@b.example"),
    ("typed into an answer: &lt;@U1&gt; &amp; *x*", "typed into an answer: @U1 & x"),
    ("Jira's escapes: \\*bold\\* and \\[link\\|x\\]", "Jira's escapes: bold and [link|x]"),
    # what is not markup stays: text in angle brackets, a*b*c, snake_case, clock times, a lone star
    ("if a < b and b > c, a*b*c, snake_case_name, at 10:30:00, 5 * 3, <not a link>",
     "if a < b and b > c, a*b*c, snake_case_name, at 10:30:00, 5 * 3, <not a link>"),
    ("line one :tada:\nline two", "line one\nline two"),
])
def test_slack_markup_reads_as_its_text(recorded, shown):
    assert plain(recorded) == shown
