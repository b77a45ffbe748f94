"""A small evaluator of the filters in the playbooks' KQL and SPL queries, to check them against sample records.

It answers one question: would this query's filters select this record? It evaluates:

- KQL: every `| where` of the query (the table name and the other operators are passed over), with the string
  operators' documented semantics (https://learn.microsoft.com/kusto/query/datatypes-string-operators):
  `has` matches whole terms (a term is a maximal run of ASCII letters and digits), `contains` substrings, both
  case-insensitive; `==` and `!=` case-sensitive, `=~` and `!~` case-insensitive; `in` (case-sensitive), `in~`;
  `has_any`, `has_all`, `hasprefix`, `hassuffix`, `startswith`, `endswith`, the `_cs` forms, every `!` negation;
  `matches regex` (case-sensitive); `isempty()`, `isnotempty()`; `and`, `or`, `not(...)`, with `and` binding
  tighter than `or`; numbers compared as numbers.
- SPL: the search terms of the first command and of every later `| search` (https://help.splunk.com, Search
  Manual): `field=value`, `field!=value` and `field IN (...)`, matching whole values, case-insensitively, with `*`
  wildcards; `<`, `>`, `<=`, `>=` on numbers; bare terms and quoted phrases against `_raw`; `NOT`, `OR`, `AND`
  (implied between terms), with OR evaluated before AND, as the search command does.

Not evaluated, by design: time filters (KQL comparisons with `ago()`, `datetime()`, `now()` or on `Timestamp` /
`TimeGenerated`; SPL `earliest=`, `latest=`), the SPL data-set selectors `index=`, `sourcetype=`, `source=` for a
record that does not name its data set (one that does is compared like any field), and every operator that
transforms rows (`summarize`, `project`, `join`, `stats`, `eval`, SPL `where`). Anything else
outside this subset raises QueryError, so a query is never silently half-checked. A record must give every field
the filters name (QueryError otherwise); in SPL a field given as null is a field the event does not have.
tests/queries/README.md describes the test files that use this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


class QueryError(ValueError):
    """The query is outside the evaluated subset, or a record lacks a field it names."""


def _split_pipes(query: str) -> list[str]:
    """The query's `|`-separated segments; a `|` inside a string literal, or inside parentheses or brackets (a
    KQL `join (...)` subquery, an SPL subsearch), does not split."""
    segments, current, quote, i, depth = [], [], None, 0, 0
    while i < len(query):
        c = query[i]
        if quote:
            current.append(c)
            if c == "\\" and not quote.startswith("@") and i + 1 < len(query):
                current.append(query[i + 1])
                i += 1
            elif c == quote[-1]:
                quote = None
        elif c in "\"'":
            quote = ("@" + c) if current and current[-1] == "@" else c
            current.append(c)
        elif c in "([":
            depth += 1
            current.append(c)
        elif c in ")]":
            depth -= 1
            current.append(c)
        elif c == "|" and depth == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    segments.append("".join(current))
    return [s.strip() for s in segments]


def _field(record: Record, name: str) -> Any:
    if name not in record:
        raise QueryError(f"the record has no field {name!r}, which the query filters on")
    return record[name]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------- KQL

def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def kql_has(lhs: str, rhs: str, *, case_sensitive: bool = False, prefix: bool = False, suffix: bool = False) -> bool:
    """`lhs has rhs`: rhs occurs in lhs at term boundaries (no letter or digit joins it on either side). `hasprefix`
    checks only the start boundary, `hassuffix` only the end."""
    if not case_sensitive:
        lhs, rhs = lhs.lower(), rhs.lower()
    if not rhs:
        return True
    start = lhs.find(rhs)
    while start >= 0:
        end = start + len(rhs)
        left_ok = suffix or not _is_alnum(rhs[0]) or start == 0 or not _is_alnum(lhs[start - 1])
        right_ok = prefix or not _is_alnum(rhs[-1]) or end == len(lhs) or not _is_alnum(lhs[end])
        if left_ok and right_ok:
            return True
        start = lhs.find(rhs, start + 1)
    return False


def _ci(f: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    return lambda a, b: f(a.lower(), b.lower())


_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "==": lambda a, b: a == b,
    "=~": _ci(lambda a, b: a == b),
    "contains": _ci(lambda a, b: b in a),
    "contains_cs": lambda a, b: b in a,
    "has": lambda a, b: kql_has(a, b),
    "has_cs": lambda a, b: kql_has(a, b, case_sensitive=True),
    "hasprefix": lambda a, b: kql_has(a, b, prefix=True),
    "hasprefix_cs": lambda a, b: kql_has(a, b, case_sensitive=True, prefix=True),
    "hassuffix": lambda a, b: kql_has(a, b, suffix=True),
    "hassuffix_cs": lambda a, b: kql_has(a, b, case_sensitive=True, suffix=True),
    "startswith": _ci(lambda a, b: a.startswith(b)),
    "startswith_cs": lambda a, b: a.startswith(b),
    "endswith": _ci(lambda a, b: a.endswith(b)),
    "endswith_cs": lambda a, b: a.endswith(b),
}
_NEGATED = {"!=": "==", "!~": "=~"} | {f"!{op}": op for op in _STRING_OPS if op[0].isalpha()}
_LIST_OPS = {"in", "in~", "!in", "!in~", "has_any", "has_all"}
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
_TIME_COLUMNS = {"Timestamp", "TimeGenerated"}
_TIME_FUNCTIONS = {"ago", "datetime", "now", "startofday", "startofweek", "startofmonth", "todatetime"}

_KQL_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<verbatim>@"(?:[^"]|"")*"|@'(?:[^']|'')*')
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<date>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?)
  | (?P<number>\d+(?:\.\d+)?[a-z]*)
  | (?P<op>==|!=|=~|!~|>=|<=|>|<|\(|\)|\[|\]|,|\.\.)
  | (?P<word>!?[A-Za-z_][A-Za-z0-9_]*~?)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _kql_tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _KQL_TOKEN.match(text, pos)
        if not m:
            raise QueryError(f"KQL outside the evaluated subset at {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            continue
        if kind == "verbatim":
            kind, value = "string", value[2:-1].replace(value[1] * 2, value[1])
        elif kind == "string":
            value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), "\\" + e.group(1)), value[1:-1])
        tokens.append((kind, value))
    return tokens


class _KqlParser:
    def __init__(self, text: str) -> None:
        self.tokens = _kql_tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise QueryError(f"KQL: expected {value!r}, found {token[1] or 'the end'!r}")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek()[0] != "end":
            raise QueryError(f"KQL: unexpected {self.peek()[1]!r}")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() == ("word", "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def unary(self) -> Predicate:
        kind, value = self.peek()
        if (kind, value) == ("word", "not"):
            self.take()
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return lambda r: not inner(r)
        if value == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        if kind == "word" and value in ("isempty", "isnotempty") and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            column = self.column()
            self.take(")")
            empty = value == "isempty"
            return lambda r: (_text(_field(r, column)) == "") == empty
        return self.comparison()

    def column(self) -> str:
        kind, value = self.take()
        if kind != "word" or value.startswith("!") or self.peek()[1] == "(":
            raise QueryError(f"KQL: expected a column name, found {value!r} (functions of columns are not evaluated)")
        return value

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value
        if kind == "number" and re.fullmatch(r"\d+(\.\d+)?", value):
            return float(value)
        if kind == "word" and value in ("true", "false"):
            return value == "true"
        raise QueryError(f"KQL: expected a literal, found {value!r}")

    def literal_list(self) -> list[Any]:
        dynamic = self.peek() == ("word", "dynamic")
        if dynamic:
            self.take()
        self.take("(")
        if dynamic:
            self.take("[")
        items = [self.literal()]
        while self.peek()[1] == ",":
            self.take()
            items.append(self.literal())
        if dynamic:
            self.take("]")
        self.take(")")
        return items

    def skip_call(self) -> None:
        """A time function's call, ago(30d) or datetime(2023-01-01): read over, not evaluated."""
        self.take()
        self.take("(")
        depth = 1
        while depth:
            kind, value = self.take()
            if kind == "end":
                raise QueryError("KQL: unbalanced parentheses")
            depth += {"(": 1, ")": -1}.get(value, 0)

    def comparison(self) -> Predicate:
        column = self.column()
        kind, op = self.take()
        if op == "matches" and self.peek() == ("word", "regex"):
            self.take()
            pattern = re.compile(self.literal())
            return lambda r: pattern.search(_text(_field(r, column))) is not None
        if op == "between" or (op in _NUMERIC_OPS or op in ("==", "!=")) and self.peek()[1] in _TIME_FUNCTIONS:
            if op == "between":
                raise QueryError("KQL: `between` is not evaluated; filter time with `Timestamp > ago(...)`")
            self.skip_call()
            return lambda r: True  # a time filter: not evaluated
        if column in _TIME_COLUMNS and op in _NUMERIC_OPS:
            self.skip_call() if self.peek(1)[1] == "(" else self.take()
            return lambda r: True
        if op in _LIST_OPS:
            items = [_text(x) for x in self.literal_list()]
            return self._list_predicate(column, op, items)
        if op in _NUMERIC_OPS:
            bound = self.literal()
            if not isinstance(bound, float):
                raise QueryError(f"KQL: {op} is evaluated on numbers only")
            compare = _NUMERIC_OPS[op]
            return lambda r: compare(float(_field(r, column)), bound)
        negate = op in _NEGATED
        base = _NEGATED.get(op, op)
        if base not in _STRING_OPS:
            raise QueryError(f"KQL: operator {op!r} is outside the evaluated subset")
        rhs = self.literal()
        if isinstance(rhs, float) and base == "==":
            return lambda r: (float(_field(r, column)) == rhs) != negate
        match = _STRING_OPS[base]
        text = _text(rhs)
        return lambda r: match(_text(_field(r, column)), text) != negate

    @staticmethod
    def _list_predicate(column: str, op: str, items: list[str]) -> Predicate:
        def value(r: Record) -> str:
            return _text(_field(r, column))
        if op in ("in", "!in"):
            return lambda r: (value(r) in items) != (op == "!in")
        if op in ("in~", "!in~"):
            lowered = [x.lower() for x in items]
            return lambda r: (value(r).lower() in lowered) != (op == "!in~")
        combine = any if op == "has_any" else all
        return lambda r: combine(kql_has(value(r), x) for x in items)


