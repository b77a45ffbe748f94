"""Type-check the `ir` package with mypy (settings in pyproject.toml).

The source folders are not named after the import name (runner/ is `ir`, integrations/ is `ir.integrations`;
pyproject.toml maps them), and mypy reads packages only by their folder names. So this builds the package as it
installs, from symlinks, under build/typecheck/, runs mypy there, and prints its findings with the source paths.

usage: python tools/typecheck.py [mypy options]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"
PACKAGE = {"ir": ROOT / "runner", "ir/integrations": ROOT / "integrations"}


def build() -> None:
    shutil.rmtree(TREE, ignore_errors=True)
    for target, source in PACKAGE.items():
        folder = TREE / target
        folder.mkdir(parents=True)
        for entry in source.iterdir():
            if entry.name != "__pycache__":
                (folder / entry.name).symlink_to(entry)


def main() -> int:
    build()
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                             "-p", "ir", *sys.argv[1:]], cwd=TREE, capture_output=True, text=True, check=False)
    out = result.stdout.replace("ir/integrations/", "integrations/").replace("ir/", "runner/")
    sys.stdout.write(out)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
