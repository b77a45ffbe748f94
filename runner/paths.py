"""Where ir keeps its files: IR_HOME if set, else the platform's user data directory; private (0700)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    configured = os.environ.get("IR_HOME")
    if configured:
        path = Path(configured)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("ir", appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = home() / "logs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path
