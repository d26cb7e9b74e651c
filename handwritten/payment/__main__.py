"""``python -m handwritten.payment [serve|migrate]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handwritten.payment.app import build_app, migrate_database
from handwritten.payment.settings import PaymentSettings
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.payment",
        description="The MicroCommerce payment service (Kafka commands, simulated gateway).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="consume payment commands and serve health/metrics (default),"
        " or apply the migrations and exit",
    )
    args = parser.parse_args(argv)
    settings = PaymentSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    applied = asyncio.run(migrate_database(settings))
    print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
