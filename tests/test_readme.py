"""README.md is tested like the other docs: every `ir ...` command it shows exists with each option it gives, and
every command and subcommand of `ir --help` is shown; its ir.toml sample is valid settings and holds every setting
of every table; every environment variable the code reads is named in it, and it names no other."""

from __future__ import annotations

import ast
import functools
import importlib
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from ir import config

from conftest import IR

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
ENVIRONMENT = re.compile(r"\b(?:IR|SLACK|JIRA)_[A-Z][A-Z0-9_]*\b")


@functools.cache
def usage(*path: str) -> tuple[frozenset[str], frozenset[str]]:
    """(subcommands, options) that `ir PATH --help` lists."""
    result = subprocess.run([*IR, *path, "--help"], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "COLUMNS": "200"})
    assert (result.returncode, result.stderr) == (0, ""), path
    commands, options, section = set(), set(), ""
    for line in result.stdout.splitlines():
        if re.fullmatch(r"[A-Z]\w*:", line):
            section = line
        elif section == "Commands:" and (found := re.match(r"  ([a-z][\w-]*)(?:  |$)", line)):
            commands.add(found.group(1))
        elif section == "Options:" and (found := re.match(r"  (-\S.*?)(?:  |$)", line)):
            options.update(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", found.group(1)))
    return frozenset(commands), frozenset(options)


def command_lines() -> list[str]:
    """`ir ...` as the README shows it: lines of its code blocks (after `&&` too) and inline code."""
    found, fenced = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            found += [part.strip() for part in line.split("&&") if part.strip().startswith("ir ")]
    return found + re.findall(r"`(ir [^`]+)`", README)


def resolve(line: str) -> tuple[tuple[str, ...], list[str]]:
    """The command path of an `ir ...` line (checked against the help at each level) and the options it gives."""
    words = [word.strip("[]") for word in shlex.split(line, comments=True)[1:]]
    path: tuple[str, ...] = ()
    while (commands := usage(*path)[0]) and not (words and words[0].startswith("-")):  # `ir --help`: the root's
        assert words and words[0] in commands, f"`{line}`: `ir {' '.join(path)}` has no command {words[:1]}"
        path += (words.pop(0),)
    return path, [word.split("=")[0] for word in words if re.match(r"--?[A-Za-z]", word)]


def every_command(path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = usage(*path)[0]
    return [path] if not commands else [c for name in sorted(commands) for c in every_command((*path, name))]


@pytest.mark.parametrize("line", command_lines())
def test_every_command_the_readme_shows_exists_with_its_options(line):
    path, given = resolve(line)

    assert sorted(set(given) - usage(*path)[1]) == [], f"`{line}`: not options of `ir {' '.join(path)}`"


def test_the_readme_shows_every_command_and_subcommand():
    shown = {resolve(line)[0] for line in command_lines()}

    assert [" ".join(path) for path in every_command() if path not in shown] == []


def test_every_option_the_readme_names_exists():
    named = set(re.findall(r"`(--?[a-z][\w-]*)[ =`]", README))
    options = set().union(*(usage(*path)[1] for path in every_command()))

    assert named and sorted(named - options) == []


def test_the_command_lines_are_read():
    assert len(command_lines()) >= 30
    assert resolve("ir integrations check") == (("integrations", "check"), [])
    assert resolve('ir evidence X a.zip -d "x y" [--copy]  # comment') == (("evidence",), ["-d", "--copy"])
    with pytest.raises(AssertionError, match="has no command"):
        resolve("ir integrations frobnicate")


def sample() -> str:
    [block] = re.findall(r"^```toml\n(.*?)^```", README, re.M | re.S)
    return block


def test_the_readme_settings_are_valid_settings(isolated):
    (isolated / config.FILE).write_text(sample(), encoding="utf-8")

    assert config.load() != config.Settings()  # unknown keys and bad values raise, with the file and line


def test_the_readme_shows_every_setting():
    shown = tomllib.loads(sample())
    missing = []
    for table, field in config.Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), table
        missing += [f"[{table}] {name}" for name in model.model_fields if name not in shown.get(table, {})]

    assert missing == []


def environment_read_by_the_code() -> set[str]:
    """Every string constant in ir's code (the integrations too) that names an IR_, SLACK_ or JIRA_ variable."""
    roots = {Path(importlib.import_module(name).__file__).parent for name in ("ir", "ir.integrations")}
    names = set()
    for file in {file for root in roots for file in root.rglob("*.py")}:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENVIRONMENT.fullmatch(node.value):
                names.add(node.value)
    return names


def test_the_readme_names_every_environment_variable_the_code_reads_and_no_other():
    read = environment_read_by_the_code()

    assert {"IR_HOME", "SLACK_BOT_TOKEN", "JIRA_PAT"} <= read
    assert sorted(read - set(ENVIRONMENT.findall(README))) == []
    assert sorted(set(ENVIRONMENT.findall(README)) - read) == []
