"""Clew's contract-quality pack agrees with the Spectral CLI: on each corpus contract, and on
the synthetic contracts of ``data/synthetic-*.yaml`` (written to break the rules the corpus
keeps), each rule finds as many problems as Spectral's rule of the same name did (``spectral
lint`` with ``spectral:oas``, every rule on; its counts are in ``data/spectral_counts.json``,
written by ``bench/spectral_compare.py --write-fixture``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import policies.checks  # noqa: F401
from policies.engine import Context, load_rules
from policies.subjects import read_contract_file
from tests.conftest import corpus

DATA = Path(__file__).parent / "data"
FIXTURE = json.loads((DATA / "spectral_counts.json").read_text())
PACK = Path(__file__).resolve().parents[2] / "policies" / "packs" / "contract-quality.yaml"

#: (file, rule) pairs where Spectral is wrong, and why. None so far: every count agrees.
SPECTRAL_BUGS: dict[tuple[str, str], str] = {}


def _file(name: str) -> Path:
    folder, file = name.split("/")
    return DATA / file if folder == "data" else corpus(folder, file)


def test_the_fixture_covers_every_rule_of_the_pack():
    rules = set(load_rules([PACK]).rules)
    assert FIXTURE["spectral"] == "6.16.3"
    for counts in FIXTURE["files"].values():
        assert set(counts) == rules


def test_the_synthetic_contracts_break_every_rule_the_corpus_keeps():
    def broken(names: list[str]) -> set[str]:
        return {r for n in names for r, count in FIXTURE["files"][n].items() if count}

    synthetic = [n for n in FIXTURE["files"] if n.startswith("data/")]
    assert len(synthetic) == 4
    every_rule = set(load_rules([PACK]).rules)
    assert broken(list(FIXTURE["files"])) == every_rule


@pytest.mark.parametrize("name", sorted(FIXTURE["files"]))
def test_clew_counts_what_spectral_counts(name: str):
    doc, _ = read_contract_file(_file(name))
    context = Context(now=None)
    ours: Counter[str] = Counter()
    for rule in load_rules([PACK]).rules.values():  # disabled rules too: Spectral ran them all
        ours[rule.id] = len(list(rule.check.function(doc, rule.options, context)))
    expected = FIXTURE["files"][name]
    differing = {
        rule: (count, ours[rule])
        for rule, count in expected.items()
        if count != ours[rule] and (name, rule) not in SPECTRAL_BUGS
    }
    assert differing == {}
