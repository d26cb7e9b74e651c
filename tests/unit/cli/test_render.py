"""The CLI's pure rendering: saga timelines, events, log lines, item arguments, errors."""

from __future__ import annotations

import json

import pytest

from handwritten.cli.errors import CliError
from handwritten.cli.main import build_parser
from handwritten.cli.render import (
    clock,
    duration,
    event_row,
    log_line,
    log_matches,
    parse_item,
    saga_timeline,
)

COMPENSATED_SAGA = {
    "sagaId": "s-1",
    "orderId": "o-1",
    "state": "COMPENSATED",
    "currentStep": None,
    "steps": [
        {
            "name": "reserve_inventory",
            "status": "COMPENSATED",
            "attempts": 1,
            "startedAt": "2026-11-29T10:00:00.000Z",
            "finishedAt": "2026-11-29T10:00:00.250Z",
            "compensatedAt": "2026-11-29T10:00:02.250Z",
            "error": None,
        },
        {
            "name": "process_payment",
            "status": "FAILED",
            "attempts": 2,
            "startedAt": "2026-11-29T10:00:00.250Z",
            "finishedAt": "2026-11-29T10:00:01.750Z",
            "compensatedAt": None,
            "error": "card declined",
        },
        {
            "name": "confirm_order",
            "status": "PENDING",
            "attempts": 0,
            "startedAt": None,
            "finishedAt": None,
            "compensatedAt": None,
            "error": None,
        },
    ],
}


def test_the_timeline_lists_steps_then_compensations_with_durations() -> None:
    rows = saga_timeline(COMPENSATED_SAGA)
    assert [(r.step, r.phase, r.status) for r in rows] == [
        ("reserve_inventory", "forward", "COMPENSATED"),
        ("process_payment", "forward", "FAILED"),
        ("confirm_order", "forward", "PENDING"),
        ("reserve_inventory", "compensation", "COMPENSATED"),
    ]
    assert rows[0].duration == "0.250 s"
    assert rows[1].duration == "1.500 s" and rows[1].error == "card declined"
    assert rows[1].attempts == 2
    assert rows[2].duration == "-" and rows[2].started == "-"
    assert rows[3].duration == "2.000 s" and rows[3].started == "10:00:00.250"


def test_compensations_are_listed_last_undone_first() -> None:
    saga = json.loads(json.dumps(COMPENSATED_SAGA))
    saga["steps"][1].update(status="COMPENSATED", compensatedAt="2026-11-29T10:00:02.000Z")
    compensations = [r.step for r in saga_timeline(saga) if r.phase == "compensation"]
    assert compensations == ["process_payment", "reserve_inventory"]


def test_durations_and_clock_handle_missing_times() -> None:
    assert duration(None, "2026-11-29T10:00:00Z") == "-"
    assert clock(None) == "-"
    assert clock("2026-11-29T10:00:01.5+00:00") == "10:00:01.500"


def test_an_event_row_is_compact_and_stable() -> None:
    row = event_row(
        {"sequence": 3, "type": "OrderShipped", "occurredAt": "t", "data": {"b": 1, "a": "x"}}
    )
    assert row == ("3", "OrderShipped", "t", '{"a":"x","b":1}')


def test_json_log_lines_put_time_level_service_event_first() -> None:
    raw = json.dumps(
        {
            "event": "request",
            "level": "info",
            "service": "orders",
            "timestamp": "T",
            "status": 200,
            "logger": "access",
            "correlation_id": "c-1",
        }
    )
    assert log_line(raw + "\n") == "T info orders request correlation_id=c-1 status=200"
    assert log_line("plain text line\n") == "plain text line"
    assert log_line("[1, 2]") == "[1, 2]"


def test_log_filter_by_id() -> None:
    assert log_matches('{"order_id": "o-1"}', "o-1")
    assert not log_matches('{"order_id": "o-2"}', "o-1")
    assert log_matches("anything", None)


@pytest.mark.parametrize(
    ("text", "item"),
    [("p-1:3", {"productId": "p-1", "quantity": 3}), ("p-1", {"productId": "p-1", "quantity": 1})],
)
def test_items_parse(text: str, item: dict[str, object]) -> None:
    assert parse_item(text) == item


@pytest.mark.parametrize("text", [":2", "p-1:0", "p-1:-1", "p-1:two"])
def test_bad_items_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="item"):
        parse_item(text)


def test_errors_are_one_line_plus_a_hint() -> None:
    assert CliError("gateway down", "mc up").lines() == ["error: gateway down", "hint: mc up"]
    assert CliError("bad").lines() == ["error: bad"]


def test_the_parser_knows_every_documented_command() -> None:
    parser = build_parser()
    for argv in (
        ["up"],
        ["down"],
        ["status"],
        ["logs", "orders", "-f", "--grep", "x"],
        ["login", "a@b.c"],
        ["order", "create", "--item", "p:1", "--token", "tok_timeout"],
        ["order", "show", "o"],
        ["order", "cancel", "o"],
        ["saga", "show", "o"],
        ["events", "o", "--follow"],
        ["replay", "projections"],
        ["replay", "analytics"],
        ["topics"],
        ["spec", "diff", "--base", "HEAD"],
    ):
        assert callable(parser.parse_args(argv).handler), argv