def kql_predicate(query: str) -> Predicate:
    """The conjunction of every `| where` of a KQL query."""
    segments = _split_pipes(query)
    filters = []
    for segment in segments[1:]:
        verb = segment.split(None, 1)
        if verb and verb[0] == "where":
            filters.append(_KqlParser(verb[1] if len(verb) > 1 else "").parse())
    if not filters:
        raise QueryError("KQL: the query has no `| where` to evaluate")
    return lambda r: all(f(r) for f in filters)


# ---------------------------------------------------------------------------------------------------- SPL

_SPL_NOT_EVALUATED = {"earliest", "latest", "_index_earliest", "_index_latest"}
_SPL_DATA_SETS = {"index", "sourcetype", "source"}  # compared when the record says where it comes from
_SPL_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<paren>[()])
  | (?P<compare>(?P<field>[A-Za-z_][A-Za-z0-9_.]*)(?P<op>!=|<=|>=|=|<|>)
                (?P<value>"(?:[^"\\]|\\.)*"|[^\s()"]+))
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<word>[^\s()"]+)
""", re.VERBOSE)


def _spl_unescape(value: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    return re.sub(r"\\([\\\"|])", r"\1", value)


def spl_wildcard(pattern: str, value: str) -> bool:
    """A whole-value match, case-insensitive, where `*` matches any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _spl_term(pattern: str, raw: str) -> bool:
    """A bare term or phrase against _raw: case-insensitive, `*` within a segment, at breaker boundaries."""
    regex = r"\S*".join(re.escape(part) for part in pattern.split("*"))
    left = r"(?<![A-Za-z0-9])" if pattern[:1].isalnum() else ""
    right = r"(?![A-Za-z0-9])" if pattern[-1:].isalnum() else ""
    return re.search(left + regex + right, raw, re.IGNORECASE) is not None


class _SplParser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            m = _SPL_TOKEN.match(text, pos)
            if not m:
                raise QueryError(f"SPL outside the evaluated subset at {text[pos:pos + 30]!r}")
            pos = m.end()
            if m.lastgroup == "ws":
                continue
            if m.group("compare") and text[pos:pos + 1] == "(":
                raise QueryError(f"SPL: {m.group('value')}(...) is not evaluated (CASE, TERM and functions)")
            if m.group("compare"):
                self.tokens.append(("compare", (m.group("field"), m.group("op"), _spl_unescape(m.group("value")))))
            elif m.lastgroup == "paren":
                self.tokens.append(("paren", m.group()))
            elif m.lastgroup == "quoted":
                self.tokens.append(("term", _spl_unescape(m.group())))
            else:
                word = m.group()
                if word.startswith("[") or word.endswith("]"):
                    raise QueryError("SPL: subsearches are not evaluated")
                kind = "keyword" if word in ("OR", "AND", "NOT", "IN") else "term"
                self.tokens.append((kind, word if kind == "keyword" else _spl_unescape(word)))
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        self.i += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.conjunction()
        if self.peek()[0] != "end":
            raise QueryError(f"SPL: unexpected {self.peek()[1]!r}")
        return predicate

    def conjunction(self) -> Predicate:  # AND, explicit or implied: evaluated last
        parts = []
        while self.peek()[0] != "end" and self.peek() != ("paren", ")"):
            if self.peek() == ("keyword", "AND"):
                self.take()
                continue
            parts.append(self.disjunction())
        if not parts:
            raise QueryError("SPL: empty search expression")
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def disjunction(self) -> Predicate:  # OR: evaluated before AND
        parts = [self.unary()]
        while self.peek() == ("keyword", "OR"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def unary(self) -> Predicate:
        kind, value = self.take()
        if (kind, value) == ("keyword", "NOT"):
            inner = self.unary()
            return lambda r: not inner(r)
        if (kind, value) == ("paren", "("):
            inner = self.conjunction()
            if self.take() != ("paren", ")"):
                raise QueryError("SPL: unbalanced parentheses")
            return inner
        if kind == "compare":
            return self.compare(*value)
        if kind == "term" and self.peek() == ("keyword", "IN"):
            self.take()
            return self.in_list(value)
        if kind == "term":
            return lambda r: _spl_term(value, _text(_field(r, "_raw")))
        raise QueryError(f"SPL: unexpected {value!r}")

    def in_list(self, field: str) -> Predicate:
        if self.take() != ("paren", "("):
            raise QueryError("SPL: IN needs a parenthesised list")
        values: list[str] = []
        while self.peek() != ("paren", ")"):
            kind, value = self.take()
            if kind != "term":
                raise QueryError(f"SPL: unexpected {value!r} in an IN list")
            values.extend(v for v in value.split(",") if v)
        self.take()
        return lambda r: any(_spl_value_matches(r, field, v) for v in values)

    @staticmethod
    def compare(field: str, op: str, value: str) -> Predicate:
        if field in _SPL_NOT_EVALUATED:
            return lambda r: True
        if field in _SPL_DATA_SETS and op == "=":
            return lambda r: field not in r or _spl_value_matches(r, field, value)
        if op == "=":
            return lambda r: _spl_value_matches(r, field, value)
        if op == "!=":
            return lambda r: _values(r, field) != [] and not _spl_value_matches(r, field, value)
        bound = float(value)
        numeric = {"<": lambda a: a < bound, ">": lambda a: a > bound,
                   "<=": lambda a: a <= bound, ">=": lambda a: a >= bound}[op]
        return lambda r: any(numeric(float(v)) for v in _values(r, field))


def _values(record: Record, field: str) -> list[str]:
    value = _field(record, field)
    if value is None:
        return []  # the event does not have the field
    return [_text(v) for v in value] if isinstance(value, list) else [_text(value)]


def _spl_value_matches(record: Record, field: str, pattern: str) -> bool:
    return any(spl_wildcard(pattern, v) for v in _values(record, field))


def spl_predicate(query: str) -> Predicate:
    """The search terms of an SPL query: its first command (with or without `search`) and every `| search`."""
    segments = _split_pipes(query)
    filters = []
    for n, segment in enumerate(segments):
        words = segment.split(None, 1)
        if words and words[0] == "search":
            segment = words[1] if len(words) > 1 else ""
        elif n > 0:
            continue  # stats, eval, where, table...: not evaluated
        filters.append(_SplParser(segment).parse())
    return lambda r: all(f(r) for f in filters)


def predicate(language: str, query: str) -> Predicate:
    if language == "kql":
        return kql_predicate(query)
    if language == "spl":
        return spl_predicate(query)
    raise QueryError(f"unknown query language {language!r}: kql or spl")


def selects(language: str, query: str, record: Record) -> bool:
    """Whether the query's filters select the record."""
    return predicate(language, query)(record)
