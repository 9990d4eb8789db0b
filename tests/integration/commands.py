"""Running `hybridlm` as a user does: a subprocess, its output read as text or as its last JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def hybridlm(*args: str, data_dir: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HYBRIDLM_DATA_DIR": str(data_dir)} if data_dir else None
    return subprocess.run([sys.executable, "-m", "hybridlm", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def last_json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
