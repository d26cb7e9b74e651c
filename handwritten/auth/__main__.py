"""``python -m handwritten.auth [serve|migrate|rotate-keys]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handwritten.auth.app import build_app, migrate_database, rotate_signing_key
from handwritten.auth.settings import AuthSettings
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.auth", description="The MicroCommerce auth service."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "rotate-keys"],
        help="serve HTTP (default), apply the migrations, or rotate the signing key now",
    )
    args = parser.parse_args(argv)
    settings = AuthSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(migrate_database(settings))
        print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    else:
        info = asyncio.run(rotate_signing_key(settings))
        print(f"signing key rotated: new kid {info.kid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
