"""``python -m handwritten.orders [serve|migrate|rebuild-projections]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handwritten.orders.app import build_app, migrate_database, rebuild_projections
from handwritten.orders.settings import OrdersSettings
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.orders",
        description="The MicroCommerce orders service (REST and gRPC).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "rebuild-projections"],
        help=(
            "serve HTTP and gRPC (default), apply the migrations, or rebuild the"
            " orders_view projection from the event store"
        ),
    )
    args = parser.parse_args(argv)
    settings = OrdersSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(migrate_database(settings))
        print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    else:
        count = asyncio.run(rebuild_projections(settings))
        print(f"orders_view rebuilt from the event store: {count} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
