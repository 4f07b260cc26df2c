"""Plain helpers for the tests (fixtures live in conftest.py): the repo root and a runner for
the entry scripts, imported as `from tests.helpers import REPO, run_script`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(script: str, *overrides: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run scripts/<script> as a user would, capturing its output."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *overrides], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
