"""mc: operate and explore a MicroCommerce stack from the terminal.

    mc up | down | status | logs SERVICE [-f] [--grep ID]
    mc login EMAIL
    mc order create --item PRODUCT_ID[:QTY]… [--token tok_visa] | show ID | cancel ID
    mc saga show ORDER          mc events ORDER [--follow]
    mc replay projections|analytics
    mc topics                   mc spec diff [--base REF] [--allow-breaking]

``--as-admin`` acts as the local demo admin (development defaults only). Errors are one
line plus a hint; ``MC_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from handwritten.cli import operations, orders, stack
from handwritten.cli.client import Gateway, credentials_path
from handwritten.cli.errors import CliError
from handwritten.cli.render import parse_item

Handler = Callable[[argparse.Namespace, Console], int]


def _gateway(args: argparse.Namespace) -> Gateway:
    return Gateway(as_admin=bool(args.as_admin))


def _print_json_or(
    args: argparse.Namespace, console: Console, payload: object, table: Table
) -> None:
    if args.json:
        console.print_json(json.dumps(payload))
    else:
        console.print(table)


def cmd_up(args: argparse.Namespace, console: Console) -> int:
    stack.up(console)
    return 0


def cmd_down(args: argparse.Namespace, console: Console) -> int:
    stack.down()
    return 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    stack.status(console)
    return 0


def cmd_logs(args: argparse.Namespace, console: Console) -> int:
    for line in stack.logs(args.service, follow=args.follow, needle=args.grep, lines=args.lines):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_login(args: argparse.Namespace, console: Console) -> int:
    password = os.environ.get("MC_PASSWORD") or getpass.getpass(f"password for {args.email}: ")
    gateway = Gateway()
    try:
        credentials = gateway.login(args.email, password)
    finally:
        gateway.close()
    credentials.save(credentials_path())
    console.print(f"logged in as {args.email} (tokens in {credentials_path()})")
    return 0


def cmd_order(args: argparse.Namespace, console: Console) -> int:
    gateway = _gateway(args)
    try:
        if args.action == "create":
            try:
                items = [parse_item(item) for item in args.item]
            except ValueError as exc:
                raise CliError(str(exc), "example: --item 3f6c…:2") from exc
            order = orders.create(gateway, items, args.token)
        elif args.action == "show":
            order = orders.show(gateway, args.order_id)
        else:
            order = orders.cancel(gateway, args.order_id)
    finally:
        gateway.close()
    _print_json_or(args, console, order, orders.order_table(order))
    return 0


def cmd_saga(args: argparse.Namespace, console: Console) -> int:
    gateway = _gateway(args)
    try:
        state = orders.saga(gateway, args.order_id)
    finally:
        gateway.close()
    _print_json_or(args, console, state, orders.saga_table(state))
    return 0


def cmd_events(args: argparse.Namespace, console: Console) -> int:
    gateway = _gateway(args)
    try:
        if args.follow:
            orders.follow_events(
                gateway, args.order_id, console, interval=1.0, until_idle=args.until_idle
            )
            return 0
        history = orders.events(gateway, args.order_id)
    finally:
        gateway.close()
    _print_json_or(args, console, history, orders.events_table(args.order_id, history))
    return 0


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    if args.target == "projections":
        operations.replay_projections(console)
    else:
        operations.replay_analytics(console)
    return 0


def cmd_topics(args: argparse.Namespace, console: Console) -> int:
    lags = operations.topics(args.bootstrap)
    table = Table(title=f"consumer lag ({args.bootstrap})")
    for column in ("group", "topic", "committed", "end", "lag"):
        table.add_column(column)
    for row in lags:
        table.add_row(row.group, row.topic, str(row.committed), str(row.end), str(row.lag))
    payload = [dict(row.__dict__, lag=row.lag) for row in lags]
    _print_json_or(args, console, payload, table)
    return 0


def cmd_spec(args: argparse.Namespace, console: Console) -> int:
    from generator.specdiff import default_base, run_spec_diff

    base = args.base or default_base(stack.REPO_ROOT)
    return run_spec_diff(
        base, allow_breaking=args.allow_breaking, fmt=args.format, root=stack.REPO_ROOT
    )


def build_parser() -> argparse.ArgumentParser:
    """Every command and option (``mc --help``)."""
    parser = argparse.ArgumentParser(
        prog="mc",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--as-admin", action="store_true", help="act as the local demo admin")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("up", cmd_up, "start infrastructure, services and gateway (live status)")
    add("down", cmd_down, "stop services and infrastructure")
    add("status", cmd_status, "what runs now")
    logs = add("logs", cmd_logs, "a service's log, pretty-printed")
    logs.add_argument("service")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--grep", help="only lines mentioning this (order id, correlation id…)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="last N lines first")
    login = add("login", cmd_login, "log in and keep the tokens (MC_PASSWORD or a prompt)")
    login.add_argument("email")

    order = add("order", cmd_order, "create, show or cancel an order")
    order_actions = order.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = order_actions.add_parser("create", help="place an order")
    create.add_argument("--item", action="append", required=True, help="PRODUCT_ID[:QTY]")
    create.add_argument("--token", default="tok_visa", help="payment test token")
    for action in ("show", "cancel"):
        order_actions.add_parser(action, help=f"{action} an order").add_argument("order_id")

    saga = add("saga", cmd_saga, "the order's saga as a timeline")
    saga.add_argument("action", choices=["show"])
    saga.add_argument("order_id")
    events = add("events", cmd_events, "the order's event stream")
    events.add_argument("order_id")
    events.add_argument("--follow", action="store_true", help="print new events as they come")
    events.add_argument(
        "--until-idle",
        type=float,
        default=10.0,
        help="with --follow: stop this long after the last event of a terminal order (0: never)",
    )
    replay = add("replay", cmd_replay, "rebuild read models from history")
    replay.add_argument("target", choices=["projections", "analytics"])
    topics = add("topics", cmd_topics, "lag per consumer group and topic")
    topics.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    spec = add("spec", cmd_spec, "spec tools: diff against a git ref")
    spec.add_argument("action", choices=["diff"])
    spec.add_argument("--base", help="git ref (default: origin/main, else main)")
    spec.add_argument("--allow-breaking", action="store_true")
    spec.add_argument("--format", choices=["markdown", "json"], default="markdown")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mc`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    console = Console()
    errors = Console(stderr=True)
    handler: Handler = args.handler
    try:
        return handler(args, console)
    except CliError as exc:
        if os.environ.get("MC_DEBUG") == "1":
            raise
        for line in exc.lines():
            errors.print(line, markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
