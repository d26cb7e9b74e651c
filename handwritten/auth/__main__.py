"""``python -m handwritten.auth [serve|migrate|rotate-keys|create-admin EMAIL]``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from handwritten.auth.admins import AdminOutcome
from handwritten.auth.app import add_admin, build_app, migrate_database, rotate_signing_key
from handwritten.auth.domain.errors import InvalidRegistrationError
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
        choices=["serve", "migrate", "rotate-keys", "create-admin"],
        help="serve HTTP (default), apply the migrations, rotate the signing key now, "
        "or add an admin account",
    )
    parser.add_argument("email", nargs="?", help="create-admin: the new admin's e-mail")
    parser.add_argument("--name", default="Admin", help="create-admin: display name")
    args = parser.parse_args(argv)
    if args.command == "create-admin" and not args.email:
        parser.error("create-admin needs the e-mail of the new admin")
    settings = AuthSettings()
    if args.command == "serve":
        serve(build_app(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(migrate_database(settings))
        print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    elif args.command == "create-admin":
        return create_admin_command(settings, args.email, args.name)
    else:
        info = asyncio.run(rotate_signing_key(settings))
        print(f"signing key rotated: new kid {info.kid}")
    return 0


def create_admin_command(settings: AuthSettings, email: str, name: str) -> int:
    """Add an admin; the password comes from ``MC_NEW_ADMIN_PASSWORD`` or a prompt
    (never from the command line, where other users and shell history see it)."""
    password = os.environ.get("MC_NEW_ADMIN_PASSWORD") or getpass.getpass("password: ")
    try:
        outcome = asyncio.run(add_admin(settings, email=email, password=password, name=name))
    except InvalidRegistrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"admin {email}: {outcome.value}")
    return 1 if outcome is AdminOutcome.TAKEN_BY_CUSTOMER else 0


if __name__ == "__main__":
    sys.exit(main())
