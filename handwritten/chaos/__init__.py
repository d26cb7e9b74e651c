"""Fault injection for the local stack: a TCP proxy with per-route faults.

``ChaosProxy`` relays one listen address to one upstream (PostgreSQL, Redis, a
Kafka listener, a gRPC server) and adds latency, resets connections, black-holes
traffic or refuses new connections on command; ``build_control_app`` serves the
routes' HTTP control API (``handwritten.chaos.control``, imported on its own: it
needs FastAPI) and ``ChaosControl`` is its client. Run it with
``python -m handwritten.chaos proxy …``. The chaos scenarios (tests/chaos) point a
service at a route through its environment (DATABASE_URL, REDIS_URL,
KAFKA_BOOTSTRAP_SERVERS, the gRPC targets) and inject faults mid-load.
"""

from handwritten.chaos.client import ChaosControl, ChaosControlError
from handwritten.chaos.faults import NO_FAULT, Direction, Fault, Mode, RouteStats, RouteView
from handwritten.chaos.proxy import ChaosProxy, Endpoint

__all__ = [
    "NO_FAULT",
    "ChaosControl",
    "ChaosControlError",
    "ChaosProxy",
    "Direction",
    "Endpoint",
    "Fault",
    "Mode",
    "RouteStats",
    "RouteView",
]
