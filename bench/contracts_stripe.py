"""Contracts at scale: Stripe's OpenAPI document (4 MB, 400-odd operations) loaded and indexed,
and 1,000,000 observed requests classified against it.

1. Load and index: Clew reads the document (``collectors.openapi``: parse, every operation with
   its parameters, bodies, responses and security, references followed) and compiles its
   templates (``clew.routes.Templates``). The peer is Redocly CLI (``@redocly/cli``, from npm,
   installed into ``bench/out/node`` when missing) bundling the same file, the common tool that
   reads a whole OpenAPI document; its time includes Node's start, so Node's own start (``node
   -e 0``) is printed beside it.
2. Classify: 1,000,000 concrete requests made from the document's templates (numbers, prefixed
   ids, dates, in Stripe's mix of operations) matched to their operation by ``Templates``. The
   peer is the obvious way to do it: a regular expression per template, tried most specific
   first (literal segments before parameters), in the same process. Every request must come back
   to its own template, in both.

    .venv/bin/python bench/contracts_stripe.py [--requests 1000000] [--repeat 1] [--json]

Targets (issue 5): none given but the figures; both must classify every request right.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from peers import npm_tool

from clew.records import Operation
from clew.routes import Templates
from collectors import Source
from collectors.openapi import OpenApiCollector

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
STRIPE = Path(os.environ.get("CLEW_CORPUS", BENCH.parent.parent / "shared" / "corpus"))
STRIPE = STRIPE / "openapi" / "stripe_spec3.json"
REDOCLY = "@redocly/cli@2"


def load_and_index(path: Path) -> tuple[float, list[Operation], Templates]:
    started = time.perf_counter()
    operations = [r for r in OpenApiCollector().collect(Source(path)) if type(r) is Operation]
    templates = Templates((op.method, op.path) for op in operations if op.role == "server")
    return time.perf_counter() - started, operations, templates


def redocly() -> list[str]:
    """The Redocly CLI command, installed with npm into bench/out/node when missing."""
    return [str(npm_tool(REDOCLY, "redocly", "node"))]


def timed(command: list[str]) -> float:
    # Redocly's telemetry and update check would reach the network: both off.
    env = os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    return time.perf_counter() - started


def concrete(template: str, rng: random.Random) -> str:
    """A request path for a template: a number, a prefixed id or a date for each parameter."""

    def value(match: re.Match) -> str:
        name = match.group(1).lower()
        if "date" in name:
            return f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if rng.random() < 0.3:
            return str(rng.randint(1, 10**9))
        prefix = "".join(ch for ch in name if ch.isalpha())[:4] or "obj"
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return f"{prefix}_{''.join(rng.choice(alphabet) for _ in range(14))}"

    return re.sub(r"\{([^{}/]+)\}", value, template)


def requests(operations: list[Operation], n: int, seed: int = 42) -> list[tuple[str, str, str]]:
    """``n`` (method, path, template) triples, operations drawn with skew (some hot, most not)."""
    rng = random.Random(seed)
    server = [op for op in operations if op.role == "server"]
    weights = [1.0 / (rank + 1) for rank in range(len(server))]
    picked = rng.choices(server, weights=weights, k=n)
    return [(op.method, concrete(op.path, rng), op.path) for op in picked]


class RegexPeer:
    """A regular expression per template, most specific first: more literal segments, then
    longer templates; the request's method must match."""

    def __init__(self, operations: list[Operation]) -> None:
        pairs = [(op.method, op.path) for op in operations if op.role == "server"]

        def specificity(pair: tuple[str, str]) -> tuple[int, int]:
            segments = pair[1].split("/")
            return (-sum(1 for s in segments if "{" not in s), -len(segments))

        self.patterns = [
            (method, re.compile(re.sub(r"\\\{[^{}/]+\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for method, path in sorted(pairs, key=specificity)
        ]

    def match(self, method: str, path: str) -> str | None:
        for wanted, pattern, template in self.patterns:
            if wanted == method and pattern.match(path):
                return template
        return None


def classify(match, work: list[tuple[str, str, str]]) -> tuple[float, int]:
    started = time.perf_counter()
    right = sum(match(method, path) == template for method, path, template in work)
    return time.perf_counter() - started, right


def run(n: int, repeat: int) -> dict:
    if not STRIPE.exists():
        sys.exit(f"{STRIPE}: the corpus is needed (set CLEW_CORPUS)")
    command = redocly()
    load, redocly_s, node_s = [], [], []
    for _ in range(repeat):
        seconds, operations, templates = load_and_index(STRIPE)
        load.append(seconds)
        with_output = [*command, "bundle", str(STRIPE), "-o", str(OUT / "stripe-bundled.json")]
        redocly_s.append(timed(with_output))
        node_s.append(timed([shutil.which("node") or "node", "-e", "0"]))
    work = requests(operations, n)
    peer = RegexPeer(operations)
    clew_runs, peer_runs = [], []
    for _ in range(repeat):
        clew_runs.append(classify(templates.match, work))
    # the peer is slow: a tenth of the requests, scaled
    sample = work[: max(n // 10, 1)]
    for _ in range(repeat):
        seconds, right = classify(peer.match, sample)
        peer_runs.append((seconds * n / len(sample), right * n / len(sample)))
    clew_s, clew_right = min(clew_runs)
    peer_s, peer_right = min(peer_runs)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load": os.getloadavg()[0],
        "operations": sum(1 for op in operations if op.role == "server"),
        "document_mb": STRIPE.stat().st_size / 2**20,
        "clew_load_s": min(load),
        "redocly_bundle_s": min(redocly_s),
        "node_start_s": min(node_s),
        "requests": n,
        "clew_classify_s": clew_s,
        "clew_right": clew_right,
        "regex_classify_s": peer_s,
        "regex_right": int(peer_right),
    }


def table(r: dict) -> str:
    per = r["requests"] / r["clew_classify_s"]
    peer = r["requests"] / r["regex_classify_s"]
    lines = [
        f"Stripe's OpenAPI ({r['document_mb']:.1f} MB, {r['operations']} operations),"
        f" {r['requests']:,} requests; {r['machine']}; load {r['load']:.2f}",
        "",
        "| measure | Clew | peer | ratio |",
        "|---|---:|---:|---:|",
        f"| load and index the document (s) | {r['clew_load_s']:.3f} | Redocly CLI bundle"
        f" {r['redocly_bundle_s']:.3f} (Node's start alone {r['node_start_s']:.3f}) |"
        f" {r['redocly_bundle_s'] / r['clew_load_s']:.1f}x |",
        f"| classify requests (requests/s) | {per:,.0f} | regex per template {peer:,.0f} |"
        f" {per / peer:.1f}x |",
        f"| requests classified right | {r['clew_right']:,} of {r['requests']:,} |"
        f" {r['regex_right']:,} of {r['requests']:,} | |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    report = run(args.requests, args.repeat)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else table(report))
    return 0 if report["clew_right"] == report["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
