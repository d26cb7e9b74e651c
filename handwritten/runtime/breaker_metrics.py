"""Circuit breaker metrics, the same for every service that guards its calls.

- ``circuit_breaker_state{service, breaker}``: 0 closed, 1 open, 2 half-open, as
  this process last saw it;
- ``circuit_breaker_transitions_total{service, breaker, from_state, to_state}``:
  state changes this process made or noticed (breakers whose state replicas share
  count a change in every replica that sees it);
- ``circuit_breaker_rejections_total{service, breaker}``: calls failed fast, not
  attempted, because the breaker was open.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

from handwritten.runtime.metrics import REGISTRY

#: The value of ``circuit_breaker_state`` for each state name (pybreaker's names).
STATE_VALUES: Final = {"closed": 0, "open": 1, "half-open": 2}

CIRCUIT_BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "State of a circuit breaker: 0 closed, 1 open, 2 half-open.",
    ["service", "breaker"],
    registry=REGISTRY,
)
CIRCUIT_BREAKER_TRANSITIONS = Counter(
    "circuit_breaker_transitions",
    "Circuit breaker state changes, by the state left and the state entered.",
    ["service", "breaker", "from_state", "to_state"],
    registry=REGISTRY,
)
CIRCUIT_BREAKER_REJECTIONS = Counter(
    "circuit_breaker_rejections",
    "Calls failed fast (not attempted) because the circuit breaker was open.",
    ["service", "breaker"],
    registry=REGISTRY,
)


def state_value(state: str) -> int:
    """The gauge value of a state name (``ValueError`` for an unknown name)."""
    try:
        return STATE_VALUES[state]
    except KeyError:
        raise ValueError(f"unknown circuit breaker state {state!r}") from None


def record_state(service: str, breaker: str, state: str) -> None:
    """Set the state gauge (e.g. when the breaker is created)."""
    CIRCUIT_BREAKER_STATE.labels(service, breaker).set(state_value(state))


def record_transition(service: str, breaker: str, old: str | None, new: str) -> None:
    """Count a state change and set the gauge to the new state."""
    record_state(service, breaker, new)
    if old is not None and old != new:
        CIRCUIT_BREAKER_TRANSITIONS.labels(service, breaker, old, new).inc()


def record_rejection(service: str, breaker: str) -> None:
    """Count a call the open breaker refused."""
    CIRCUIT_BREAKER_REJECTIONS.labels(service, breaker).inc()
