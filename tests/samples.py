"""Valid sample data for generated models, shared by tests."""

from __future__ import annotations

import uuid
from typing import Any


def order_created_data(**overrides: Any) -> dict[str, Any]:
    """A valid OrderCreated payload in wire (camelCase) form."""
    data: dict[str, Any] = {
        "orderId": str(uuid.uuid4()),
        "userId": str(uuid.uuid4()),
        "items": [
            {
                "productId": str(uuid.uuid4()),
                "productName": "Mechanical keyboard",
                "quantity": 2,
                "unitPrice": "349.90",
            }
        ],
        "totalAmount": "699.80",
        "currency": "BRL",
        "shippingAddress": {
            "street": "Av. Paulista, 1000",
            "city": "São Paulo",
            "state": "SP",
            "zipCode": "01310-100",
        },
        "createdAt": "2026-11-28T12:00:00Z",
    }
    data.update(overrides)
    return data
