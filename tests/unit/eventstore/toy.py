"""A tiny event-sourced bank account: pure domain code for the event store tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from handwritten.runtime.eventstore import AggregateSpec, DomainEvent, Upcasters


class Rejected(Exception):
    """A command that is not valid in the current state."""


@dataclass(frozen=True)
class Account:
    account_id: str
    owner: str | None = None
    balance: int = 0
    closed: bool = False
    movements: tuple[int, ...] = ()


def initial(aggregate_id: uuid.UUID) -> Account:
    return Account(account_id=str(aggregate_id))


def apply(state: Account, event: DomainEvent) -> Account:
    data = event.data
    if event.event_type == "Opened":
        return replace(state, owner=data["owner"])
    if event.event_type == "Deposited":
        return replace(
            state,
            balance=state.balance + data["amount"],
            movements=(*state.movements, data["amount"]),
        )
    if event.event_type == "Withdrew":
        return replace(
            state,
            balance=state.balance - data["amount"],
            movements=(*state.movements, -data["amount"]),
        )
    if event.event_type == "Closed":
        return replace(state, closed=True)
    raise ValueError(f"unknown event {event.event_type}")


def to_snapshot(state: Account) -> dict[str, Any]:
    return {
        "accountId": state.account_id,
        "owner": state.owner,
        "balance": state.balance,
        "closed": state.closed,
        "movements": list(state.movements),
    }


def from_snapshot(data: dict[str, Any]) -> Account:
    return Account(
        account_id=data["accountId"],
        owner=data["owner"],
        balance=data["balance"],
        closed=data["closed"],
        movements=tuple(data["movements"]),
    )


UPCASTERS = Upcasters()


@UPCASTERS.register("Deposited", 1)
def _deposited_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 carried the amount as a decimal string under "value".
    return {"amount": int(data["value"])}


ACCOUNT = AggregateSpec(
    aggregate_type="Account",
    initial=initial,
    apply=apply,
    snapshot_version=2,
    to_snapshot=to_snapshot,
    from_snapshot=from_snapshot,
    upcasters=UPCASTERS,
)


# ------------------------------------------------------------------- commands

Decide = Callable[[Account], Sequence[DomainEvent]]


def open_account(owner: str) -> Decide:
    def decide(state: Account) -> list[DomainEvent]:
        if state.owner is not None:
            raise Rejected("already open")
        return [DomainEvent("Opened", {"owner": owner})]

    return decide


def deposit(amount: int) -> Decide:
    def decide(state: Account) -> list[DomainEvent]:
        if state.owner is None or state.closed or amount <= 0:
            raise Rejected("cannot deposit")
        return [DomainEvent("Deposited", {"amount": amount})]

    return decide


def withdraw(amount: int) -> Decide:
    def decide(state: Account) -> list[DomainEvent]:
        if state.owner is None or state.closed or not 0 < amount <= state.balance:
            raise Rejected("cannot withdraw")
        return [DomainEvent("Withdrew", {"amount": amount})]

    return decide


def close() -> Decide:
    def decide(state: Account) -> list[DomainEvent]:
        if state.owner is None or state.closed:
            raise Rejected("cannot close")
        # Closing pays out the balance first: two events from one command.
        events = [DomainEvent("Withdrew", {"amount": state.balance})] if state.balance else []
        return [*events, DomainEvent("Closed", {})]

    return decide
