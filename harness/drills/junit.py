"""JUnit XML for CI: one ``<testcase>`` per drill; a drill that did not pass is a ``<failure>``.

The layout is the one CI servers read (GitLab, Jenkins, GitHub test reporters)::

    <testsuites name="lastmile drills" tests="2" failures="1" errors="0" time="41.200">
      <testsuite name="lastmile drills" tests="2" failures="1" errors="0" skipped="0" time="41.200"
                 timestamp="2026-12-01T22:15:00" hostname="...">
        <testcase classname="drills.training" name="mlflow-killed-mid-training"
                  file="scenarios/drills/mlflow-killed-mid-training.yaml" time="30.100">
          <properties><property name="verdict" value="deviated"/> ... </properties>
          <failure type="deviated" message="the reason">the reason, the faults, the invariants, the journal</failure>
        </testcase>
      </testsuite>
    </testsuites>
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness.drills.journal import DrillRecord

SUITE = "lastmile drills"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(records: Sequence[DrillRecord], suite: str = SUITE) -> str:
    """The JUnit XML document for ``records``."""
    failures = sum(1 for r in records if not r.passed)
    total = f"{sum(r.seconds for r in records):.3f}"
    counts = {"tests": str(len(records)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": suite, **counts, "time": total})
    started = min((r.started for r in records), default=time.time())
    testsuite = ET.SubElement(root, "testsuite", {
        "name": suite, **counts, "skipped": "0", "time": total,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "hostname": socket.gethostname()})
    for record in records:
        _testcase(testsuite, record)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, records: Sequence[DrillRecord]) -> Path:
    """Write the JUnit XML for ``records`` to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(records), encoding="utf-8")
    return path


def _testcase(parent: ET.Element, record: DrillRecord) -> None:
    case = ET.SubElement(parent, "testcase", {"classname": f"drills.{record.stage or 'any'}", "name": record.name,
                                              "file": record.file, "time": f"{record.seconds:.3f}"})
    properties = ET.SubElement(case, "properties")
    for name, value in (("verdict", record.verdict), ("title", record.title), ("tags", ",".join(record.tags)),
                        ("chaos_status", str(record.status)), ("deviated", str(record.deviated).lower()),
                        ("journal", record.journal)):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    if not record.passed:
        failure = ET.SubElement(case, "failure", {"type": record.verdict, "message": _clean(record.reason)})
        failure.text = _clean(_details(record))


def _details(record: DrillRecord) -> str:
    lines = [f"verdict: {record.verdict}", f"reason: {record.reason}"]
    lines += [f"fault {f.get('id')}: {f.get('kind')} {f.get('action')} on {f.get('target')}, "
              f"took effect: {f.get('took_effect')} ({f.get('evidence') or '-'})" for f in record.faults]
    lines += [f"invariant {name}: {v}" for name, violations in record.invariants.items() for v in violations]
    lines.append(f"journal: {record.journal}")
    return "\n".join(lines)


def _clean(text: str) -> str:
    """Text XML 1.0 can hold (terminal escapes and other control characters dropped)."""
    return _NOT_XML.sub("", text)
