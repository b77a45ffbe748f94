"""Untrusted text (what attackers can write into logs, file names, notes, answers, other people's playbooks),
rendered for each place it goes. One function per sink; every caller that puts such text there goes through it.

- terminal: control characters and escape sequences shown visibly (`\\x1b`), so text cannot erase, rewrite or
  forge a line, set the window title or plant a hidden link; `one_line` also shows newlines as `\\n`.
- slack: `&`, `<`, `>` as Slack's formatting rules ask, so `<!channel>` or `<https://x|y>` in a value stays text.
- jira: wiki markup characters backslash-escaped, so `[text|url]`, `{html}` or `*bold*` in a value stays text.
- markdown_code: a code span that text inside it cannot close.
- csv_row: cells that a spreadsheet cannot run as formulas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode bidi overrides and isolates that make
# text read differently than it is stored. Tab is kept (it cannot move the cursor back).
# C0 and C1 controls, the line and paragraph separators, and the bidirectional marks and overrides (Unicode UAX #9)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_NEWLINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r":
        return "\\n" if char == "\n" else "\\r"
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def terminal(text: object, *, one_line: bool = True) -> str:
    """Text safe to print: every control character shown as an escape. `one_line=False` keeps newlines (for
    Markdown instructions and multi-line messages) but still shows a carriage return."""
    return (_CONTROL if one_line else _CONTROL_KEEP_NEWLINE).sub(_visible, str(text))


MENTION = re.compile(r"<@[UW][A-Z0-9]{2,}>")  # a Slack user mention: the one form a role holder stays live in


class Person(str):
    """A role holder: the name people read (the report, Jira, the terminal), and the Slack user it was found to be,
    mentioned in Slack text (`<@U123>`) and invited by id."""

    slack: str | None

    def __new__(cls, name: str, slack: str | None = None) -> Person:
        person = super().__new__(cls, name)
        person.slack = slack
        return person


def invitee(value: object) -> str:
    """A value in an invite list: a role holder as the Slack user found for them, anything else as its text."""
    return value.slack if isinstance(value, Person) and value.slack else str(value)


def slack_person(who: object) -> str:
    """A role holder in Slack text: a user mention stays live, any other text is escaped like the rest."""
    return who if isinstance(who, str) and MENTION.fullmatch(who) else slack(who)


def slack(text: object) -> str:
    """A value inside Slack message text or mrkdwn: the three characters Slack's control sequences use, escaped;
    a role holder found in Slack is mentioned."""
    if isinstance(text, Person) and text.slack:
        return f"<@{text.slack}>"
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Always: links, macros, tables, bold, emphasis, super/subscript, images, lists. `-`, `+` and `??` (strike, insert,
# citation) only where they can open markup, after a space or at the start, so dates and offsets stay readable.
_JIRA_SPECIAL = re.compile(r"([\\\[\]{}|*_^~!#])|(?:(?<=\s)|^)([-+?])", re.M)


def jira(text: object) -> str:
    """A value inside a Jira wiki-markup body: links, macros ({html}, {code}), mentions and text effects escaped."""
    return _JIRA_SPECIAL.sub(lambda m: "\\" + (m.group(1) or m.group(2)), str(text))


def markdown_code(text: object) -> str:
    """A CommonMark code span around `text` (one line) that no run of backticks inside it can close: the fence is
    one backtick longer than the longest run inside, padded with spaces."""
    raw = " ".join(str(text).splitlines()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", raw)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {raw} {fence}" if longest or raw.startswith(" ") or raw.endswith(" ") else f"`{raw}`"


_FORMULA_START = frozenset("=+-@\t\r")


def csv_row(values: Iterable[object]) -> list[object]:
    """CSV cells a spreadsheet shows as text: one starting like a formula gets a leading `'`. Numbers stay. One
    pass over the row (an export writes tens of millions of cells)."""
    start = _FORMULA_START
    return ["'" + value if isinstance(value, str) and value[:1] in start else value for value in values]


# The integrations whose text ir escapes values for, by name (`via:` in a playbook); others get values as given.
FOR_INTEGRATION: dict[str, Callable[[object], str]] = {"slack": slack, "jira": jira}
