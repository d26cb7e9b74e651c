"""Business metrics of the payment service (the charge latency is the gateway's
``payment_gateway_duration_seconds`` in ``adapters.gateway``).

Counted when the handler decides, inside its transaction: a transaction that then
fails to commit is retried and may count twice; the inbox keeps the effects single.
"""

from __future__ import annotations

from prometheus_client import Counter

from handwritten.runtime.metrics import REGISTRY

PAYMENTS = Counter(
    "payments",
    "Charge requests by outcome: succeeded, declined, gateway_error, invalid_payment_method,"
    " no_answer, repeated (answered again), in_doubt or closed (nothing done).",
    ["outcome"],
    registry=REGISTRY,
)
REFUNDS = Counter(
    "payment_refunds",
    "Refund requests by outcome: refunded, nothing_to_refund or repeated (answered again).",
    ["outcome"],
    registry=REGISTRY,
)
RECONCILED = Counter(
    "payment_reconciliations",
    "In-doubt (PENDING) payments settled by the reconciliation job, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
