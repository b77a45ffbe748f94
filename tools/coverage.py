"""Line and branch coverage of the `ir` package over the whole test suite, the `ir` subprocesses included.

    pip install -e '.[test,coverage]'
    python tools/coverage.py                 # the whole suite (about twice its usual time), then the report
    python tools/coverage.py tests/test_chain.py -k head   # any pytest arguments: a part of it
    python tools/coverage.py --report        # the report of the last run again

Most tests run the installed `ir` in a subprocess, so measured in the pytest process alone coverage reads a third
of what runs. coverage's `patch = subprocess` (7.10+) measures every Python process the tests start (the pytest-xdist
workers, each `ir`) with the same settings; each writes its own data file under build/coverage/, combined at the
end. The report lists each module with its statements, branches and the lines and branches never run; the
safety-critical modules are listed first (docs/testing.md explains what is not covered there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "build" / "coverage"
CRITICAL = ["*/store/timeline.py", "*/store/sqlite.py", "*/store/header.py", "*/run/outbox.py",
            "*/integrations/slack.py", "*/integrations/jira.py", "*/format/templates.py", "*/format/values.py",
            "*/paths.py", "*/run/evidence.py", "*/export/verify.py", "*/redact.py"]
RC = """\
[run]
branch = true
source_pkgs = ir
parallel = true
patch = subprocess
data_file = {data}/.coverage

[report]
skip_empty = true
precision = 1
"""


def main() -> None:
    args = sys.argv[1:]
    rc = DATA / "coveragerc"
    env = {**os.environ, "COVERAGE_RCFILE": str(rc)}
    if args != ["--report"]:
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True)
        rc.write_text(RC.format(data=DATA))
        done = subprocess.run([sys.executable, "-m", "coverage", "run", "-m", "pytest", "-p", "no:cacheprovider",
                               *args], cwd=ROOT, env=env)
        print(f"pytest exited {done.returncode}", flush=True)
        subprocess.run([sys.executable, "-m", "coverage", "combine", "-q"], cwd=ROOT, env=env, check=True)
    report = [sys.executable, "-m", "coverage", "report"]
    print("The safety-critical modules:", flush=True)
    subprocess.run([*report, "--show-missing", f"--include={','.join(CRITICAL)}"], cwd=ROOT, env=env, check=True)
    print("\nEvery module:", flush=True)
    subprocess.run(report, cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
