"""Lint Stripe's OpenAPI (4 MB, 417 operations): Clew's contract-quality and security packs,
every rule on, the way ``clew check FILE`` runs them (the file read and parsed, its subjects
made, the rules evaluated, each finding located in the file), next to ``redocly lint`` (Redocly
CLI, its recommended ruleset) on the same file in the same run.

    .venv/bin/python bench/lint_stripe.py [--repeat N]

Redocly CLI (pinned below) is installed with npm into ``bench/out/redocly-<version>`` when
missing; its telemetry and update check are off. Clew runs in a fresh interpreter per repeat,
as the CLI would, with its bytecode cached (in ``bench/out/pycache``) as an installed Clew's is;
each side's best time of the repeats is compared, after one unmeasured run of each. Target:
Clew >= 3x faster.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from peers import npm_tool

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CORPUS = Path(os.environ.get("CLEW_CORPUS", ROOT.parent / "shared" / "corpus"))
STRIPE = CORPUS / "openapi" / "stripe_spec3.json"
REDOCLY_VERSION = "2.77.0"
REDOCLY = f"@redocly/cli@{REDOCLY_VERSION}"

#: What Clew's side runs, in a fresh interpreter: it prints its findings' count and seconds.
CLEW = """
import sys, time
started = time.perf_counter()
from pathlib import Path
import policies.checks
from policies.engine import Context, evaluate, load_rules
from policies.subjects import from_files
packs = [Path("policies/packs/contract-quality.yaml"), Path("policies/packs/security.yaml")]
rules = [r for r in load_rules(packs).rules.values()]
subjects = from_files([Path(sys.argv[1])])
result = evaluate(rules, subjects, Context(now=None))
located = sum(f.line is not None for f in result.findings)
print(len(result.findings), located, time.perf_counter() - started)
"""


def redocly() -> Path:
    return npm_tool(REDOCLY, "redocly", f"redocly-{REDOCLY_VERSION}")


def time_redocly(binary: Path) -> float:
    env = os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    started = time.perf_counter()
    run = subprocess.run(
        [str(binary), "lint", str(STRIPE), "--format", "summary"],
        capture_output=True,
        env=env,
    )
    elapsed = time.perf_counter() - started
    if run.returncode not in (0, 1):
        sys.exit(f"redocly lint failed: {run.stderr.decode()[-2000:]}")
    return elapsed


def clew_environment() -> dict[str, str]:
    """The environment Clew runs in: bytecode cached (in bench/out, not beside the sources), as
    an installed Clew's is, whatever PYTHONDONTWRITEBYTECODE this shell sets."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": str(BENCH / "out" / "pycache")}


def time_clew() -> tuple[float, float, int, int]:
    """Wall seconds of the whole process (interpreter start included), the seconds measured
    inside it (imports, read, parse, evaluation, locating), findings and located findings."""
    python = ROOT / ".venv" / "bin" / "python"
    started = time.perf_counter()
    run = subprocess.run(
        [str(python), "-c", CLEW, str(STRIPE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env=clew_environment(),
    )
    elapsed = time.perf_counter() - started
    findings, located, inside = run.stdout.split()
    return elapsed, float(inside), int(findings), int(located)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not STRIPE.exists():
        sys.exit(f"{STRIPE} is missing (set CLEW_CORPUS)")
    binary = redocly()
    time_redocly(binary)  # warm the page cache for both, and Clew's bytecode cache
    time_clew()
    clew_runs = [time_clew() for _ in range(args.repeat)]
    peer_runs = [time_redocly(binary) for _ in range(args.repeat)]
    wall, inside, findings, located = min(clew_runs)
    peer = min(peer_runs)
    print(f"Stripe's OpenAPI {STRIPE.stat().st_size / 2**20:.1f} MB, best of {args.repeat}")
    print(f"| measure | Clew | Redocly CLI {REDOCLY_VERSION} | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| lint, whole process (s) | {wall:.2f} | {peer:.2f} | {peer / wall:.1f}x |")
    print(f"| (Clew inside the process: imports, parse, rules, locating) | {inside:.2f} | | |")
    print(f"| findings (located in the file) | {findings} ({located}) | | |")
    verdict = "PASS" if peer / wall >= 3 else "FAIL"
    print(f"target Clew >= 3x faster: {verdict}")


if __name__ == "__main__":
    main()
