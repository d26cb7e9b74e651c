"""``python -m handwritten.analytics [serve|migrate|rebuild]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handwritten.analytics.adapters.clickhouse import ClickHouseError
from handwritten.analytics.app import build_app, migrate_store, rebuild_store
from handwritten.analytics.settings import AnalyticsSettings
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.analytics",
        description="The MicroCommerce analytics service (REST, gRPC, consumer of every event).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "rebuild"],
        help=(
            "serve HTTP, gRPC and the consumer (default); create the missing tables and "
            "exit; or empty the tables and replay every topic from the beginning (with "
            "embedded chdb, stop the service first: one process owns its directory)"
        ),
    )
    args = parser.parse_args(argv)
    settings = AnalyticsSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    try:
        if args.command == "migrate":
            asyncio.run(migrate_store(settings))
            print(f"analytics tables ready in database {settings.analytics_database}")
            return 0
        result = asyncio.run(rebuild_store(settings))
    except ClickHouseError as exc:
        print(f"analytics {args.command} failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"analytics rebuilt from {result.records} records: {result.applied} applied, "
        f"{result.duplicates} duplicates, {result.poison} poison skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
