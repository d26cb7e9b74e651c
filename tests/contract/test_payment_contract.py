"""The Payment API against specs/openapi/payment.yaml, through the gateway (as the admin)."""

from __future__ import annotations

import pytest
from schemathesis import Case

from tests.contract.budget import BUDGET
from tests.contract.contracts import call_kwargs, load_contract

pytestmark = pytest.mark.infra

schema = load_contract("payment")


@schema.parametrize()
@BUDGET.settings()
def test_the_payment_api_honours_its_contract(case: Case) -> None:
    case.call_and_validate(**call_kwargs())
