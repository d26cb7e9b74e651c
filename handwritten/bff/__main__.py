"""``python -m handwritten.bff [serve|schema web|schema mobile]``.

``serve`` (the default) serves the GraphQL BFF (port 8107 by default); ``schema``
prints a shape's SDL, the source of the checked-in ``handwritten/bff/schema/*.graphql``.
"""

from __future__ import annotations

import argparse
import sys

from handwritten.bff.app import build_app
from handwritten.bff.entrypoints.graphql.schema import SHAPES, Limits
from handwritten.bff.settings import BffSettings
from handwritten.runtime.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.bff",
        description="The MicroCommerce BFF: GraphQL (web and mobile shapes) over gRPC.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "schema"],
        help="serve HTTP (default), or print a shape's GraphQL SDL",
    )
    parser.add_argument("shape", nargs="?", choices=sorted(SHAPES), default="web")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(SHAPES[args.shape](Limits()).as_str())
        return 0
    settings = BffSettings()
    serve(build_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
