"""Read YAML into plain data and remember where every value came from (line and column).

Pydantic reports error locations as paths such as ``("steps", 3, "next")``; `Source.where` maps such a path
back to the YAML node so every error can say ``file:line:column``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ir.errors import InvalidPlaybook, Problem

MAX_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64  # mappings and lists inside each other
# The tags a value may have: YAML's own plain types. Others (`!!python/name`, `!!binary`, `!custom`, `!!set`) are
# refused, and so is the merge key `<<`.
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

Loc = tuple[int | str, ...]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"  # a string scalar's value is its text: no need to go through the constructor


@dataclass
class Source:
    """A parsed YAML document: its data, its file name and the position of every node."""

    file: str
    data: Any
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        """The line and column of the value at `loc` (of its key, with `key=True`), or of the nearest
        ancestor that exists in the file."""
        if key and loc in self.key_positions:
            return self.key_positions[loc]
        for end in range(len(loc), -1, -1):
            pos = self.positions.get(tuple(loc[:end]))
            if pos:
                return pos
        return None, None

    def problem(self, loc: Loc, message: str, hint: str | None = None, *, key: bool = False) -> Problem:
        line, column = self.where(loc, key=key)
        return Problem(message, self.file, line, column, format_loc(loc), hint)


def format_loc(loc: Loc) -> str:
    """``("steps", 3, "next")`` -> ``steps[3].next``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class TooBig(OSError):
    def __init__(self, size: int, limit: int):
        super().__init__(errno.EFBIG, f"the file is over {limit // 1_000_000} MB, the most ir reads")
        self.size = size


def read_limited(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The size is checked before anything is read, and a
    device, FIFO or socket (a playbook that is a symlink to /dev/zero) is refused: OSError, with the reason."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO does not block the open
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket)")
        if found.st_size > limit:
            raise TooBig(found.st_size, limit)
        with os.fdopen(os.dup(fd), "rb") as stream:
            raw = stream.read(limit + 1)  # it may have grown since
        if len(raw) > limit:
            raise TooBig(len(raw), limit)
        return raw
    finally:
        os.close(fd)


def read_raw(path: Path) -> bytes:
    """A playbook or scenario file's bytes, or `InvalidPlaybook` saying why it cannot be read."""
    try:
        return read_limited(path)
    except TooBig as exc:
        raise InvalidPlaybook([Problem(f"the file is {exc.size / 1e6:.1f} MB; playbooks are limited to "
                                       f"{MAX_BYTES // 1_000_000} MB", str(path), 1, 1,
                                       hint="split it into smaller playbooks joined with `include` steps")]) from None
    except OSError as exc:
        raise InvalidPlaybook([Problem(f"cannot read the file: {exc.strerror}", str(path))]) from None


def read_file(path: Path) -> Source:
    """Read and parse a YAML file, or raise `InvalidPlaybook` with a positioned problem."""
    return parse(read_raw(path), str(path))


