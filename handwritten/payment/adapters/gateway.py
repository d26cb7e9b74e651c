"""A simulated payment gateway (DESIGN §4 test tokens) and a metrics decorator.

Tokens: ``tok_visa`` is approved (except for a ``failure_rate`` share of orders,
answered GATEWAY_ERROR, for chaos: which ones is decided by a hash of the
idempotency key, the order id, so an order's fate is reproducible, survives a
restart and can be predicted by a test: see ``failure_roll``);
``tok_chargeDeclined`` is declined (DECLINED);
``tok_timeout`` never answers, so the client's timeout fires and the charge is in
doubt (``NoAnswer``); any other token is INVALID_PAYMENT_METHOD.

Like a real gateway it answers a repeated idempotency key with its first answer
instead of charging again. Its ledger lives in memory (bounded): it plays the
external system, whose records are not ours to persist.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client import Histogram

from handwritten.payment.domain.payments import (
    Approved,
    ChargeResult,
    Declined,
    FailureReason,
    NoAnswer,
)
from handwritten.payment.service_layer.ports import PaymentGateway
from handwritten.runtime.metrics import REGISTRY

TOK_VISA = "tok_visa"
TOK_CHARGE_DECLINED = "tok_chargeDeclined"
TOK_TIMEOUT = "tok_timeout"

GATEWAY_SECONDS = Histogram(
    "payment_gateway_duration_seconds",
    "Time the payment gateway took per operation (charge latency: operation=charge).",
    ["operation", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class _Silence:
    """The gateway's "answer" to tok_timeout: none."""


SILENCE = _Silence()


def failure_roll(key: str) -> float:
    """The chaos roll of idempotency key ``key``, uniform in [0, 1): a charge fails
    with GATEWAY_ERROR when it is below the failure rate (pure, stable across runs)."""
    digest = hashlib.sha256(f"payment-failure:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def simulated_answer(
    token: str, *, roll: float, failure_rate: float, transaction_id: str
) -> Approved | Declined | _Silence:
    """What the simulated gateway answers for ``token`` (pure; ``roll`` in [0, 1))."""
    if token == TOK_VISA:
        if roll < failure_rate:
            return Declined(
                FailureReason.GATEWAY_ERROR, "The payment gateway failed; please try again."
            )
        return Approved(transaction_id)
    if token == TOK_CHARGE_DECLINED:
        return Declined(FailureReason.DECLINED, "The card issuer declined the charge.")
    if token == TOK_TIMEOUT:
        return SILENCE
    return Declined(FailureReason.INVALID_PAYMENT_METHOD, "The payment method is not valid.")


@dataclass
class _Entry:
    """What the gateway remembers of one idempotency key."""

    answer: Approved | Declined | None = None  # None: never answered (yet)
    canceled: bool = False
    refunded: bool = False


class SimulatedGateway(PaymentGateway):
    """The simulated gateway with latency, a client-side timeout and idempotency keys.

    ``delay_seconds`` is the upper bound of a random answer latency (half to full);
    ``timeout_seconds`` is how long the client waits for an answer (tok_timeout
    waits all of it). ``calls``, ``captures`` and ``refunds`` count, per key, the
    charge calls received, the charges that took money and the refunds made.
    """

    def __init__(
        self,
        *,
        delay_seconds: float,
        timeout_seconds: float,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
        max_keys: int = 100_000,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate is between 0 and 1")
        self._delay = delay_seconds
        self._timeout = timeout_seconds
        self._failure_rate = failure_rate
        # Simulation, not cryptography: a seeded PRNG makes chaos reproducible.
        self._rng = rng or random.Random()  # noqa: S311
        self._max_keys = max_keys
        self._ledger: OrderedDict[str, _Entry] = OrderedDict()
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.captures: defaultdict[str, int] = defaultdict(int)
        self.refunds: defaultdict[str, int] = defaultdict(int)

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        self.calls[key] += 1
        try:
            return await asyncio.wait_for(self._gateway_side(key, token), self._timeout)
        except TimeoutError:
            return NoAnswer()

    async def settle_in_doubt(self, key: str) -> Approved | None:
        await self._latency()
        entry = self._entry(key)
        if isinstance(entry.answer, Approved):
            return entry.answer
        # Not captured: cancel it, so an answer still in flight can never take money.
        entry.canceled = True
        return None

    async def refund(self, key: str, transaction_id: str, amount: Decimal) -> None:
        await self._latency()
        entry = self._entry(key)
        if not entry.refunded:
            # Also after a restart (the ledger is in memory): the refund is honoured.
            entry.refunded = True
            self.refunds[key] += 1

    async def _gateway_side(self, key: str, token: str) -> ChargeResult:
        await self._latency()
        entry = self._entry(key)
        if entry.answer is not None:
            return entry.answer  # idempotency key seen: same answer, no new charge
        if entry.canceled:
            return Declined(FailureReason.DECLINED, "The payment was canceled.")
        answer = simulated_answer(
            token,
            roll=failure_roll(key),
            failure_rate=self._failure_rate,
            transaction_id=f"sim_{self._rng.getrandbits(64):016x}",
        )
        if isinstance(answer, _Silence):
            await asyncio.Event().wait()  # never answers; the client's timeout ends it
            raise AssertionError("unreachable")
        entry.answer = answer
        if isinstance(answer, Approved):
            self.captures[key] += 1
        return answer

    async def _latency(self) -> None:
        if self._delay > 0:
            await asyncio.sleep(self._rng.uniform(self._delay / 2, self._delay))

    def _entry(self, key: str) -> _Entry:
        entry = self._ledger.get(key)
        if entry is None:
            entry = self._ledger[key] = _Entry()
            if len(self._ledger) > self._max_keys:
                # Real gateways expire idempotency keys too (after a day or so).
                self._ledger.popitem(last=False)
        return entry


class InstrumentedGateway(PaymentGateway):
    """Times every call of the wrapped gateway (``payment_gateway_duration_seconds``)."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        started = time.perf_counter()
        result = "error"
        try:
            answer = await self._gateway.charge(key, amount, token)
            result = _label(answer)
            return answer
        finally:
            GATEWAY_SECONDS.labels("charge", result).observe(time.perf_counter() - started)

    async def settle_in_doubt(self, key: str) -> Approved | None:
        started = time.perf_counter()
        result = "error"
        try:
            captured = await self._gateway.settle_in_doubt(key)
            result = "captured" if captured is not None else "canceled"
            return captured
        finally:
            GATEWAY_SECONDS.labels("settle", result).observe(time.perf_counter() - started)

    async def refund(self, key: str, transaction_id: str, amount: Decimal) -> None:
        started = time.perf_counter()
        result = "error"
        try:
            await self._gateway.refund(key, transaction_id, amount)
            result = "refunded"
        finally:
            GATEWAY_SECONDS.labels("refund", result).observe(time.perf_counter() - started)


def _label(answer: ChargeResult) -> str:
    match answer:
        case Approved():
            return "approved"
        case Declined(reason, _):
            return reason.value.lower()
        case NoAnswer():
            return "no_answer"
