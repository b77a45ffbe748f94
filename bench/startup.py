"""Startup benchmark (issue 2): cold `ir --help`, `ir list` and `ir validate <every bundled playbook>`, against a
minimal Typer app's `--help` measured in the same run.

    python bench/startup.py [--repeat 21]

Each command runs in a fresh interpreter (cold: nothing imported, the OS file cache warm), in an empty directory
with its own IR_HOME and no IR_PLAYBOOK_PATH, interleaved with the others so that drifts in machine load hit all
of them alike. Prints the median, the fastest run, and the ratio of medians to the baseline.

Budgets: `ir list` <= 1.3 x the minimal Typer app's --help; validating every bundled playbook <= 2 x.
A benchmark, not a test: it always exits 0, and prints OVER BUDGET when a budget is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

MINIMAL_APP = """\
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    print(f"hello {name}")


@app.command()
def bye(name: str = "world") -> None:
    print(f"bye {name}")


app()
"""
IR = "import sys; from ir.script import main; sys.argv[0] = 'ir'; main()"  # what the `ir` console script does
BUDGETS = {"ir list": 1.3, "ir validate (bundled)": 2.0}


def bundled_playbooks() -> list[str]:
    from ir.format.catalog import search_path

    directory = dict(search_path())["bundled"]
    return sorted(str(p) for p in directory.glob("*.yaml"))


def commands() -> dict[str, list[str]]:
    python = [sys.executable, "-c"]
    return {
        "minimal Typer --help": [*python, MINIMAL_APP, "--help"],
        "ir --help": [*python, IR, "--help"],
        "ir list": [*python, IR, "list"],
        "ir validate (bundled)": [*python, IR, "validate", *bundled_playbooks()],
    }


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    began = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120, check=False)
    return time.perf_counter() - began, result


def slowest_imports(argv: list[str], cwd: Path, env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level imports that took longest in one run (`python -X importtime`), in milliseconds."""
    _, result = run([argv[0], "-X", "importtime", *argv[1:]], cwd, env)
    found = []
    for line in result.stderr.decode().splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            found.append((parts[2].strip(), int(parts[1]) / 1000))
    return sorted(found, key=lambda item: -item[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21, help="timed runs of each command (default 21)")
    repeat = parser.parse_args().repeat

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "IR_PLAYBOOK_PATH"} | {"IR_HOME": str(Path(tmp) / "home")}
        cmds = commands()
        for argv in cmds.values():  # warm the OS file cache and the .pyc files
            run(argv, work, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        failed: dict[str, str] = {}
        for _ in range(repeat):
            for name, argv in cmds.items():
                seconds, result = run(argv, work, env)
                times[name].append(seconds)
                if result.returncode != 0:  # a timing of a command that failed means nothing
                    failed[name] = f"exit {result.returncode}: {result.stderr.decode().strip()[:300]}"
        imports = slowest_imports(cmds["ir list"], work, env)

    print(f"Python {platform.python_version()}, typer {version('typer')}, pydantic {version('pydantic')}, "
          f"{platform.system()} {platform.machine()}; {repeat} cold runs each; "
          f"{len(bundled_playbooks())} bundled playbooks\n")
    baseline = statistics.median(times["minimal Typer --help"])
    print(f"{'command':<24}{'median ms':>10}{'min ms':>8}{'ratio':>7}{'budget':>8}  verdict")
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / baseline
        budget = BUDGETS.get(name)
        verdict = "" if budget is None else ("ok" if ratio <= budget else "OVER BUDGET")
        if name in failed:
            verdict = f"FAILED ({failed[name]})"
        print(f"{name:<24}{median * 1000:>10.1f}{min(samples) * 1000:>8.1f}{ratio:>6.2f}x"
              f"{f'{budget}x' if budget else '-':>8}  {verdict}")
    print("\nslowest top-level imports of `ir list` (one run, python -X importtime, cumulative):")
    for module, ms in imports:
        print(f"  {module:<30}{ms:>7.1f} ms")


if __name__ == "__main__":
    main()
