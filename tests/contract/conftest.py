"""Contract fuzzing through the gateway of the running local stack (see contracts.py).

With ``MC_FUZZ_REPORT_DIR`` set (``make fuzz``), every test's outcome is also written
as one JSON line to ``<dir>/contract-tests.ndjson``, failures with the reproduction
schemathesis prints (the request as curl, the response, the failed checks).
"""

from __future__ import annotations

import pytest

from tests.contract.budget import BUDGET
from tests.contract.report import NdjsonReport

_REPORT = NdjsonReport(BUDGET.report_dir / "contract-tests.ndjson") if BUDGET.report_dir else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _REPORT is not None and report.nodeid.startswith("tests/contract/"):
        _REPORT.record(report)
