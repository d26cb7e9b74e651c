"""The payment gateway as a ``fail`` fault flag makes it (docs/fault-flags.md)."""

from __future__ import annotations

from decimal import Decimal

from handwritten.payment.domain.payments import Approved, ChargeResult, Declined, FailureReason
from handwritten.payment.service_layer.ports import PaymentGateway

#: The failed charge's message (shown to the customer): says it was on purpose.
INJECTED_FAILURE = "The payment gateway failed (injected fault); nothing was charged."


class FailingGateway(PaymentGateway):
    """Every charge fails with GATEWAY_ERROR, as when the real gateway errs; nothing
    reaches ``inner`` for a charge, everything else does."""

    def __init__(self, inner: PaymentGateway) -> None:
        self._inner = inner

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        return Declined(FailureReason.GATEWAY_ERROR, INJECTED_FAILURE)

    async def settle_in_doubt(self, key: str) -> Approved | None:
        return await self._inner.settle_in_doubt(key)

    async def refund(self, key: str, transaction_id: str, amount: Decimal) -> None:
        await self._inner.refund(key, transaction_id, amount)
