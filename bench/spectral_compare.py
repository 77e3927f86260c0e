"""Agreement with the Spectral CLI: each corpus contract linted by Spectral (``spectral:oas``,
every rule on) and by Clew's contract-quality pack, and per rule Spectral's count of findings
next to Clew's.

    .venv/bin/python bench/spectral_compare.py [--write-fixture] [--paths] [FILE ...]

Spectral (``@stoplight/spectral-cli``, pinned below) is installed with npm into
``bench/out/spectral-<version>`` when missing. The corpus is ``$CLEW_CORPUS`` or
``../shared/corpus`` (its ``openapi`` and ``asyncapi`` folders), with the synthetic contracts
of ``tests/policies/data/synthetic-*.yaml`` (written to break the rules the corpus keeps).
``--write-fixture`` writes Spectral's counts to ``tests/policies/data/spectral_counts.json``, which
``tests/policies/test_spectral_agreement.py`` holds Clew to; ``--paths`` prints the paths one
reports and the other does not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

from peers import npm_tool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies.engine import Context, Rule, load_rules  # noqa: E402
from policies.subjects import read_contract_file  # noqa: E402

SPECTRAL_VERSION = "6.16.3"
SPECTRAL = f"@stoplight/spectral-cli@{SPECTRAL_VERSION}"
SYNTHETIC = ROOT / "tests" / "policies" / "data"
FIXTURE = SYNTHETIC / "spectral_counts.json"
PACK = ROOT / "policies" / "packs" / "contract-quality.yaml"


def corpus_files() -> list[Path]:
    corpus = Path(os.environ.get("CLEW_CORPUS", ROOT.parent / "shared" / "corpus"))
    files = [p for folder in ("openapi", "asyncapi") for p in sorted((corpus / folder).glob("*"))]
    if not files:
        sys.exit(f"no corpus at {corpus} (set CLEW_CORPUS)")
    return files + sorted(SYNTHETIC.glob("synthetic-*.yaml"))


def spectral() -> Path:
    """The Spectral CLI, installed with npm into bench/out when missing."""
    return npm_tool(SPECTRAL, "spectral", f"spectral-{SPECTRAL_VERSION}")


def spectral_results(binary: Path, path: Path) -> list[dict]:
    """Spectral's findings on one file, with every rule of spectral:oas on."""
    with tempfile.TemporaryDirectory() as folder:
        ruleset = Path(folder) / ".spectral.yaml"
        ruleset.write_text("extends: [[spectral:oas, all]]\n")
        run = subprocess.run(
            [str(binary), "lint", "-r", str(ruleset), "-f", "json", "-q", str(path)],
            capture_output=True,
            text=True,
        )
    if run.returncode not in (0, 1) or not run.stdout.strip():
        sys.exit(f"spectral failed on {path}: {run.stderr}")
    return json.loads(run.stdout)


def clew_rules() -> list[Rule]:
    """Every rule of the contract-quality pack, those Spectral's recommended set leaves out
    included."""
    import policies.checks  # noqa: F401

    return list(load_rules([PACK]).rules.values())


def clew_results(rules: list[Rule], path: Path) -> list[tuple[str, tuple]]:
    """(rule, path) of each of Clew's findings on one file; none when Clew cannot read it as a
    contract."""
    from policies.engine import PolicyError

    try:
        doc, _ = read_contract_file(path)
    except PolicyError:
        return []
    context = Context(now=None)
    return [
        (rule.id, tuple(str(p) for p in hit.path))
        for rule in rules
        for hit in rule.check.function(doc, rule.options, context)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--write-fixture", action="store_true")
    parser.add_argument("--paths", action="store_true")
    args = parser.parse_args()
    binary = spectral()
    rules = clew_rules()
    implemented = sorted(r.id for r in rules)
    files = args.files or corpus_files()
    fixture: dict = {"spectral": SPECTRAL_VERSION, "date": date.today().isoformat(), "files": {}}
    total_equal = total = 0
    for path in files:
        theirs = spectral_results(binary, path)
        ours = clew_results(rules, path)
        their_counts = Counter(r["code"] for r in theirs)
        our_counts = Counter(rule for rule, _ in ours)
        key = f"{path.parent.name}/{path.name}"
        fixture["files"][key] = {r: their_counts.get(r, 0) for r in implemented}
        print(f"\n{path.name}")
        print(f"  {'rule':42} {'spectral':>8} {'clew':>8}")
        for rule in implemented:
            a, b = their_counts.get(rule, 0), our_counts.get(rule, 0)
            total += 1
            total_equal += a == b
            if a or b:
                print(f"  {rule:42} {a:8} {b:8}  {'equal' if a == b else 'DIFFERENT'}")
            if args.paths and a != b:
                their_paths = {tuple(map(str, r["path"])) for r in theirs if r["code"] == rule}
                our_paths = {p for r, p in ours if r == rule}
                for p in sorted(their_paths - our_paths)[:10]:
                    print(f"      only spectral: {list(p)}")
                for p in sorted(our_paths - their_paths)[:10]:
                    print(f"      only clew:     {list(p)}")
        others = sorted(set(their_counts) - set(implemented))
        if others:
            missing = ", ".join(f"{r} {their_counts[r]}" for r in others)
            print(f"  not implemented by Clew: {missing}")
    print(f"\n{total_equal} of {total} (file, rule) counts equal")
    if args.write_fixture:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
        print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
