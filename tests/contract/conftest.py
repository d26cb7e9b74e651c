"""Contract fuzzing through the gateway of the running local stack (see contracts.py).

With ``MC_FUZZ_REPORT_DIR`` set (``make fuzz``), every test's outcome is also written
as one JSON line to ``<dir>/contract-tests.ndjson`` (see report.py).
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from generated import catalog
from tests.contract.budget import BUDGET
from tests.contract.report import NdjsonReport

#: Written by the controlling process only: with pytest-xdist it sees every worker's
#: reports too, and a worker would truncate and duplicate its lines.
_REPORT = (
    NdjsonReport(BUDGET.report_dir / "contract-tests.ndjson")
    if BUDGET.report_dir and "PYTEST_XDIST_WORKER" not in os.environ
    else None
)
#: How long the suite waits for the stack to be ready before its first request.
READY_SECONDS = 120


@pytest.fixture(scope="session", autouse=True)
def stack_ready() -> None:
    """Every service ready and the gateway serving, before the first case is sent.

    A test cannot tell a contract violation from a service that is still starting
    (``make test`` and ``make fuzz`` restart or start the stack just before).
    """
    urls = [f"{BUDGET.gateway_url}/.well-known/jwks.json"] + [
        f"http://127.0.0.1:{service.http_port}/health/ready"
        for service in catalog.SERVICES.values()
    ]
    deadline = time.monotonic() + READY_SECONDS
    waiting = list(urls)
    with httpx.Client(timeout=5) as client:
        while waiting:
            try:
                if client.get(waiting[0]).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the stack is not ready after {READY_SECONDS} s: {waiting[0]}")
            time.sleep(0.5)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the API operation in the reports: schemathesis gives every operation of a
    spec the same test id. A user property is in every phase's report, reaches the
    junit XML (xunit1) and travels from pytest-xdist workers."""
    label = getattr(item, "operation_label", None)
    if label and ("operation", label) not in item.user_properties:
        item.user_properties.append(("operation", label))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _REPORT is not None and report.nodeid.startswith("tests/contract/"):
        _REPORT.record(report)
