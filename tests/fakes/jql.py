"""The sliver of JQL the fake Jira understands.

Clauses `field = value` and `field in (value, ...)` joined by AND, then an optional ORDER BY, which
is ignored. Values are bare words or "double"/'single' quoted strings. Anything else is the
"Error in the JQL Query" Jira answers with 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r'\s*(?:"(?P<dq>[^"]*)"|\'(?P<sq>[^\']*)\'|(?P<punct>[(),=])|(?P<word>[^\s(),="\']+))')


class JqlError(ValueError):
    """A query this fake cannot read; the message is Jira's."""


@dataclass(frozen=True)
class Clause:
    field: str  # lower-cased
    values: tuple[str, ...]


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool

    def is_bare(self, text: str) -> bool:
        """Whether this is the keyword or punctuation `text` (lower case), not a quoted value."""
        return not self.quoted and self.text.lower() == text


def _tokens(jql: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(jql.rstrip()):
        match = _TOKEN.match(jql, position)
        if match is None:
            raise JqlError(f"Error in the JQL Query: The character '{jql[position]}' is a reserved JQL character. "
                           f"(line 1, character {position + 1})")
        quoted = match["dq"] if match["dq"] is not None else match["sq"]
        tokens.append(_Token(quoted, True) if quoted is not None else _Token(match["punct"] or match["word"], False))
        position = match.end()
    return tokens


def parse(jql: str) -> list[Clause]:
    """The AND-ed clauses of `jql`, ORDER BY dropped."""
    tokens = _tokens(jql)
    clauses: list[Clause] = []

    def expect(what: str) -> _Token:
        if not tokens:
            raise JqlError(f"Error in the JQL Query: Expecting {what} but reached the end of the query.")
        return tokens.pop(0)

    def value() -> str:
        token = expect("a value")
        if any(token.is_bare(punct) for punct in "(),="):
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{token.text}'.")
        return token.text

    def values_in_parentheses() -> list[str]:
        if not expect("'('").is_bare("("):
            raise JqlError("Error in the JQL Query: Expecting '(' after 'in'.")
        values = [value()]
        while (separator := expect("',' or ')'")).is_bare(","):
            values.append(value())
        if not separator.is_bare(")"):
            raise JqlError(f"Error in the JQL Query: Expecting ',' or ')' but got '{separator.text}'.")
        return values

    while tokens and not tokens[0].is_bare("order"):
        if clauses and not expect("'AND'").is_bare("and"):
            raise JqlError("Error in the JQL Query: Expecting 'AND' between clauses; this fake supports no OR.")
        field = expect("a field").text.lower()
        operator = expect("an operator")
        if operator.is_bare("="):
            values = [value()]
        elif operator.is_bare("in"):
            values = values_in_parentheses()
        else:
            raise JqlError(f"Error in the JQL Query: Expecting operator '=' or 'in' but got '{operator.text}'.")
        clauses.append(Clause(field, tuple(values)))
    if tokens and not (len(tokens) > 1 and tokens[1].is_bare("by")):
        raise JqlError("Error in the JQL Query: Expecting 'BY' after 'ORDER'.")
    return clauses
