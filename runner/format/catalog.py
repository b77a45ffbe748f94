"""Finding playbooks: the bundled ones, then ./playbooks/, then each directory in IR_PLAYBOOK_PATH.

A later source overrides an earlier one with the same id, so a team's local `supply-chain.yaml` replaces the
bundled one. Listing reads only each file's metadata (no schema, no pydantic: `ir list` must be instant);
`Catalog.load` is the full, checked load, including the playbooks that `include` steps name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ir.errors import IncludeProblem, InvalidPlaybook, UsageError
from ir.format.source import read_limited

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic import BaseModel

    from ir.format.bundle import Bundle
    from ir.format.load import Loaded
    from ir.format.model import Playbook

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PATTERNS = ("*.yaml", "*.yml")
META_KEYS = ("id", "title", "version", "tags")
_CYCLE_HINT = "a playbook cannot include itself, directly or through others; remove one of the include steps"


@dataclass(frozen=True)
class Capability:
    """What the format needs to know of an installed integration: the step kinds it handles (`via:`), and its
    settings model (what a playbook's `integrations: <name>:` may override)."""

    handles: frozenset[str]
    settings: type[BaseModel]


@dataclass(frozen=True)
class Entry:
    id: str
    path: Path
    origin: str  # "bundled", "local" or "IR_PLAYBOOK_PATH"
    title: str = ""
    version: str = ""
    tags: tuple[str, ...] = ()
    error: str | None = None  # set when even the metadata could not be read
    overrides: Path | None = None


def search_path(cwd: Path | None = None) -> list[tuple[str, Path]]:
    bundled = Path(str(resources.files("ir.playbooks")))
    dirs = [("bundled", bundled), ("local", (cwd or Path.cwd()) / "playbooks")]
    dirs += [("IR_PLAYBOOK_PATH", Path(p)) for p in os.environ.get("IR_PLAYBOOK_PATH", "").split(os.pathsep) if p]
    return dirs


def _summary(path: Path, origin: str) -> Entry:
    try:
        data = _metadata(read_limited(path))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        return Entry(path.stem, path, origin, error=type(exc).__name__)
    if data is None or not isinstance(data.get("id"), str):
        return Entry(path.stem, path, origin, error="no id")
    tags = data["tags"] if isinstance(data.get("tags"), list) else []
    return Entry(data["id"], path, origin, str(data.get("title", "")), str(data.get("version", "")),
                 tuple(str(t) for t in tags))


@dataclass(frozen=True)
class ScenarioEntry:
    """A tabletop scenario file found (read as far as its id, playbook and title)."""

    id: str
    playbook: str
    title: str
    path: Path
    origin: str  # "bundled" or "local"


def scenario_dirs(cwd: Path | None = None) -> list[tuple[str, Path]]:
    """Where scenario ids are looked up: the bundled ones, then ./scenarios/."""
    return [("bundled", Path(str(resources.files("ir.playbooks"))) / "scenarios"),
            ("local", (cwd or Path.cwd()) / "scenarios")]


def scenarios(cwd: Path | None = None) -> list[ScenarioEntry]:
    """The scenario files in the scenario directories, by the id each declares (unreadable: the file's stem)."""
    found = []
    for origin, folder in scenario_dirs(cwd):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                data = _metadata(read_limited(path), ("id", "playbook", "title")) or {}
            except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError):
                data = {}
            found.append(ScenarioEntry(str(data.get("id", path.stem)), str(data.get("playbook", "?")),
                                       str(data.get("title", "(unreadable: run `ir validate`)")), path, origin))
    return found


def _metadata(raw: bytes, keys: tuple[str, ...] = META_KEYS) -> dict[str, Any] | None:
    """The top-level id, title, version and tags of a YAML mapping (None if the document is not a mapping), read
    from the parser's events until all four are found. Playbooks start with them, so the steps, most of the file,
    are neither built nor read: a mistake further down shows in `ir validate`, not in `ir list`."""
    loader = _Loader(raw)
    try:
        loader.get_event(), loader.get_event()  # the stream and the document start
        if not loader.check_event(yaml.MappingStartEvent):
            return None
        loader.get_event()
        found: dict[str, Any] = {}
        while len(found) < len(keys) and not loader.check_event(yaml.MappingEndEvent):
            key, value = _value(loader), _value(loader)
            if key in keys:
                found.setdefault(key, value)
        return found
    finally:
        loader.dispose()


def _value(loader: Any) -> Any:
    """The next node of the event stream: a scalar as yaml.load reads it, the scalars of a sequence as a list, or
    None for anything else (a mapping, an alias), which is skipped."""
    event = loader.get_event()
    if isinstance(event, yaml.ScalarEvent):
        return _scalar(loader, event)
    items: list[Any] | None = [] if isinstance(event, yaml.SequenceStartEvent) else None
    depth = int(isinstance(event, yaml.CollectionStartEvent))
    while depth:
        event = loader.get_event()
        if depth == 1 and items is not None and isinstance(event, yaml.ScalarEvent):
            items.append(_scalar(loader, event))
        depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
    return items


