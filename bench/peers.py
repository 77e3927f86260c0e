"""The peers benchmarks measure Clew against, installed where they run: npm packages into a
folder of their own under ``bench/out`` (ignored by git), once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def npm_tool(package: str, command: str, folder: str) -> Path:
    """The executable ``command`` of the npm ``package`` (``name@version``), installed with npm
    into ``bench/out/<folder>`` when missing; exits saying so when npm is not there."""
    prefix = OUT / folder
    binary = prefix / "node_modules" / ".bin" / command
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit(f"npm is needed to install the peer ({package})")
        print(f"installing {package} with npm into {prefix}", file=sys.stderr)
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary
