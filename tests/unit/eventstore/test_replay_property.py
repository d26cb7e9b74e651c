"""Property: live state == full replay == snapshot + tail, for any command sequence."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from handwritten.runtime.eventstore import (
    DomainEvent,
    Loaded,
    Snapshot,
    fold,
    normalized,
    rebuild,
    snapshot_due,
    take_snapshot,
)
from tests.unit.eventstore.toy import (
    ACCOUNT,
    Decide,
    Rejected,
    close,
    deposit,
    open_account,
    withdraw,
)

Step = tuple[str, int]

steps = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 3)),
    st.tuples(st.just("deposit"), st.integers(1, 500)),
    st.tuples(st.just("withdraw"), st.integers(1, 500)),
    st.tuples(st.just("close"), st.just(0)),
)


def _command(step: Step) -> Decide:
    kind, value = step
    if kind == "open":
        return open_account(f"owner-{value}")
    if kind == "deposit":
        return deposit(value)
    if kind == "withdraw":
        return withdraw(value)
    return close()


@settings(max_examples=200, deadline=None)
@given(
    commands=st.lists(steps, max_size=40),
    every=st.integers(0, 6),
    split=st.integers(0, 60),
)
def test_replay_with_or_without_snapshot_equals_the_live_state(
    commands: list[Step], every: int, split: int
) -> None:
    aggregate_id = uuid.uuid4()
    live = ACCOUNT.initial(aggregate_id)
    history: list[DomainEvent] = []
    latest: Snapshot | None = None
    # What the repository does: decide, normalise, apply, snapshot when due.
    for step in commands:
        try:
            decided = [normalized(ACCOUNT, event) for event in _command(step)(live)]
        except Rejected:
            continue
        previous = len(history)
        for event in decided:
            live = ACCOUNT.apply(live, event)
            history.append(event)
        last_snapshot = 0 if latest is None else latest.last_sequence_number
        if decided and snapshot_due(last_snapshot, len(history), every):
            assert len(history) > previous
            latest = take_snapshot(ACCOUNT, Loaded(aggregate_id, live, len(history)))
    numbered = list(enumerate(history, start=1))

    full = rebuild(ACCOUNT, aggregate_id, None, numbered)
    assert full.state == live
    assert full.version == len(history)

    # The repository's own snapshots: latest snapshot + the events after it.
    if latest is not None:
        tail = numbered[latest.last_sequence_number :]
        from_snapshot = rebuild(ACCOUNT, aggregate_id, latest, tail)
        assert from_snapshot.state == live
        assert from_snapshot.snapshot_sequence == latest.last_sequence_number

    # A snapshot at any point of the history, plus the rest.
    cut = min(split, len(history))
    at_cut = fold(ACCOUNT, ACCOUNT.initial(aggregate_id), history[:cut])
    if cut:
        snapshot = take_snapshot(ACCOUNT, Loaded(aggregate_id, at_cut, cut))
        assert rebuild(ACCOUNT, aggregate_id, snapshot, numbered[cut:]).state == live

    # An outdated snapshot format is ignored: replay from the first event still works.
    outdated = Snapshot(aggregate_id, "Account", ACCOUNT.snapshot_version - 1, {"v1": True}, cut)
    assert rebuild(ACCOUNT, aggregate_id, outdated, numbered).state == live
