"""An inventory gRPC server for the benchmark, run as its own process.

    python -m bench.grpc_server --impl grpclib|grpclib-runtime|grpcio \
        --handler trivial|reserve --url URL --schema SCHEMA --ready-file PATH

- ``grpclib``: the platform's ``InventoryGrpcService`` (betterproto2 + grpclib), bare.
- ``grpclib-runtime``: the same inside ``handwritten.runtime.grpc_server.GrpcServer``,
  as the inventory service runs it (correlation id, metrics, one JSON access-log
  line per call, here to a log file).
- ``grpcio``: the same proto on grpc.aio (protoc's stubs), with a servicer doing what
  ``InventoryGrpcService.reserve_products`` does on the same ``StockKeeper``.

``reserve`` runs the real reservation (PostgreSQL, row locks, outbox row) on a scratch
schema; ``trivial`` answers a fixed reservation without I/O (the transport alone).
The server listens on a free port, writes it to ``--ready-file`` and serves until
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpclib.health.service import Health
from grpclib.server import Server

from bench import grpcio_stubs
from generated.grpc.inventory.v1 import (
    InventoryServiceBase,
    ReservedItem,
    ReserveProductsRequest,
    ReserveProductsResponse,
)
from generated.services.inventory.events import SERVICE_NAME, InventoryEventPublisher
from handwritten.inventory.adapters.cache import NoProductCache
from handwritten.inventory.adapters.events import PublishedReservationEvents
from handwritten.inventory.adapters.postgres import unit_of_work_factory
from handwritten.inventory.domain.errors import (
    InvalidInputError,
    InventoryError,
    ProductNotFoundError,
    ReservationConflictError,
    ReservationNotFoundError,
)
from handwritten.inventory.domain.money import format_price
from handwritten.inventory.domain.stock import parse_items, parse_uuid
from handwritten.inventory.entrypoints.grpc import InventoryGrpcService
from handwritten.inventory.service_layer.catalogue import Catalogue
from handwritten.inventory.service_layer.ports import ReservationEvents
from handwritten.inventory.service_layer.stock import StockKeeper
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.outbox import OutboxSender

HOST = "127.0.0.1"
FIXED_PRICE = "10.00"


class TrivialInventory(InventoryServiceBase):
    """grpclib: answers every reservation at once, without I/O."""

    async def reserve_products(self, message: ReserveProductsRequest) -> ReserveProductsResponse:
        first = message.items[0]
        return ReserveProductsResponse(
            reserved=True,
            items=[
                ReservedItem(
                    product_id=first.product_id,
                    name="Bench product",
                    quantity=first.quantity,
                    unit_price=FIXED_PRICE,
                )
            ],
            expires_at=dt.datetime.now(dt.UTC),
        )


def grpcio_status(error: InventoryError) -> grpc.StatusCode:
    """The status the grpclib service answers ``error`` with (``to_grpc_error``)."""
    if isinstance(error, InvalidInputError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, ProductNotFoundError | ReservationNotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, ReservationConflictError):
        return grpc.StatusCode.FAILED_PRECONDITION
    raise error


def grpcio_servicer(stock: StockKeeper | None) -> tuple[Any, Any]:
    """A grpc.aio servicer (and the stubs module that registers it): the real
    reservation on ``stock``, or the trivial answer when ``stock`` is ``None``."""
    messages, services = grpcio_stubs.load()

    async def reserve_products(_: Any, request: Any, context: Any) -> Any:
        if stock is None:
            first = request.items[0]
            response = messages.ReserveProductsResponse(reserved=True)
            response.items.add(
                product_id=first.product_id,
                name="Bench product",
                quantity=first.quantity,
                unit_price=FIXED_PRICE,
            )
            response.expires_at.FromDatetime(dt.datetime.now(dt.UTC))
            return response
        try:
            order_id = parse_uuid(request.order_id, "order_id")
            items = parse_items([(i.product_id, i.quantity) for i in request.items])
            outcome = await stock.reserve(order_id, items)
        except InventoryError as exc:
            await context.abort(grpcio_status(exc), str(exc))
        response = messages.ReserveProductsResponse(reserved=outcome.reservation is not None)
        if outcome.reservation is None:
            for item in outcome.unavailable:
                response.unavailable_products.add(
                    product_id=str(item.product_id),
                    requested_quantity=item.requested_quantity,
                    available_quantity=item.available_quantity,
                    reason=item.reason.value,
                )
            return response
        # Lines in request order, as the grpclib service answers them.
        position = {item.product_id: index for index, item in enumerate(items)}
        for line in sorted(outcome.reservation.lines, key=lambda x: position.get(x.product_id, 0)):
            response.items.add(
                product_id=str(line.product_id),
                name=line.product_name,
                quantity=line.quantity,
                unit_price=format_price(line.unit_price),
            )
        response.expires_at.FromDatetime(outcome.reservation.expires_at)
        return response

    servicer = type(
        "BenchInventoryServicer",
        (services.InventoryServiceServicer,),
        {"ReserveProducts": reserve_products},
    )
    return servicer(), services


def _events(connection: asyncpg.Connection) -> ReservationEvents:
    return PublishedReservationEvents(
        InventoryEventPublisher(OutboxSender(connection, SERVICE_NAME))
    )


async def serve(args: argparse.Namespace) -> None:
    pool: asyncpg.Pool | None = None
    stock: StockKeeper | None = None
    catalogue: Catalogue | None = None
    if args.handler == "reserve":
        pool = await asyncpg.create_pool(
            args.url, min_size=2, max_size=10, server_settings={"search_path": args.schema}
        )
        assert pool is not None
        uow = unit_of_work_factory(pool, _events)
        catalogue = Catalogue(uow, NoProductCache())
        stock = StockKeeper(uow, NoProductCache(), reservation_ttl_seconds=3600)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    close: Callable[[], Awaitable[None]]
    if args.impl == "grpcio":
        servicer, services = grpcio_servicer(stock)
        server = grpc.aio.server()
        services.add_InventoryServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port(f"{HOST}:0")
        await server.start()

        async def close() -> None:
            await server.stop(grace=1)

    else:
        handler: InventoryServiceBase = (
            InventoryGrpcService(catalogue, stock)
            if catalogue is not None and stock is not None
            else TrivialInventory()
        )
        if args.impl == "grpclib-runtime":
            configure_logging("bench-grpc", "INFO")
            runtime = GrpcServer([handler, Health()], service="bench")
            await runtime.start(HOST, 0)
            port = runtime.port

            async def close() -> None:
                await runtime.stop(grace_seconds=1)

        else:
            bare = Server([handler, Health()])
            listener = socket.create_server((HOST, 0), backlog=128)
            # As the runtime's GrpcServer does: asyncio would not set it on these sockets.
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await bare.start(sock=listener)
            port = listener.getsockname()[1]

            async def close() -> None:
                bare.close()
                await bare.wait_closed()

    announce(Path(args.ready_file), port)
    await stopped.wait()
    await close()
    if pool is not None:
        await pool.close()


def announce(ready_file: Path, port: int) -> None:
    """Tell the benchmark where to connect (written last: the server is listening)."""
    ready_file.write_text(str(port), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_server")
    parser.add_argument("--impl", choices=["grpclib", "grpclib-runtime", "grpcio"], required=True)
    parser.add_argument("--handler", choices=["trivial", "reserve"], required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--schema", default="public")
    parser.add_argument("--ready-file", required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
