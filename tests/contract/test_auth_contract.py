"""The Auth API against specs/openapi/auth.yaml, through the gateway.

Stateless: every operation fuzzed with positive and negative data (from the fuzz
client's own address, so failed logins throttle only the fuzzer). Stateful: the
spec's links (register → log in → refresh → log out).
"""

from __future__ import annotations

import pytest
from schemathesis import Case

from tests.contract.budget import BUDGET
from tests.contract.contracts import call_kwargs, load_contract, scenarios

pytestmark = pytest.mark.infra

schema = load_contract("auth")


@schema.parametrize()
@BUDGET.settings()
def test_the_auth_api_honours_its_contract(case: Case) -> None:
    case.call_and_validate(**call_kwargs())


TestAuthScenarios = scenarios(schema)
