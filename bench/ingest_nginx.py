"""Ingest of NGINX ``combined`` access logs: ``clew ingest`` next to GoAccess on the same file.

The file: generated NGINX ``combined`` lines (the product's default ``log_format``) for a small
API landscape behind one NGINX: some forty routes with identifiers in their paths (numbers,
UUIDs, prefixed ids), a few hundred clients, mostly 2xx with 3xx, 4xx and 5xx among them, real
user agents and referers, over two hours. Generated once per parameter set into ``bench/out``.

The peer is GoAccess (Debian's ``goaccess``, installed with apt-get when missing), the common
tool for the same job: it parses the file with ``--log-format=COMBINED`` and writes its JSON
report, on one thread, as it runs by default. Clew is the real CLI in a subprocess on a fresh
SQLite database: the requests stored, route templates found, rollups written. Both read the
file from the page cache.

    .venv/bin/python bench/ingest_nginx.py [--lines 2000000] [--repeat 1] [--json]

Targets (issue 4): Clew's lines/s at least 5 times GoAccess's; peak RSS (the process tree's,
summed) at most 300 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from ingest_otlp_json import OUT, clew_ingest, finish

TARGET_RATIO = 5.0
TARGET_RSS_MB = 300.0
#: 2026-01-15 09:00 UTC: the generated traffic starts here and runs for two hours.
START_S = 1_768_467_600
SPAN_S = 2 * 3600

_ROUTES = [
    ("GET", "/api/v1/orders/{n}", 14),
    ("GET", "/api/v1/orders", 8),
    ("POST", "/api/v1/orders", 5),
    ("GET", "/api/v1/orders/{n}/items", 6),
    ("PUT", "/api/v1/orders/{n}", 2),
    ("DELETE", "/api/v1/orders/{n}", 1),
    ("GET", "/api/v1/customers/{uuid}", 9),
    ("PATCH", "/api/v1/customers/{uuid}", 2),
    ("GET", "/api/v1/customers/{uuid}/addresses", 3),
    ("GET", "/api/v2/payments/{pid}", 6),
    ("POST", "/api/v2/payments", 4),
    ("POST", "/api/v2/payments/{pid}/refunds", 1),
    ("GET", "/api/v1/products", 10),
    ("GET", "/api/v1/products/{n}", 12),
    ("GET", "/api/v1/products/{n}/reviews", 3),
    ("GET", "/api/v1/search", 7),
    ("GET", "/api/v1/inventory/{n}", 4),
    ("POST", "/api/v1/carts", 3),
    ("GET", "/api/v1/carts/{uuid}", 5),
    ("POST", "/api/v1/carts/{uuid}/items", 4),
    ("DELETE", "/api/v1/carts/{uuid}/items/{n}", 1),
    ("GET", "/api/v1/shipments/{n}/tracking", 3),
    ("POST", "/api/v1/auth/token", 4),
    ("GET", "/health", 6),
    ("GET", "/metrics", 1),
    ("GET", "/static/app.js", 3),
    ("GET", "/static/app.css", 2),
    ("GET", "/favicon.ico", 1),
]
_STATUSES = [
    (200, 860),
    (201, 40),
    (204, 15),
    (304, 25),
    (400, 12),
    (401, 10),
    (404, 25),
    (429, 4),
    (500, 5),
    (502, 3),
    (503, 1),
]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
]
_REFERERS = ["-", "-", "-", "https://shop.example.com/", "https://shop.example.com/cart"]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _target(template: str, rng: random.Random) -> str:
    path = template
    path = path.replace("{n}", str(rng.randint(1, 250_000)), 1)
    path = path.replace("{n}", str(rng.randint(1, 40)), 1)
    if "{uuid}" in path:
        path = path.replace("{uuid}", str(_uuid(rng)))
    if "{pid}" in path:
        path = path.replace(
            "{pid}",
            "pi_"
            + "".join(rng.choices("abcdefghkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=24)),
        )
    if rng.random() < 0.15:
        path += f"?page={rng.randint(1, 20)}&limit=50"
    return path


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def generate(path: Path, lines: int, seed: int) -> None:
    """``lines`` combined lines in time order into ``path``."""
    rng = random.Random(seed)
    routes = [(m, t) for m, t, _ in _ROUTES]
    route_weights = [w for _, _, w in _ROUTES]
    statuses = [s for s, _ in _STATUSES]
    status_weights = [w for _, w in _STATUSES]
    clients = [
        f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(400)
    ]
    temporary = path.with_suffix(".partial")
    with temporary.open("w", encoding="ascii") as out:
        block = []
        for i in range(lines):
            second = START_S + i * SPAN_S // lines
            moment = datetime.fromtimestamp(second, UTC)
            stamp = (
                f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:"
                f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"
            )
            method, template = rng.choices(routes, route_weights)[0]
            status = rng.choices(statuses, status_weights)[0]
            size = 0 if status in (204, 304) else rng.randint(120, 24_000)
            block.append(
                f'{rng.choice(clients)} - - [{stamp}] "{method} {_target(template, rng)} HTTP/1.1"'
                f' {status} {size} "{rng.choice(_REFERERS)}" "{rng.choice(_AGENTS)}"\n'
            )
            if len(block) == 10_000:
                out.writelines(block)
                block = []
        out.writelines(block)
    temporary.rename(path)


def corpus(lines: int, seed: int) -> Path:
    """The folder holding the generated log for these parameters, generated unless there."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    folder = OUT / f"nginx-{lines}-seed{seed}-{digest}"
    log = folder / "access.log"
    if not log.exists():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate(log, lines, seed)
        print(
            f"generated {lines:,} lines in {time.perf_counter() - started:.1f} s: {log}",
            file=sys.stderr,
        )
    return folder


