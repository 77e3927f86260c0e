"""Which access-log collector claims which corpus file: each product's own files, and nothing
else of the whole corpus (trace exports, contracts, catalogs, Kong's documentation pages)."""

from __future__ import annotations

import pytest

from collectors import HEAD_BYTES, load_registry
from collectors.access_logs import AccessLogCollector
from tests.conftest import CORPUS, corpus

#: Corpus folders holding access logs, each named after the collector that must claim its files.
LOG_FOLDERS = ("nginx", "envoy", "haproxy", "traefik")
ACCESS_LOGS = sorted(
    name for name, c in load_registry().items() if isinstance(c, AccessLogCollector)
)


def test_every_product_has_a_registered_collector():
    assert ACCESS_LOGS == ["aws_apigateway", "envoy", "haproxy", "kong", "nginx", "traefik"]


@pytest.mark.parametrize("name", ACCESS_LOGS)
def test_a_collector_claims_its_own_files_and_nothing_else_of_the_corpus(name):
    collector = load_registry()[name]
    corpus()  # skipped without the corpus, failed in CI
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            with path.open("rb") as handle:
                head = handle.read(HEAD_BYTES)
            expected = folder.name == name and folder.name in LOG_FOLDERS
            assert collector.detect(head) is expected, f"{name} on {folder.name}/{path.name}"
