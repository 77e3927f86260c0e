"""Findings as a SARIF 2.1.0 log, the form GitHub code scanning and other CI tools read.

One run whose tool is Clew; its rules (id, short description, default level) and one result
per finding: its rule and that rule's index, its level, its message, where it is (the file,
line and column of the subject's document when known, else the subject's name and kind as a
logical location), its fingerprint as a partial fingerprint (so an alert keeps its identity
across runs), and for a waived finding an external suppression carrying the waiver's reason.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
VERSION = "2.1.0"
#: SARIF has four levels; Clew's two lowest severities are both notes.
LEVELS = {"error": "error", "warning": "warning", "info": "note", "hint": "note"}
#: The key of the partial fingerprint: Clew's own, versioned as SARIF suggests.
FINGERPRINT_KEY = "clewFingerprint/v1"


def tool_version() -> str:
    """The installed Clew's version."""
    try:
        return importlib.metadata.version("clew")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def artifact_uri(source: str, base: Path | None = None) -> str:
    """A finding's source as a URI: a URL as it is, a path relative to ``base`` (the current
    folder by default) when it is inside it, else an absolute ``file:`` URI."""
    if urlsplit(source).scheme not in ("", "file") and "://" in source:
        return source
    path = Path(source)
    if path.is_absolute():
        root = (base or Path.cwd()).resolve()
        try:
            path = path.resolve().relative_to(root)
        except ValueError:
            return path.resolve().as_uri()
    return quote(PurePosixPath(*path.parts).as_posix(), safe="/-._~")


def sarif(
    findings: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Mapping[str, Any]],
    *,
    base: Path | None = None,
) -> dict[str, Any]:
    """A SARIF log of ``findings`` (``Finding.as_dict()`` rows, possibly with ``state`` and
    ``waiver``); ``rules`` maps a rule id to its description, severity and pack. Rules a
    finding names but ``rules`` lacks are described from the finding."""
    catalogue: dict[str, dict[str, Any]] = {k: dict(v) for k, v in rules.items()}
    for f in findings:
        catalogue.setdefault(
            f["rule"], {"description": f["rule"], "severity": f["severity"], "pack": f.get("pack")}
        )
    ids = sorted(catalogue)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Clew",
                        "version": tool_version(),
                        "rules": [_rule(rule_id, catalogue[rule_id]) for rule_id in ids],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index[f["rule"]], base) for f in findings],
            }
        ],
    }


def _rule(rule_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "shortDescription": {"text": _first_line(rule.get("description") or rule_id)},
        "defaultConfiguration": {"level": LEVELS.get(rule.get("severity") or "", "warning")},
    }
    if rule.get("description") and rule["description"] != descriptor["shortDescription"]["text"]:
        descriptor["fullDescription"] = {"text": rule["description"]}
    if rule.get("pack"):
        descriptor["properties"] = {"pack": rule["pack"]}
    return descriptor


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _result(f: Mapping[str, Any], rule_index: int, base: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f["rule"],
        "ruleIndex": rule_index,
        "level": LEVELS.get(f["severity"], "warning"),
        "message": {"text": f["message"] or f["rule"]},
        "locations": [_location(f, base)],
        "partialFingerprints": {FINGERPRINT_KEY: f["fingerprint"]},
        "properties": {
            "subject": f["subject"],
            "subjectKind": f["subject_kind"],
            "team": f.get("team"),
            "system": f.get("system"),
            "state": f.get("state", "open"),
        },
    }
    waiver = f.get("waiver")
    if f.get("state") == "waived" or waiver:
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted"}
        if waiver:
            suppression["justification"] = waiver.get("reason") or ""
            suppression["properties"] = {
                "approver": waiver.get("approver"),
                "expiresAt": _text(waiver.get("expires_at")),
            }
        result["suppressions"] = [suppression]
    return result


def _text(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def landscape_uri(kind: str, subject: str) -> str:
    """The SARIF artifact of a finding with no file: ``landscape/<kind>/<subject>``, the subject
    percent-encoded into one path segment (``landscape/edge/storefront-web%20%E2%86%92%20…``)."""
    return f"landscape/{quote(kind, safe='')}/{quote(subject, safe='')}"


def _location(f: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    logical = {"name": f["subject"], "fullyQualifiedName": f["subject"], "kind": f["subject_kind"]}
    source = f.get("source")
    if not source:
        # A finding on traffic (an edge, an endpoint, the graph) has no file. GitHub code
        # scanning refuses a result without a physical location, so it gets a stable one of
        # its own under ``landscape/``, by subject kind and name, at line 1.
        physical_only = {
            "artifactLocation": {"uri": landscape_uri(f["subject_kind"], f["subject"])},
            "region": {"startLine": 1},
        }
        return {"physicalLocation": physical_only, "logicalLocations": [logical]}
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(source, base)}}
    if f.get("line"):
        region: dict[str, Any] = {"startLine": int(f["line"])}
        if f.get("column"):
            region["startColumn"] = int(f["column"])
        physical["region"] = region
    return {"physicalLocation": physical, "logicalLocations": [logical]}
