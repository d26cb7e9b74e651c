"""The Orders API against specs/openapi/orders.yaml, through the gateway.

Stateless: every operation fuzzed with positive and negative data. Stateful: the
spec's links (create an order → read it, cancel it, its events and its saga).
"""

from __future__ import annotations

import pytest
from schemathesis import Case

from tests.contract.budget import BUDGET
from tests.contract.contracts import call_kwargs, load_contract, scenarios

pytestmark = pytest.mark.infra

schema = load_contract("orders")


@schema.parametrize()
@BUDGET.settings()
def test_the_orders_api_honours_its_contract(case: Case) -> None:
    case.call_and_validate(**call_kwargs())


TestOrderScenarios = scenarios(schema)
