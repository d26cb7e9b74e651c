"""The chaos proxy's fault model and command-line parsing (pure, no sockets)."""

from __future__ import annotations

import argparse

import pytest
from pydantic import ValidationError

from handwritten.chaos import NO_FAULT, Direction, Endpoint, Fault, Mode
from handwritten.chaos.cli import parse_route


def test_no_fault_delays_nothing() -> None:
    assert NO_FAULT.is_clear and NO_FAULT.mode is Mode.FORWARD
    for direction in (Direction.UPSTREAM, Direction.DOWNSTREAM):
        assert NO_FAULT.chunk_delay_ms(direction, roll=0.99) == 0.0
    assert NO_FAULT.connect_delay_ms(roll=0.99) == 0.0


def test_chunk_latency_applies_to_the_chosen_direction_plus_jitter() -> None:
    fault = Fault(latency_ms=500, jitter_ms=100, direction=Direction.DOWNSTREAM)
    assert not fault.is_clear
    assert fault.chunk_delay_ms(Direction.DOWNSTREAM, roll=0.0) == 500
    assert fault.chunk_delay_ms(Direction.DOWNSTREAM, roll=0.5) == 550
    assert fault.chunk_delay_ms(Direction.UPSTREAM, roll=0.5) == 0.0
    both = Fault(latency_ms=20)
    assert both.chunk_delay_ms(Direction.UPSTREAM, 0.0) == both.chunk_delay_ms(
        Direction.DOWNSTREAM, 0.0
    )
    assert both.connect_delay_ms(0.0) == 0.0


def test_connection_latency_delays_the_opening_only() -> None:
    fault = Fault(latency_ms=300, latency_per="connection")
    assert fault.connect_delay_ms(roll=0.0) == 300
    assert fault.chunk_delay_ms(Direction.DOWNSTREAM, roll=0.0) == 0.0


@pytest.mark.parametrize(
    "body",
    [{"latency_ms": -1}, {"mode": "explode"}, {"latency_ms": 10, "unknown": 1}],
)
def test_faults_from_the_control_api_are_validated(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Fault.model_validate(body)


def test_endpoints_and_routes_parse_or_refuse() -> None:
    assert Endpoint.parse("127.0.0.1:5432") == Endpoint("127.0.0.1", 5432)
    assert str(Endpoint.parse("[::1]:9094")) == "::1:9094"
    for bad in ("5432", "host:", ":80", "host:99999", "host:port"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)
    route = parse_route("postgres=127.0.0.1:15432=127.0.0.1:5432")
    assert (route.name, route.listen.port, route.upstream.port) == ("postgres", 15432, 5432)
    for bad in ("postgres=127.0.0.1:15432", "=a:1=b:2", "x=a:1=b:2=c:3", "x=a:1=b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_route(bad)
