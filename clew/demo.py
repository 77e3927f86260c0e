"""The demo: the sample landscape generated, ingested and kept fresh, for `clew demo` and tests."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, text

from clew.pipeline import IngestResult, ingest
from clew.store import PROJECT_ROOT
from collectors import Registry, load_registry
from collectors.access_logs import Settings

GENERATOR = PROJECT_ROOT / "sample_data" / "generator.py"
#: A sample younger than this is not generated again.
FRESH_FOR_NS = 30 * 60 * 1_000_000_000
_NS_PER_MINUTE = 60_000_000_000


def generator() -> ModuleType:
    """The sample landscape generator (sample_data/generator.py), loaded from the checkout."""
    spec = importlib.util.spec_from_file_location("clew_sample_generator", GENERATOR)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{GENERATOR}: the sample landscape generator is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_dir(engine: Engine) -> Path:
    """Where generated samples are kept: beside a SQLite file, else under the working folder."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    base = Path(database).parent if database and database != ":memory:" else Path.cwd()
    return base / "clew-sample"


def _newest_sample_end(engine: Engine, folder: Path) -> int | None:
    with engine.connect() as conn:
        sources = conn.execute(
            text("SELECT source FROM ingest_checkpoints WHERE source LIKE :prefix"),
            {"prefix": f"{folder}/sample-%"},
        ).scalars()
        # a sample's files are in its folder or below it (contracts/, catalog/)
        ends = [int(Path(s).relative_to(folder).parts[0].removeprefix("sample-")) for s in sources]
    return max(ends, default=None)


def load_sample(
    engine: Engine,
    *,
    now_ns: int | None = None,
    traces: int = 4000,
    registry: Registry | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Generate and ingest the sample landscape ending now, unless a fresh one is loaded already.

    Idempotent: a second call within ``FRESH_FOR_NS`` loads nothing.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    end_ns = now_ns // _NS_PER_MINUTE * _NS_PER_MINUTE
    folder = sample_dir(engine)
    newest = _newest_sample_end(engine, folder)
    if newest is not None and end_ns - newest < FRESH_FOR_NS:
        return {"loaded": False, "end_ns": newest, "inserted": 0}
    out = folder / f"sample-{end_ns}"
    manifest = generator().generate(out, end_ns=end_ns, traces=traces)
    result = ingest_sample(engine, out, registry, progress=progress)
    run = evaluate_sample(engine, out, end_ns)
    return {
        "loaded": True,
        "end_ns": end_ns,
        "inserted": result.inserted,
        "quarantined": result.quarantined,
        "policies": dataclasses.asdict(run.summary) if run.summary else None,
        "manifest": manifest,
    }


#: The window the demo evaluates its policies over: the whole sample.
POLICY_WINDOW = "24h"
#: The origin the sample's waivers are stored under, whichever sample folder holds the file.
SAMPLE_WAIVERS = "sample_data/waivers.yaml"


def evaluate_sample(engine: Engine, folder: Path, end_ns: int):
    """Evaluate the built-in policies over the sample ending at ``end_ns``, the sample's
    waivers (``folder/waivers.yaml``) in force, and record the run."""
    from datetime import UTC, datetime

    from clew.store import queries
    from policies import run

    now = datetime.fromtimestamp(end_ns / 1e9, UTC)
    window = queries.window_between(POLICY_WINDOW, None, end_ns)
    return run.check_store(
        engine,
        run.rules(),
        window,
        now,
        waivers=folder / "waivers.yaml",
        waivers_origin=SAMPLE_WAIVERS,
    )


def ingest_sample(
    engine: Engine,
    folder: Path,
    registry: Registry | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> IngestResult:
    """Ingest a generated sample: what its owners declare first (its contracts, then its
    catalog, whose API entities point at the same contract files), then its gateway logs, each
    read with the settings its manifest gives (the gateway's node name; consumers as the log
    names them), then its traces.

    ``options`` go to ``clew.pipeline.ingest`` (``batch_spans``, ``worker``); the result totals
    every file's.
    """
    registry = registry or load_registry()
    manifest = json.loads((folder / "manifest.json").read_text())
    declared = [
        folder / name
        for name in (
            *(contract["file"] for contract in manifest.get("contracts", {}).get("files", ())),
            *manifest.get("catalog", {}).get("files", ()),
        )
    ]
    runs = [(declared, registry)] if declared else []
    runs += [
        ([folder / name], _configured(registry, Settings(gateway=log["gateway"])))
        for name, log in manifest.get("gateway_logs", {}).items()
    ]
    runs.append(([folder / "traces.otlp.jsonl"], registry))
    total = sum(path.stat().st_size for paths, _ in runs for path in paths)
    results, before = [], 0
    for paths, run_registry in runs:
        report = None
        if progress is not None:
            # one bar over every file, not one per file that starts again at zero
            def report(stage: str, done: int, _: int, before: int = before) -> None:
                progress(stage, before + done, total)

        results.append(ingest(engine, paths, run_registry, progress=report, **options))
        before += sum(path.stat().st_size for path in paths)
    return _totals(results)


def _configured(registry: Registry, settings: Settings) -> Registry:
    """The registry with its access-log collectors reading by ``settings`` (as ``clew ingest
    --gateway/--consumer`` does)."""
    return Registry(
        [
            collector.configured(settings) if hasattr(collector, "configured") else collector
            for collector in registry.values()
        ]
    )


def _totals(results: list[IngestResult]) -> IngestResult:
    """One result of several runs: counts added, reports and problems listed together, counts by
    name (unread metrics) added name by name."""
    total = IngestResult()
    for result in results:
        for field in dataclasses.fields(IngestResult):
            mine, theirs = getattr(total, field.name), getattr(result, field.name)
            if isinstance(mine, dict):
                setattr(
                    total, field.name, {k: mine.get(k, 0) + theirs.get(k, 0) for k in mine | theirs}
                )
            else:
                setattr(total, field.name, mine + theirs)
    return total
