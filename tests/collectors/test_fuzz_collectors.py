"""Every collector, on mutated real samples of its format, gives records or quarantine or the
documented ``CollectorError`` — never another exception (a modest budget here; ``bench/fuzz.py``
runs long ones)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import load_registry
from tests.collectors import fuzzing
from tests.conftest import CORPUS, corpus, examples

NAMES = sorted(load_registry())


@pytest.fixture(scope="module")
def samples() -> dict[str, list[bytes]]:
    corpus("openapi")  # skipped (failed in CI) without the corpus
    return fuzzing.seeds(CORPUS)


def test_every_collector_has_real_samples_to_mutate(samples):
    assert sorted(samples) == NAMES
    for name in NAMES:
        path = Path(tempfile.mkdtemp()) / f"sample-{name}"
        records, quarantined = fuzzing.read(name, samples[name][0], path)
        assert records > quarantined, name  # a seed is read, not only quarantined


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_any_mutation_is_read_quarantined_or_refused(samples, name, seed):
    rng = random.Random(seed)
    data = fuzzing.mutate(rng, samples[name])
    with tempfile.TemporaryDirectory() as folder:
        fuzzing.read(name, data, Path(folder) / f"fuzz-{name}")
