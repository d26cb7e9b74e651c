"""Pure parts of the event store, outbox relay and retries: no I/O involved."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from handwritten.runtime.backoff import Backoff
from handwritten.runtime.events import EventRecord
from handwritten.runtime.eventstore import (
    DomainEvent,
    Snapshot,
    Upcasters,
    normalized,
    rebuild,
    snapshot_due,
    usable_snapshot,
)
from handwritten.runtime.outbox import OutboxRow, first_per_key
from tests.unit.eventstore.toy import ACCOUNT, Account


@pytest.mark.parametrize(
    ("last_snapshot", "version", "every", "due"),
    [
        (0, 4, 5, False),
        (0, 5, 5, True),
        (0, 7, 5, True),  # a multi-event command jumping past the boundary
        (5, 9, 5, False),
        (5, 10, 5, True),
        (0, 100, 0, False),  # disabled
        (0, 100, -1, False),
        (0, 1, 1, True),
    ],
)
def test_snapshot_is_due_every_n_events_since_the_last_usable_one(
    last_snapshot: int, version: int, every: int, due: bool
) -> None:
    assert snapshot_due(last_snapshot, version, every) is due


def _three_step_chain() -> Upcasters:
    upcasters = Upcasters()
    upcasters.register("Priced", 1, lambda data: {**data, "currency": "BRL"})

    @upcasters.register("Priced", 2)
    def split_amount(data: dict[str, Any]) -> dict[str, Any]:
        reais, centavos = data.pop("amount").split(".")
        return {**data, "reais": int(reais), "centavos": int(centavos)}

    return upcasters


def test_upcasters_chain_to_the_current_version() -> None:
    upcasters = _three_step_chain()
    original = {"amount": "10.50"}
    assert upcasters.upcast("Priced", 1, original) == (
        3,
        {"currency": "BRL", "reais": 10, "centavos": 50},
    )
    assert upcasters.upcast("Priced", 2, {"amount": "1.05", "currency": "USD"}) == (
        3,
        {"currency": "USD", "reais": 1, "centavos": 5},
    )
    assert original == {"amount": "10.50"}  # never mutated
    assert upcasters.current_version("Priced") == 3


def test_upcasters_leave_current_and_unknown_events_alone() -> None:
    upcasters = _three_step_chain()
    current = {"currency": "BRL", "reais": 1, "centavos": 0}
    assert upcasters.upcast("Priced", 3, current) == (3, current)
    assert upcasters.upcast("Other", 1, {"x": 1}) == (1, {"x": 1})
    assert upcasters.current_version("Other") == 1


def test_an_upcaster_step_is_registered_once() -> None:
    upcasters = _three_step_chain()
    with pytest.raises(ValueError, match="already has an upcaster"):
        upcasters.register("Priced", 1, lambda data: data)
    with pytest.raises(ValueError, match="start at 1"):
        upcasters.register("Priced", 0, lambda data: data)


def test_new_events_are_normalised_as_they_will_read_back() -> None:
    event = normalized(ACCOUNT, DomainEvent("Deposited", {"amount": 5, "tags": ("a", "b")}))
    # JSON round trip: tuples become lists; schema version made explicit (2 via upcaster).
    assert event == DomainEvent("Deposited", {"amount": 5, "tags": ["a", "b"]}, 2)
    assert normalized(ACCOUNT, DomainEvent("Opened", {"owner": "ana"})).schema_version == 1
    with pytest.raises(ValueError, match="schema version 2"):
        normalized(ACCOUNT, DomainEvent("Deposited", {"amount": 5}, 1))
    with pytest.raises(TypeError):
        normalized(ACCOUNT, DomainEvent("Opened", {"owner": object()}))


def test_rebuild_refuses_a_gap_in_the_sequence() -> None:
    aggregate_id = uuid.uuid4()
    events = [(1, DomainEvent("Opened", {"owner": "ana"})), (3, DomainEvent("Closed", {}))]
    with pytest.raises(ValueError, match="event 3 after 1"):
        rebuild(ACCOUNT, aggregate_id, None, events)


def test_only_a_snapshot_of_the_current_format_and_type_is_usable() -> None:
    aggregate_id = uuid.uuid4()
    state = {"accountId": "x", "owner": "o", "balance": 1, "closed": False, "movements": [1]}
    good = Snapshot(aggregate_id, "Account", ACCOUNT.snapshot_version, state, 2)
    assert usable_snapshot(ACCOUNT, good) is good
    assert usable_snapshot(ACCOUNT, None) is None
    old_format = Snapshot(aggregate_id, "Account", ACCOUNT.snapshot_version - 1, {"bad": 1}, 2)
    assert usable_snapshot(ACCOUNT, old_format) is None
    other_type = Snapshot(aggregate_id, "Order", ACCOUNT.snapshot_version, state, 2)
    assert usable_snapshot(ACCOUNT, other_type) is None
    # An unusable snapshot means replay from the first event.
    loaded = rebuild(
        ACCOUNT, aggregate_id, old_format, [(1, DomainEvent("Opened", {"owner": "ana"}, 1))]
    )
    assert loaded.state == Account(str(aggregate_id), owner="ana")
    assert (loaded.version, loaded.snapshot_sequence) == (1, 0)


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    assert [backoff.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.ceiling(10_000) == 1.0
    for attempt in range(8):
        delay = backoff.delay(attempt)
        assert backoff.ceiling(attempt) / 2 <= delay <= backoff.ceiling(attempt)
    assert Backoff(initial=0.1, maximum=1.0, jitter=False).delay(2) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        Backoff(initial=0, maximum=1)
    with pytest.raises(ValueError):
        Backoff(initial=2, maximum=1)


def _row(row_id: int, key: str) -> OutboxRow:
    return OutboxRow(row_id, EventRecord("t", key.encode(), b"{}", ()))


def test_a_relay_round_takes_only_the_first_unpublished_row_of_each_key() -> None:
    rows = [_row(1, "a"), _row(2, "a"), _row(3, "b"), _row(4, "c"), _row(5, "b"), _row(6, "d")]
    assert [row.id for row in first_per_key(rows)] == [1, 3, 4, 6]
    assert first_per_key([]) == []
