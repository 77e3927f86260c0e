"""Findings as JUnit XML, the test report every CI system shows.

One ``testsuite`` per rule (or per pack), one ``testcase`` per subject that the rule found
something on: it **fails** when one of its findings is open (the message is the first
finding's, the body lists them all), and is **skipped** when all of them are waived (the
message names the waiver's reason). Subjects without findings are not listed: the store keeps
only what was found.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

GROUPS = ("rule", "pack")
#: What XML 1.0 cannot hold, even escaped: control characters but tab, newline and return,
#: surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can hold (what it cannot becomes U+FFFD)."""
    return _NOT_XML.sub("\ufffd", str(value))


def junit(
    findings: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Mapping[str, Any]],
    *,
    group_by: str = "rule",
) -> str:
    """A JUnit XML document of ``findings`` (``Finding.as_dict()`` rows, possibly with
    ``state`` and ``waiver``), a suite per rule or per pack (``group_by``)."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {GROUPS}, not {group_by!r}")
    suites: dict[str, dict[tuple[str, str], list[Mapping[str, Any]]]] = {}
    for f in findings:
        rule = rules.get(f["rule"], {})
        if group_by == "rule":
            suite = f["rule"]
        else:
            suite = rule.get("pack") or f.get("pack") or "(no pack)"
        suites.setdefault(suite, {}).setdefault((f["rule"], f["subject"]), []).append(f)

    root = ET.Element("testsuites", name="Clew policies")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for suite_name in sorted(suites):
        cases = suites[suite_name]
        suite = ET.SubElement(root, "testsuite", name=xml_text(suite_name))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for rule_id, subject in sorted(cases):
            found = cases[(rule_id, subject)]
            case = ET.SubElement(
                suite,
                "testcase",
                name=xml_text(subject),
                classname=xml_text(
                    rule_id if group_by == "pack" else _classname(rule_id, rules, found)
                ),
            )
            counts["tests"] += 1
            opened = [f for f in found if f.get("state", "open") == "open"]
            if opened:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=xml_text(opened[0]["message"]),
                    type=opened[0]["severity"],
                )
                failure.text = xml_text("\n".join(_line(f) for f in found))
            else:
                counts["skipped"] += 1
                reasons = sorted({_waived(f) for f in found})
                ET.SubElement(case, "skipped", message=xml_text("; ".join(reasons)))
        for key, value in counts.items():
            totals[key] += value
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _classname(
    rule_id: str, rules: Mapping[str, Mapping[str, Any]], found: list[Mapping[str, Any]]
) -> str:
    pack = rules.get(rule_id, {}).get("pack") or found[0].get("pack")
    return f"{pack}.{rule_id}" if pack else rule_id


def _line(f: Mapping[str, Any]) -> str:
    where = ""
    if f.get("source"):
        where = f" ({f['source']}"
        if f.get("line"):
            where += f":{f['line']}"
            if f.get("column"):
                where += f":{f['column']}"
        where += ")"
    state = f.get("state", "open")
    return f"[{f['severity']}{'' if state == 'open' else ', ' + state}] {f['message']}{where}"


def _waived(f: Mapping[str, Any]) -> str:
    waiver = f.get("waiver") or {}
    reason = waiver.get("reason")
    return f"waived: {reason}" if reason else "waived"
