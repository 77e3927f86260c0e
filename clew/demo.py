"""The demo: the sample landscape generated, ingested and kept fresh, for `clew demo` and tests."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, text

from clew.pipeline import ingest
from clew.store import PROJECT_ROOT
from collectors import Registry, load_registry

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
        ends = [int(Path(s).parent.name.removeprefix("sample-")) for s in sources]
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
    result = ingest(
        engine, [out / "traces.otlp.jsonl"], registry or load_registry(), progress=progress
    )
    return {
        "loaded": True,
        "end_ns": end_ns,
        "inserted": result.inserted,
        "quarantined": result.quarantined,
        "manifest": manifest,
    }
