"""``python -m handwritten.chaos``: run a chaos proxy, or drive one through its control API.

    python -m handwritten.chaos proxy --listen 127.0.0.1:15432 --upstream 127.0.0.1:5432 \\
        [--control 127.0.0.1:18199]
    python -m handwritten.chaos proxy --route postgres=127.0.0.1:15432=127.0.0.1:5432 \\
        --route kafka=127.0.0.1:19094=127.0.0.1:9094 [--control …]
    python -m handwritten.chaos set ROUTE [--mode blackhole] [--latency-ms 500] …
    python -m handwritten.chaos clear [ROUTE]
    python -m handwritten.chaos reset ROUTE
    python -m handwritten.chaos status

The client commands talk to ``--control`` (default ``CHAOS_CONTROL`` or
127.0.0.1:18199) and print the JSON answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence

from handwritten.chaos.client import ChaosControl
from handwritten.chaos.faults import Direction, Fault, Mode
from handwritten.chaos.proxy import ChaosProxy, Endpoint

DEFAULT_CONTROL = os.environ.get("CHAOS_CONTROL", "127.0.0.1:18199")


def parse_route(text: str) -> ChaosProxy:
    """``name=listen_host:port=upstream_host:port`` → a proxy route."""
    name, listen, upstream = ([*text.split("="), "", ""])[:3]
    if not name or not listen or not upstream or text.count("=") != 2:
        raise argparse.ArgumentTypeError(f"a route is NAME=LISTEN=UPSTREAM, not {text!r}")
    try:
        return ChaosProxy(name, Endpoint.parse(listen), Endpoint.parse(upstream))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handwritten.chaos",
        description="Fault-injection TCP proxy between services and their dependencies.",
    )
    parser.add_argument("--control", default=DEFAULT_CONTROL, help="control API host:port")
    commands = parser.add_subparsers(dest="command", required=True)

    proxy = commands.add_parser("proxy", help="run proxy routes and the control API")
    proxy.add_argument("--listen", help="listen host:port of a single route named 'default'")
    proxy.add_argument("--upstream", help="upstream host:port of that route")
    proxy.add_argument(
        "--route", action="append", type=parse_route, default=[], help="NAME=LISTEN=UPSTREAM"
    )
    proxy.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))

    fault = commands.add_parser("set", help="set a route's fault")
    fault.add_argument("route")
    fault.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.FORWARD.value)
    fault.add_argument("--latency-ms", type=int, default=0)
    fault.add_argument("--jitter-ms", type=int, default=0)
    fault.add_argument(
        "--direction", choices=[d.value for d in Direction], default=Direction.BOTH.value
    )
    fault.add_argument("--per", choices=["chunk", "connection"], default="chunk")

    clear = commands.add_parser("clear", help="clear one route's fault, or all")
    clear.add_argument("route", nargs="?")
    reset = commands.add_parser("reset", help="reset a route's open connections once")
    reset.add_argument("route")
    commands.add_parser("status", help="every route with its fault and counters")
    return parser


def _proxies(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[ChaosProxy]:
    proxies: list[ChaosProxy] = list(args.route)
    if (args.listen is None) != (args.upstream is None):
        parser.error("--listen and --upstream go together")
    if args.listen is not None:
        try:
            listen, upstream = Endpoint.parse(args.listen), Endpoint.parse(args.upstream)
        except ValueError as exc:
            parser.error(str(exc))
        proxies.append(ChaosProxy("default", listen, upstream))
    if not proxies:
        parser.error("give --listen/--upstream or at least one --route")
    return proxies


def _serve(proxies: list[ChaosProxy], control: Endpoint, log_level: str) -> None:
    # Imported here: the client commands need neither FastAPI nor uvicorn.
    from handwritten.chaos.control import build_control_app
    from handwritten.runtime.serve import serve
    from handwritten.runtime.settings import ServiceSettings

    settings = ServiceSettings(
        service_name="chaos-proxy",
        http_host=control.host,
        http_port=control.port,
        log_level=log_level,
        shutdown_grace_seconds=1.0,
    )
    serve(build_control_app(proxies), settings)


async def _client(args: argparse.Namespace) -> object:
    async with ChaosControl(f"http://{args.control}") as chaos:
        if args.command == "set":
            fault = Fault(
                mode=Mode(args.mode),
                latency_ms=args.latency_ms,
                jitter_ms=args.jitter_ms,
                direction=Direction(args.direction),
                latency_per=args.per,
            )
            return (await chaos.set_fault(args.route, fault)).model_dump(mode="json")
        if args.command == "clear" and args.route:
            return (await chaos.clear(args.route)).model_dump(mode="json")
        if args.command == "clear":
            return [view.model_dump(mode="json") for view in await chaos.clear_all()]
        if args.command == "reset":
            return {"route": args.route, "reset": await chaos.reset(args.route)}
        return [view.model_dump(mode="json") for view in await chaos.routes()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        control = Endpoint.parse(args.control)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "proxy":
        _serve(_proxies(args, parser), control, args.log_level)
        return 0
    print(json.dumps(asyncio.run(_client(args)), indent=2))
    return 0
