"""Linting contract files loads only what linting needs: the store's, the graph's and the diff's
modules (SQLAlchemy, networkx) wait until a store is evaluated, and jsonschema until an example
is validated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clew import graph
from policies.checks.dependencies import CYCLE_LENGTH_BOUND, CycleOptions

ROOT = Path(__file__).resolve().parents[2]
LINT = """
import sys
from pathlib import Path
import policies.checks
from policies.engine import Context, evaluate, load_rules
from policies.subjects import from_files
packs = [Path("policies/packs/contract-quality.yaml"), Path("policies/packs/security.yaml")]
evaluate(load_rules(packs).active(), from_files([Path(sys.argv[1])]), Context(now=None))
heavy = ("sqlalchemy", "networkx", "clew.store", "clew.diff", "clew.graph", "jsonschema")
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)))
"""


def _loaded(contract: Path) -> str:
    run = subprocess.run(
        [sys.executable, "-c", LINT, str(contract)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return run.stdout.strip()


def test_linting_a_contract_file_imports_neither_the_store_nor_the_graph():
    assert _loaded(ROOT / "tests" / "policies" / "data" / "spectral-pets.yaml") == ""


def test_jsonschema_is_imported_when_an_example_is_validated():
    loaded = _loaded(ROOT / "tests" / "policies" / "data" / "synthetic-oas3.yaml").split()
    assert "jsonschema" in loaded
    assert not [m for m in loaded if m.startswith(("sqlalchemy", "networkx", "clew."))]


def test_the_cycle_bound_of_the_dependency_pack_is_the_graphs():
    assert CYCLE_LENGTH_BOUND == graph.CYCLE_LENGTH_BOUND
    assert CycleOptions().max_length == graph.CYCLE_LENGTH_BOUND


def test_the_versioning_schemes_of_the_pack_are_the_inventorys():
    from clew import inventory
    from policies.checks import versioning

    assert versioning.SCHEMES == inventory.SCHEMES
