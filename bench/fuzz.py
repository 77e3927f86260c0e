"""Long fuzzing runs of every collector: mutated real samples of each format read as files, as
``clew ingest`` reads them (``tests/collectors/fuzzing.py``); any exception but the documented
``CollectorError`` is a crash, its input saved under ``bench/out/fuzz-crashes/``.

    .venv/bin/python bench/fuzz.py [--seconds 60] [--collector NAME ...] [--seed N]

Prints, per collector, the inputs tried; how many gave records with nothing quarantined, gave
records with some input quarantined, or gave nothing (refused with ``CollectorError``, or
empty); and the crashes. Exits 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors import load_registry  # noqa: E402
from tests.collectors import fuzzing  # noqa: E402

CORPUS = Path(os.environ.get("CLEW_CORPUS", ROOT.parent / "shared" / "corpus"))
CRASHES = ROOT / "bench" / "out" / "fuzz-crashes"


def run(name: str, samples: list[bytes], seconds: float, seed: int) -> dict:
    rng = random.Random(f"{seed}-{name}")
    tried = read = quarantined = refused = 0
    crashes: list[str] = []
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz-{name}"
        while time.monotonic() < deadline:
            data = fuzzing.mutate(rng, samples)
            tried += 1
            try:
                records, bad = fuzzing.read(name, data, path)
            except Exception:  # a crash: keep the input to replay it
                digest = hashlib.sha256(data).hexdigest()[:16]
                CRASHES.mkdir(parents=True, exist_ok=True)
                (CRASHES / f"{name}-{digest}").write_bytes(data)
                crashes.append(f"{digest}: {traceback.format_exc(limit=3).splitlines()[-1]}")
                continue
            if records == 0:
                refused += 1
            elif bad:
                quarantined += 1
            else:
                read += 1
    return {
        "tried": tried,
        "read": read,
        "quarantined": quarantined,
        "refused": refused,
        "crashes": crashes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per collector")
    parser.add_argument("--collector", action="append", default=None)
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"no corpus at {CORPUS} (set CLEW_CORPUS)")
    samples = fuzzing.seeds(CORPUS)
    names = args.collector or sorted(load_registry())
    print(f"{args.seconds:g} s per collector, seed {args.seed}")
    print(
        "| collector | inputs tried | records, none quarantined | some quarantined"
        " | refused or empty | crashes |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    crashed = 0
    for name in names:
        result = run(name, samples[name], args.seconds, args.seed)
        crashed += len(result["crashes"])
        print(
            f"| {name} | {result['tried']:,} | {result['read']:,} | {result['quarantined']:,}"
            f" | {result['refused']:,} | {len(result['crashes'])} |",
            flush=True,
        )
        for crash in result["crashes"][:5]:
            print(f"    crash {crash}")
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