def parse(raw: bytes, name: str) -> Source:
    def fail(message: str, hint: str, line: int | None = 1, column: int | None = 1) -> InvalidPlaybook:
        return InvalidPlaybook([Problem(message, name, line, column, hint=hint)])

    if len(raw) > MAX_BYTES:
        raise fail(f"the file is {len(raw) / 1e6:.1f} MB; playbooks are limited to {MAX_BYTES // 1_000_000} MB",
                   "split it into smaller playbooks joined with `include` steps")
    if b"\0" in raw:
        raise fail("the file is binary, not YAML text", "point ir at a .yaml playbook file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail("the file is not UTF-8 text", "save the file as UTF-8", line, None) from None
    def refused(exc: yaml.YAMLError) -> InvalidPlaybook:
        if not isinstance(exc, yaml.MarkedYAMLError):
            return fail(f"invalid YAML: {exc}", "check the file is a single YAML document")
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        at_tab = mark is not None and text[mark.index : mark.index + 1] == "\t"
        if at_tab:
            message = "a tab character; YAML indentation must use spaces"
        hint = ("indent with spaces, not tabs" if at_tab
                else "check the indentation and quoting on this line and the one before it")
        return fail(f"invalid YAML: {message}", hint, mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None)

    try:
        loader, node = _compose(_Loader, text)
    except yaml.YAMLError as exc:
        # libyaml refuses the surrogate pairs of JSON (`"\ud83d\udcde"`, which json.dumps writes for any character
        # past U+FFFF, an emoji): PyYAML's own scanner reads each half of the pair, and _Builder joins them.
        if getattr(exc, "problem", None) != "found invalid Unicode character escape code":
            raise refused(exc) from None
        try:
            loader, node = _compose(yaml.SafeLoader, text)
        except yaml.YAMLError as other:  # past the pairs, where the file is wrong
            raise refused(other) from None
        except ValueError:  # `"\U00110000"`: an escape of no character at all
            raise refused(exc) from None
    if node is None:
        raise fail("the file is empty", "a playbook is a YAML mapping with at least id, title, version and steps")
    source = Source(name, None)
    builder = _Builder(loader, source, surrogates=isinstance(loader, yaml.SafeLoader))
    source.data = builder.build(node, ())
    if builder.problems:
        raise InvalidPlaybook(builder.problems)
    return source


def _compose(loader_class: Any, text: str) -> tuple[Any, yaml.Node | None]:
    loader = loader_class(text)
    try:
        return loader, loader.get_single_node()
    finally:
        loader.dispose()


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Builder:
    """Turns a composed node tree into plain Python data, recording positions and duplicate keys. With
    `surrogates` (PyYAML's own loader), the halves of a surrogate pair escaped in a string are joined."""

    def __init__(self, loader: Any, source: Source, *, surrogates: bool = False):
        self.loader, self.source, self.surrogates = loader, source, surrogates
        self.problems: list[Problem] = []
        self.count = 0
        self.open: set[int] = set()  # the nodes being built, outermost first: an alias to one is recursive

    def _refuse(self, node: yaml.Node, message: str, hint: str) -> InvalidPlaybook:
        return InvalidPlaybook([Problem(message, self.source.file, node.start_mark.line + 1,
                                        node.start_mark.column + 1, hint=hint)])

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise InvalidPlaybook([Problem(f"the document has more than {MAX_NODES} values (or aliases that "
                                           "expand to that many)", self.source.file, 1, 1,
                                           hint="remove deeply nested aliases or split the playbook")])
        if len(loc) > MAX_DEPTH:
            raise self._refuse(node, f"values are nested more than {MAX_DEPTH} levels deep",
                               "flatten the structure")
        if id(node) in self.open:
            raise self._refuse(node, "a recursive alias: the value contains itself", "remove the alias")
        self.source.positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise self._refuse(node, f"the YAML tag {node.tag!r} is not allowed",
                               "remove the tag: playbooks and answers hold plain mappings, lists and values")
        self.open.add(id(node))
        try:
            return self._build(node, loc)
        finally:
            self.open.discard(id(node))

    def _build(self, node: yaml.Node, loc: Loc) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # a "billion laughs" hides in such keys
                    raise self._refuse(key_node, "a key is a list or mapping",
                                       "write keys as plain text (a name, a number)")
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self._refuse(key_node, "a merge key (<<) is not supported",
                                       "write the entries out instead of merging an anchor")
                key = self._scalar(key_node)
                if not isinstance(key, (str, int, bool, float)) or key is None:
                    key = str(key)
                if key in out:
                    line = key_node.start_mark.line + 1
                    self.problems.append(Problem(f"duplicate key {key!r}", self.source.file, line,
                                                 key_node.start_mark.column + 1, format_loc(loc) or None,
                                                 "remove one of the two entries"))
                self.source.key_positions[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # the composer makes only these three kinds
        return self._scalar(node)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR:
            return self._text(node) if self.surrogates else node.value
        if node.tag not in _SCALAR_TAGS:
            raise self._refuse(node, f"the YAML tag {node.tag!r} is not allowed",
                               "remove the tag, or quote the value to make it text")
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:  # 2026-02-30, an integer too long
            raise self._refuse(node, f"the value {node.value[:40]!r} cannot be read ({exc})".replace("\n", " "),
                               "quote it to make it text") from None

    def _text(self, node: yaml.ScalarNode) -> str:
        value: str = node.value
        if not _SURROGATE.search(value):
            return value
        units = value.encode("utf-16-le", "surrogatepass")
        try:
            return units.decode("utf-16-le")
        except UnicodeDecodeError as exc:
            half = units[exc.start : exc.start + 2].decode("utf-16-le", "surrogatepass")
            raise self._refuse(node, f"a lone surrogate ({half!a}) is not text: half of a pair escaped alone",
                               "escape a character past U+FFFF as both halves of its pair (\\ud83d\\udcde) or "
                               "write it as it is") from None
