"""Use cases of the product catalogue: browse, look up, create and change products."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from handwritten.inventory.domain.errors import ProductNotFoundError
from handwritten.inventory.domain.products import NewProduct, Product, ProductChanges
from handwritten.inventory.service_layer.paging import PageKey, decode_cursor, encode_cursor
from handwritten.inventory.service_layer.ports import ProductCache, UnitOfWorkFactory


@dataclass(frozen=True)
class ProductPage:
    items: tuple[Product, ...]
    next_cursor: str | None


class Catalogue:
    """Reads go through the cache; writes invalidate it after their commit."""

    def __init__(self, uow: UnitOfWorkFactory, cache: ProductCache) -> None:
        self._uow = uow
        self._cache = cache

    async def page(self, *, limit: int, cursor: str | None) -> ProductPage:
        """One page in creation order; ``InvalidInputError`` for a cursor we did not issue."""
        after = decode_cursor(cursor) if cursor is not None else None
        async with self._uow() as uow:
            # One extra row tells whether a next page exists without a count query.
            found = await uow.products.page(after, limit + 1)
        items = tuple(found[:limit])
        next_cursor = None
        if len(found) > limit:
            last = items[-1]
            next_cursor = encode_cursor(PageKey(last.created_at, last.product_id))
        return ProductPage(items, next_cursor)

    async def get(self, product_id: UUID) -> Product:
        """The product; ``ProductNotFoundError`` if there is none."""
        found = await self.get_many([product_id])
        if product_id not in found:
            raise ProductNotFoundError(product_id)
        return found[product_id]

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]:
        """The existing products among ``product_ids`` (cache first, then the database)."""
        wanted = list(dict.fromkeys(product_ids))
        found = await self._cache.get_many(wanted)
        missing = [product_id for product_id in wanted if product_id not in found]
        if missing:
            async with self._uow() as uow:
                loaded = await uow.products.get_many(missing)
            await self._cache.put_many(list(loaded.values()))
            found.update(loaded)
        return found

    async def create(self, product: NewProduct) -> Product:
        async with self._uow() as uow:
            return await uow.products.add(product)

    async def update(self, product_id: UUID, changes: ProductChanges) -> Product:
        """The changed product; ``ProductNotFoundError`` if there is none."""
        async with self._uow() as uow:
            updated = await uow.products.update(product_id, changes)
        if updated is None:
            raise ProductNotFoundError(product_id)
        await self._cache.invalidate([product_id])
        return updated
