"""``python -m handwritten.shipping [serve|migrate]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handwritten.runtime.logging import configure_logging
from handwritten.runtime.serve import serve
from handwritten.shipping.app import build_app, migrate_database
from handwritten.shipping.settings import ShippingSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.shipping",
        description="The MicroCommerce shipping service (REST, gRPC, consumer, progression job).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve HTTP, gRPC and the background jobs (default), or apply the migrations and exit",
    )
    args = parser.parse_args(argv)
    settings = ShippingSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    applied = asyncio.run(migrate_database(settings))
    print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