def goaccess() -> str:
    """The goaccess command, installed from Debian's packages when it is not there."""
    found = shutil.which("goaccess")
    if found is None:
        print("goaccess is not installed: apt-get install -y goaccess", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "goaccess"], check=True)
        found = shutil.which("goaccess")
        if found is None:
            sys.exit("goaccess could not be installed")
    return found


def goaccess_run(log: Path) -> tuple[float, int, str]:
    """GoAccess over ``log`` writing its JSON report: wall seconds, requests it counted, version."""
    command = goaccess()
    version = subprocess.run([command, "--version"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="goaccess-", dir=OUT) as tmp:
        report = Path(tmp) / "report.json"
        started = time.perf_counter()
        subprocess.run(
            [command, str(log), "--log-format=COMBINED", "--no-progress", "-o", str(report)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        general = orjson.loads(report.read_bytes())["general"]
    counted = int(general.get("total_requests", 0))
    return wall, counted, version.splitlines()[0] if version else "goaccess"


def run(lines: int, seed: int, repeat: int = 1) -> dict:
    """Generate (or reuse) the log, then GoAccess and Clew on it in turn, ``repeat`` times;
    each keeps its fastest run (and Clew its largest RSS)."""
    OUT.mkdir(exist_ok=True)
    folder = corpus(lines, seed)
    log = folder / "access.log"
    log.read_bytes()  # both read from the page cache
    load_before = os.getloadavg()[0]
    peer_wall, counted, version = float("inf"), 0, ""
    clew: dict = {}
    peak = 0.0
    for _ in range(repeat):
        wall, counted, version = goaccess_run(log)
        peer_wall = min(peer_wall, wall)
        attempt = clew_ingest(folder)
        peak = max(peak, attempt["peak_rss_mb"])
        if not clew or attempt["wall_s"] < clew["wall_s"]:
            clew = attempt
    result = clew["result"]
    clew_rate, peer_rate = result["records"] / clew["wall_s"], counted / peer_wall
    ratio = clew_rate / peer_rate
    correct = result["records"] == lines and result["quarantined"] == 0 and counted == lines
    return {
        "benchmark": "ingest_nginx",
        "lines": lines,
        "data_mb": log.stat().st_size / 1e6,
        "repeat": repeat,
        "clew": clew | {"peak_rss_mb": peak, "lines_per_s": clew_rate},
        "goaccess": {
            "version": version,
            "wall_s": peer_wall,
            "requests": counted,
            "lines_per_s": peer_rate,
        },
        "ratio": ratio,
        "correct": correct,
        "targets": {
            "ratio": {"target": TARGET_RATIO, "value": ratio, "pass": ratio >= TARGET_RATIO},
            "rss": {"target": TARGET_RSS_MB, "value": peak, "pass": peak <= TARGET_RSS_MB},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m_before": load_before,
            "load_1m_after": os.getloadavg()[0],
        },
    }


def table(report: dict) -> str:
    """The report as a small Markdown table, as it goes into RESULTS.md."""
    clew, peer, targets = report["clew"], report["goaccess"], report["targets"]

    def verdict(name: str) -> str:
        return "PASS" if targets[name]["pass"] else "FAIL"

    result = clew["result"]
    return "\n".join(
        [
            f"{report['lines']:,} NGINX combined lines ({report['data_mb']:.0f} MB),"
            f" {report['machine']['cpus']} cores, best of {report['repeat']},"
            f" load {report['machine']['load_1m_before']:.2f} before and"
            f" {report['machine']['load_1m_after']:.2f} after; {peer['version']}",
            "",
            "| measure | value | target | |",
            "|---|---:|---|---|",
            f"| Clew `clew ingest` lines/s | {clew['lines_per_s']:,.0f} ({clew['wall_s']:.1f} s"
            f" wall, {clew['cpu_s']:.1f} s CPU) | | |",
            f"| GoAccess (`--log-format=COMBINED`, JSON report) lines/s |"
            f" {peer['lines_per_s']:,.0f} ({peer['wall_s']:.1f} s) | | |",
            f"| ratio Clew / GoAccess | {report['ratio']:.2f} | >= {TARGET_RATIO} |"
            f" {verdict('ratio')} |",
            f"| Clew peak RSS, process tree summed | {clew['peak_rss_mb']:.0f} MB |"
            f" <= {TARGET_RSS_MB:.0f} MB | {verdict('rss')} |",
            f"| Clew records / inserted / quarantined | {result['records']:,} /"
            f" {result['inserted']:,} / {result['quarantined']:,} |"
            f" {report['lines']:,} / {report['lines']:,} / 0 |"
            f" {'PASS' if report['correct'] else 'FAIL'} |",
            f"| GoAccess requests counted | {peer['requests']:,} | {report['lines']:,} | |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1, help="run both N times, keep the best")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    return finish(run(args.lines, args.seed, args.repeat), table, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
