"""The BFF's HTTP contract against specs/openapi/bff.yaml, through the gateway.

The GraphQL documents themselves are fuzzed from the BFF's GraphQL schema in
test_graphql_contract.py.
"""

from __future__ import annotations

import pytest
from schemathesis import Case

from tests.contract.budget import BUDGET
from tests.contract.contracts import call_kwargs, load_contract

pytestmark = pytest.mark.infra

schema = load_contract("bff")


@schema.parametrize()
@BUDGET.settings()
def test_the_bff_api_honours_its_contract(case: Case) -> None:
    case.call_and_validate(**call_kwargs())
