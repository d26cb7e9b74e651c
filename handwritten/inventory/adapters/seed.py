"""Demo products present in every fresh database (the local stack's catalogue).

Ids are fixed so demos, docs and other services' tests can refer to them. Seeding is
idempotent: a product that exists is left alone, so admin changes survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class DemoProduct:
    product_id: UUID
    name: str
    description: str
    price: Decimal
    available_quantity: int


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        UUID("d7039768-be97-5394-bf5e-6b1018f67fdb"),
        "Camiseta Básica de Algodão",
        "Camiseta 100% algodão, gola careca, tamanho M.",
        Decimal("59.90"),
        120,
    ),
    DemoProduct(
        UUID("0a824a94-a3ba-527b-af3f-5d1ac05c1177"),
        "Tênis de Corrida Leve",
        "Tênis com amortecimento em EVA e cabedal respirável, número 41.",
        Decimal("349.90"),
        40,
    ),
    DemoProduct(
        UUID("c409831f-0b8c-5bbe-a677-468a5d6322c8"),
        "Fone de Ouvido Bluetooth",
        "Fone over-ear sem fio com cancelamento de ruído e 30 h de bateria.",
        Decimal("199.00"),
        75,
    ),
    DemoProduct(
        UUID("f89e7780-8e1d-5f95-8633-a122a669a077"),
        "Mochila Urbana 25 L",
        "Mochila impermeável com compartimento acolchoado para notebook de 15,6 pol.",
        Decimal("189.90"),
        60,
    ),
    DemoProduct(
        UUID("0e7b0d09-ad7e-5035-a3d3-82ff7b4495b6"),
        "Garrafa Térmica 750 ml",
        "Garrafa de aço inox com parede dupla: 12 h quente, 24 h gelado.",
        Decimal("89.90"),
        150,
    ),
    DemoProduct(
        UUID("9bcca7a8-dc59-5017-8973-fc980e4e822a"),
        "Teclado Mecânico ABNT2",
        "Teclado mecânico com switches marrons e iluminação branca.",
        Decimal("429.00"),
        25,
    ),
    DemoProduct(
        UUID("fa1010f4-837a-516e-8748-243d61fb1b8e"),
        "Caneca de Cerâmica 350 ml",
        "Caneca esmaltada, própria para micro-ondas e lava-louças.",
        Decimal("39.90"),
        200,
    ),
    DemoProduct(
        UUID("3d0f0d7e-0a83-5489-a4d5-92f75c95da36"),
        "Livro: Padrões de Microsserviços",
        "Guia prático de sagas, event sourcing e CQRS (brochura, 520 páginas).",
        Decimal("119.90"),
        30,
    ),
)


async def seed_demo_products(connection: asyncpg.Connection) -> int:
    """Insert the demo products that are missing; returns how many were added."""
    added = 0
    async with connection.transaction():
        for product in DEMO_PRODUCTS:
            # clock_timestamp(): distinct creation times keep the listing in this order.
            status = await connection.execute(
                "INSERT INTO products (product_id, name, description, price, "
                "available_quantity, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, clock_timestamp(), clock_timestamp()) "
                "ON CONFLICT (product_id) DO NOTHING",
                product.product_id,
                product.name,
                product.description,
                product.price,
                product.available_quantity,
            )
            added += int(status.rsplit(" ", 1)[-1])
    return added
