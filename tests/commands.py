"""Run the ``modstream`` command as a user would, against a test's settings."""

import os
import subprocess
import sys

from modstream.core.settings import Settings


def modstream(settings: Settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream.cli", *args],
        env={**os.environ, **settings.as_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
