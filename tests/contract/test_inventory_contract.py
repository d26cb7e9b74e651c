"""The Inventory API against specs/openapi/inventory.yaml, through the gateway.

Stateless: every operation fuzzed with positive and negative data, writes as the
admin. Stateful: the spec's links (create a product → read it, change it).
"""

from __future__ import annotations

import pytest
from schemathesis import Case

from tests.contract.budget import BUDGET
from tests.contract.contracts import call_kwargs, load_contract, scenarios

pytestmark = pytest.mark.infra

schema = load_contract("inventory")


@schema.parametrize()
@BUDGET.settings()
def test_the_inventory_api_honours_its_contract(case: Case) -> None:
    case.call_and_validate(**call_kwargs())


TestProductScenarios = scenarios(schema)
