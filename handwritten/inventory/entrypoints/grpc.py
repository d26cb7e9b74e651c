"""The ``inventory.v1.InventoryService`` gRPC service over the use cases.

Status codes: INVALID_ARGUMENT for malformed ids, quantities or item lists;
NOT_FOUND for an unknown product (GetProduct) or an order without reservation
(CommitReservation); FAILED_PRECONDITION when the reservation's state forbids the
call (see ``domain.reservations``). Shortage is not an error: CheckAvailability
and ReserveProducts answer it in their response.

The saga's calls (ReserveProducts, CommitReservation, ReleaseReservation) are fault
points (docs/fault-flags.md). ``fail`` answers what a real failure answers: a
shortage for ReserveProducts, FAILED_PRECONDITION (the reservation can no longer be
committed) for CommitReservation, UNAVAILABLE (try again) for ReleaseReservation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    CommitReservationRequest,
    CommitReservationResponse,
    GetProductRequest,
    GetProductResponse,
    GetProductsRequest,
    GetProductsResponse,
    InventoryServiceBase,
    ProductQuantity,
    ProductQuote,
    ReleaseReservationRequest,
    ReleaseReservationResponse,
    ReservedItem,
    ReserveProductsRequest,
    ReserveProductsResponse,
    RestoreStockRequest,
    RestoreStockResponse,
    UnavailableProduct,
    UnavailableReason,
)
from generated.grpc.inventory.v1 import Product as GrpcProduct
from handwritten.inventory.domain.errors import (
    InvalidInputError,
    InventoryError,
    ProductNotFoundError,
    ReservationConflictError,
    ReservationNotFoundError,
)
from handwritten.inventory.domain.money import format_price
from handwritten.inventory.domain.products import Product
from handwritten.inventory.domain.reservations import Reservation
from handwritten.inventory.domain.stock import (
    MAX_ITEMS,
    RequestedItem,
    Unavailable,
    parse_items,
    parse_uuid,
)
from handwritten.inventory.service_layer.catalogue import Catalogue
from handwritten.inventory.service_layer.stock import StockKeeper
from handwritten.runtime.faults import FaultSwitchboard, inject

SERVICE = "inventory.v1.InventoryService"
RESERVE_PRODUCTS = f"{SERVICE}/ReserveProducts"
COMMIT_RESERVATION = f"{SERVICE}/CommitReservation"
RELEASE_RESERVATION = f"{SERVICE}/ReleaseReservation"
T = TypeVar("T")


def to_grpc_error(error: InventoryError) -> GRPCError:
    if isinstance(error, InvalidInputError):
        return GRPCError(Status.INVALID_ARGUMENT, str(error))
    if isinstance(error, ProductNotFoundError | ReservationNotFoundError):
        return GRPCError(Status.NOT_FOUND, str(error))
    if isinstance(error, ReservationConflictError):
        return GRPCError(Status.FAILED_PRECONDITION, str(error))
    # StockInvariantError and anything new: a server fault, answered INTERNAL.
    raise error


def _refuse(status: Status, message: str) -> Callable[[], Awaitable[T]]:
    """A fault's ``fail``: raise the error a real failure of this kind raises."""

    async def refuse() -> T:
        raise GRPCError(status, f"injected fault: {message}")

    return refuse