def _scalar(loader: Any, event: yaml.ScalarEvent) -> Any:
    tag = event.tag if event.tag not in (None, "!") else loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    return loader.construct_object(yaml.ScalarNode(tag, event.value, style=event.style))


class Catalog:
    """The playbooks ir can find. `capabilities` gives what each installed integration handles and its settings
    model (the caller passes the registry's, so that the format layer does not reach for the plugins; a listing
    never calls it)."""

    def __init__(self, capabilities: Callable[[], Mapping[str, Capability]], cwd: Path | None = None):
        self.capabilities = capabilities
        self.dirs = search_path(cwd)
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[Path, Loaded] = {}

    def entries(self) -> dict[str, Entry]:
        """Every playbook found, by id, later sources overriding earlier ones."""
        if self._entries is None:
            found: dict[str, Entry] = {}
            for origin, directory in self.dirs:
                if not directory.is_dir():
                    continue
                for path in sorted(p for pattern in PATTERNS for p in directory.glob(pattern)):
                    entry = _summary(path, origin)
                    previous = found.get(entry.id)
                    if previous:
                        entry = Entry(**{**entry.__dict__, "overrides": previous.path})
                    found[entry.id] = entry
            self._entries = dict(sorted(found.items()))
        return self._entries

    def path_of(self, ref: str) -> Path:
        """A playbook reference is a file path (anything with a / or a .yaml/.yml ending) or an id."""
        if os.sep in ref or "/" in ref or ref.endswith((".yaml", ".yml")):
            path = Path(ref)
            if not path.is_file():
                raise UsageError(f"no playbook file at {ref}", hint="check the path")
            return path
        entry = self.entries().get(ref)
        if entry is None:
            known = ", ".join(self.entries()) or "none"
            raise UsageError(f"no playbook with id {ref!r}", hint=f"run `ir list`; known ids: {known}")
        return entry.path

    def load(self, ref: str) -> Loaded:
        """Load and fully check a playbook, with the playbooks it includes (recursively)."""
        return self._load(self.path_of(ref), ())

    def _load(self, path: Path, chain: tuple[str, ...]) -> Loaded:
        from ir.format import rules  # the models and the checks: not for a listing (`ir list` stays instant)
        from ir.format.load import load_file, settings_problems

        key = path.resolve()
        if key in self._loaded:
            return self._loaded[key]
        loaded = load_file(path)
        playbook = loaded.playbook
        chain = (*chain, playbook.id)

        def resolve(playbook_id: str) -> Playbook:
            if playbook_id in chain:
                raise IncludeProblem(f"include cycle: {' -> '.join((*chain, playbook_id))}", hint=_CYCLE_HINT)
            entry = self.entries().get(playbook_id)
            if entry is None:
                raise IncludeProblem(f"no playbook with id {playbook_id!r}",
                                     hint="run `ir list` to see the playbooks ir can find")
            try:
                return self._load(entry.path, chain).playbook
            except InvalidPlaybook as exc:
                cycle = next((p.message for p in exc.problems if p.hint == _CYCLE_HINT), None)
                if cycle:  # report the loop here, where it starts, not as "the included playbook is invalid"
                    raise IncludeProblem(cycle, hint=_CYCLE_HINT) from None
                raise IncludeProblem(f"the included playbook {playbook_id!r} ({entry.path}) is invalid",
                                     hint=f"run `ir validate {playbook_id}`") from None

        installed = self.capabilities()
        problems = rules.check_links(playbook, loaded.source, resolve=resolve,
                                     integrations={name: c.handles for name, c in installed.items()})
        problems += settings_problems(playbook, loaded.source, {name: c.settings for name, c in installed.items()})
        if problems:
            raise InvalidPlaybook(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
        self._loaded[key] = loaded
        return loaded

    def bundle(self, ref: str) -> Bundle:
        """A playbook and everything it includes, each loaded and checked once: what an incident runs on."""
        from ir.format.bundle import Bundle  # the models, as above

        root = self.load(ref)
        found: dict[str, Loaded] = {}
        self._gather(root, found)
        return Bundle(root.playbook.id, found)

    def _gather(self, loaded: Loaded, found: dict[str, Loaded]) -> None:
        from ir.format.model import IncludeStep  # the models, as above

        found[loaded.playbook.id] = loaded
        for step in loaded.playbook.steps:
            if isinstance(step, IncludeStep) and step.playbook not in found:
                self._gather(self._load(self.path_of(step.playbook), ()), found)


def is_scenario(path: Path) -> bool:
    """A file with a top-level `playbook:` key is a tabletop scenario (a playbook has no such key). Told apart here,
    without the scenario models, so that validating playbooks does not build them."""
    import re

    try:
        return re.search(rb"^playbook[ \t]*:", read_limited(path), re.M) is not None
    except OSError:
        return False  # reading it again reports the problem
