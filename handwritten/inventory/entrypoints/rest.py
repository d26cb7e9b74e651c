"""The inventory REST API: implements the generated ``InventoryHandlers``.

Reading is public; creating and changing products needs a verified bearer token
with the ``admin`` role (401 / 403 problem+json otherwise). That check is a router
dependency (``authorize``), so it runs before the body is validated: a caller
without the role learns nothing about the write endpoints, and any write route
added later is protected by default. Domain errors become problem+json: 422 with
``errors: [{field, message}]``, 404 for an unknown product.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from fastapi import Request, Response
from starlette.responses import JSONResponse

from generated.models.inventory import (
    CreateProductRequest,
    ProductPage,
    SetFaultFlagRequest,
    UpdateProductRequest,
)
from generated.models.inventory import Product as ApiProduct
from handwritten.inventory.domain.errors import (
    FieldViolation,
    InvalidInputError,
    InventoryError,
    ProductNotFoundError,
)
from handwritten.inventory.domain.money import format_price
from handwritten.inventory.domain.products import Product, new_product, product_changes
from handwritten.inventory.service_layer.catalogue import Catalogue
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.problems import ProblemError

PRODUCTS_PATH = "/api/inventory/products"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RestComponents:
    """What the handlers use, opened by the app's lifespan."""

    catalogue: Catalogue
    authenticator: RequestAuthenticator
    faults: FaultFlagsApi


def to_api(product: Product) -> ApiProduct:
    return ApiProduct(
        product_id=product.product_id,
        name=product.name,
        description=product.description,
        price=format_price(product.price),
        available_quantity=product.available_quantity,
        reserved_quantity=product.reserved_quantity,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def to_problem(error: InventoryError) -> ProblemError:
    """The problem+json answer of a domain error."""
    if isinstance(error, InvalidInputError):
        return ProblemError(
            422,
            "The request is not valid.",
            errors=[{"field": v.field, "message": v.message} for v in error.violations],
        )
    if isinstance(error, ProductNotFoundError):
        return ProblemError(404, f"Product {error.product_id} does not exist.")
    raise error


def _nulls(body: UpdateProductRequest) -> list[str]:
    # The generated model accepts an explicit null for optional fields; the spec
    # does not (every field is a non-null string or integer when present).
    return [
        field.alias or name
        for name, field in UpdateProductRequest.model_fields.items()
        if name in body.model_fields_set and getattr(body, name) is None
    ]


class InventoryApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self) -> None:
        self._components: RestComponents | None = None

    def attach(self, components: RestComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> RestComponents:
        if self._components is None:
            raise RuntimeError("the inventory app has not started (lifespan not run)")
        return self._components

    async def authorize(self, request: Request) -> None:
        """Router dependency: every write needs the ``admin`` role (401/403 otherwise)."""
        if request.method not in _READ_METHODS:
            await self.components.authenticator.admin(request)

    async def list_products(
        self, request: Request, *, limit: int, cursor: str | None
    ) -> ProductPage | Response:
        try:
            page = await self.components.catalogue.page(limit=limit, cursor=cursor)
        except InventoryError as exc:
            raise to_problem(exc) from exc
        return ProductPage(items=[to_api(p) for p in page.items], next_cursor=page.next_cursor)

    async def get_product(self, request: Request, *, product_id: UUID) -> ApiProduct | Response:
        try:
            return to_api(await self.components.catalogue.get(product_id))
        except InventoryError as exc:
            raise to_problem(exc) from exc

    async def create_product(
        self, request: Request, *, body: CreateProductRequest
    ) -> ApiProduct | Response:
        # Admin role already checked by ``authorize``.
        try:
            product = await self.components.catalogue.create(
                new_product(
                    name=body.name,
                    description=body.description or "",
                    price=body.price,
                    available_quantity=body.available_quantity,
                )
            )
        except InventoryError as exc:
            raise to_problem(exc) from exc
        return JSONResponse(
            to_api(product).model_dump(mode="json", by_alias=True),
            status_code=201,
            headers={"Location": f"{PRODUCTS_PATH}/{product.product_id}"},
        )

    async def update_product(
        self, request: Request, *, body: UpdateProductRequest, product_id: UUID
    ) -> ApiProduct | Response:
        # Admin role already checked by ``authorize``.
        try:
            nulls = _nulls(body)
            if nulls:
                raise InvalidInputError(
                    [FieldViolation(name, "must not be null") for name in nulls]
                )
            changes = product_changes(
                name=body.name,
                description=body.description,
                price=body.price,
                available_quantity=body.available_quantity,
            )
            return to_api(await self.components.catalogue.update(product_id, changes))
        except InventoryError as exc:
            raise to_problem(exc) from exc

    # Saga fault flags (docs/fault-flags.md): admin only, checked by ``FaultFlagsApi``.

    async def list_inventory_fault_flags(self, request: Request) -> Response:
        return await self.components.faults.list(request)

    async def set_inventory_fault_flag(
        self, request: Request, *, body: SetFaultFlagRequest, point: str
    ) -> Response:
        return await self.components.faults.set(request, point=point, body=body)

    async def clear_inventory_fault_flag(
        self,
        request: Request,
        *,
        point: str,
        correlation_id: str | None,
        order_id: UUID | None,
        user_id: UUID | None,
    ) -> Response:
        return await self.components.faults.clear(
            request,
            point=point,
            correlation_id=correlation_id,
            order_id=order_id,
            user_id=user_id,
        )