def _product(product: Product) -> GrpcProduct:
    return GrpcProduct(
        product_id=str(product.product_id),
        name=product.name,
        description=product.description,
        price=format_price(product.price),
        available_quantity=product.available_quantity,
        reserved_quantity=product.reserved_quantity,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def _unavailable(item: Unavailable) -> UnavailableProduct:
    return UnavailableProduct(
        product_id=str(item.product_id),
        requested_quantity=item.requested_quantity,
        available_quantity=item.available_quantity,
        reason=UnavailableReason[item.reason.value],
    )


def _items(items: Sequence[ProductQuantity]) -> tuple[RequestedItem, ...]:
    return parse_items([(item.product_id, item.quantity) for item in items])


def _reserved(reservation: Reservation, items: Sequence[RequestedItem]) -> ReserveProductsResponse:
    # Lines in request order (a replay may list the same items in another order).
    position = {item.product_id: index for index, item in enumerate(items)}
    lines = sorted(reservation.lines, key=lambda line: position.get(line.product_id, 0))
    return ReserveProductsResponse(
        reserved=True,
        items=[
            ReservedItem(
                product_id=str(line.product_id),
                name=line.product_name,
                quantity=line.quantity,
                unit_price=format_price(line.unit_price),
            )
            for line in lines
        ],
        expires_at=reservation.expires_at,
    )


class InventoryGrpcService(InventoryServiceBase):
    """Implements the generated service base on the catalogue and the stock keeper."""

    def __init__(
        self, catalogue: Catalogue, stock: StockKeeper, faults: FaultSwitchboard | None = None
    ) -> None:
        self._catalogue = catalogue
        self._stock = stock
        self._faults = faults or FaultSwitchboard.disabled("inventory")

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        try:
            availability = await self._stock.check(_items(message.items))
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc
        return CheckAvailabilityResponse(
            available=availability.available,
            unavailable_products=[_unavailable(item) for item in availability.unavailable],
            products=[
                ProductQuote(
                    product_id=str(quote.product_id),
                    name=quote.name,
                    unit_price=format_price(quote.unit_price),
                    requested_quantity=quote.requested_quantity,
                    available_quantity=quote.available_quantity,
                )
                for quote in availability.quotes
            ],
        )

    async def reserve_products(self, message: ReserveProductsRequest) -> ReserveProductsResponse:
        try:
            order_id = parse_uuid(message.order_id, "order_id")
            items = _items(message.items)

            async def reserve() -> ReserveProductsResponse:
                outcome = await self._stock.reserve(order_id, items)
                if outcome.reservation is None:
                    return ReserveProductsResponse(
                        reserved=False,
                        unavailable_products=[_unavailable(item) for item in outcome.unavailable],
                    )
                return _reserved(outcome.reservation, items)

            async def short() -> ReserveProductsResponse:
                # The answer of a real shortage, with the stock as it is.
                levels = await self._stock.check(items)
                available = {quote.product_id: quote.available_quantity for quote in levels.quotes}
                return ReserveProductsResponse(
                    reserved=False,
                    unavailable_products=[
                        UnavailableProduct(
                            product_id=str(item.product_id),
                            requested_quantity=item.quantity,
                            available_quantity=available.get(item.product_id, 0),
                            reason=UnavailableReason.INSUFFICIENT_STOCK,
                        )
                        for item in items
                    ],
                )

            fault = await self._faults.check(RESERVE_PRODUCTS, orderId=order_id)
            return await inject(fault, reserve, fail=short)
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc

    async def commit_reservation(
        self, message: CommitReservationRequest
    ) -> CommitReservationResponse:
        try:
            order_id = parse_uuid(message.order_id, "order_id")

            async def commit() -> CommitReservationResponse:
                await self._stock.commit(order_id)
                return CommitReservationResponse(committed=True)

            fault = await self._faults.check(COMMIT_RESERVATION, orderId=order_id)
            return await inject(
                fault,
                commit,
                fail=_refuse(Status.FAILED_PRECONDITION, "the reservation cannot be committed"),
            )
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc

    async def release_reservation(
        self, message: ReleaseReservationRequest
    ) -> ReleaseReservationResponse:
        try:
            order_id = parse_uuid(message.order_id, "order_id")

            async def release() -> ReleaseReservationResponse:
                return ReleaseReservationResponse(released=await self._stock.release(order_id))

            fault = await self._faults.check(RELEASE_RESERVATION, orderId=order_id)
            return await inject(
                fault,
                release,
                fail=_refuse(Status.UNAVAILABLE, "the reservation cannot be released now"),
            )
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc

    async def restore_stock(self, message: RestoreStockRequest) -> RestoreStockResponse:
        try:
            restored = await self._stock.restore(parse_uuid(message.order_id, "order_id"))
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc
        return RestoreStockResponse(restored=restored)

    async def get_product(self, message: GetProductRequest) -> GetProductResponse:
        try:
            product = await self._catalogue.get(parse_uuid(message.product_id, "product_id"))
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc
        return GetProductResponse(product=_product(product))

    async def get_products(self, message: GetProductsRequest) -> GetProductsResponse:
        try:
            if not 1 <= len(message.product_ids) <= MAX_ITEMS:
                raise InvalidInputError.single(
                    "product_ids", f"must hold between 1 and {MAX_ITEMS} ids"
                )
            ids = list(
                dict.fromkeys(
                    parse_uuid(text, f"product_ids[{index}]")
                    for index, text in enumerate(message.product_ids)
                )
            )
            found = await self._catalogue.get_many(ids)
        except InventoryError as exc:
            raise to_grpc_error(exc) from exc
        return GetProductsResponse(products=[_product(found[i]) for i in ids if i in found])
