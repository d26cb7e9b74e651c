"""The ndjson report of a contract run: one JSON object per test phase outcome.

A failure carries schemathesis' whole report (``details``: the failed checks, the
response, a curl command reproducing the request) and, for a quick look, the failed
checks' codes and titles (``checks``) and the reproducing commands (``reproduce``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

#: Schemathesis' failure text (checks, curl, response) is long but bounded; keep it whole.
MAX_DETAILS = 200_000
_CHECK = re.compile(r"^[\s|]*- (ST\d+ .+)$", re.MULTILINE)
_CURL = re.compile(r"^[\s|]*(curl -X .+)$", re.MULTILINE)


class NdjsonReport:
    """Appends ``{"test", "operation", "phase", "outcome", "duration", "finished_at",
    "checks", "reproduce", "details"}`` lines to a file (started afresh by each run)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def record(self, report: pytest.TestReport) -> None:
        # Setup and teardown only matter when they fail; the call always counts.
        if report.when != "call" and report.passed:
            return
        details = report.longreprtext if report.failed else ""
        line = {
            "test": report.nodeid,
            "operation": dict(report.user_properties).get("operation"),
            "phase": report.when,
            "outcome": report.outcome,
            "duration": round(report.duration, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "checks": sorted(set(_CHECK.findall(details))),
            "reproduce": list(dict.fromkeys(_CURL.findall(details))),
            "details": details[:MAX_DETAILS] or None,
        }
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
