"""What a chaos proxy route does to its traffic: the fault model (pure, no I/O).

One ``Fault`` per route at a time. ``mode`` says what happens to connections:

- ``forward``: bytes are forwarded (with the configured latency, if any);
- ``reset``: every open connection is reset (TCP RST to both peers) when the fault
  is set, and every new one is reset as soon as it is accepted;
- ``blackhole``: connections are accepted but nothing is forwarded either way: the
  peers see silence (their timeouts fire) and the bytes wait. Clearing the fault
  lets the held bytes through, like a network partition that heals;
- ``close_new``: open connections keep working; new ones are closed (FIN) at once.

Latency delays each chunk by ``latency_ms`` plus a random ``0..jitter_ms``, in the
chosen ``direction``, without reordering and without limiting throughput (chunks
are pipelined, like a long link); ``latency_per="connection"`` instead delays only
the opening of each new connection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Mode(StrEnum):
    """What happens to a route's connections (see the module docstring)."""

    FORWARD = "forward"
    RESET = "reset"
    BLACKHOLE = "blackhole"
    CLOSE_NEW = "close_new"


class Direction(StrEnum):
    """Which way latency applies: towards the upstream, back to the client, or both."""

    BOTH = "both"
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


class Fault(BaseModel):
    """A route's fault; the default is no fault at all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Mode.FORWARD
    latency_ms: int = Field(0, ge=0, le=120_000)
    jitter_ms: int = Field(0, ge=0, le=120_000)
    direction: Direction = Direction.BOTH
    latency_per: Literal["chunk", "connection"] = "chunk"

    @property
    def is_clear(self) -> bool:
        """Whether the route behaves like a plain TCP relay."""
        return self == NO_FAULT

    def chunk_delay_ms(self, direction: Direction, roll: float) -> float:
        """Milliseconds to hold a chunk going ``direction`` (``roll`` in [0, 1))."""
        if self.latency_per != "chunk" or not self._delays(direction):
            return 0.0
        return self.latency_ms + roll * self.jitter_ms

    def connect_delay_ms(self, roll: float) -> float:
        """Milliseconds to wait before opening the upstream side of a new connection."""
        if self.latency_per != "connection":
            return 0.0
        return self.latency_ms + roll * self.jitter_ms

    def _delays(self, direction: Direction) -> bool:
        return self.direction is Direction.BOTH or self.direction is direction


NO_FAULT = Fault()


class RouteStats(BaseModel):
    """Counters of one route since the proxy started."""

    model_config = ConfigDict(extra="forbid")

    accepted: int = 0
    active: int = 0
    resets: int = 0
    closed_new: int = 0
    upstream_failures: int = 0
    bytes_upstream: int = 0
    bytes_downstream: int = 0


class RouteView(BaseModel):
    """A route as the control API shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    listen: str
    upstream: str
    fault: Fault
    stats: RouteStats
