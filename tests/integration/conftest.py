"""Integration tests run against the local infrastructure (started by `make infra-up`)."""

from __future__ import annotations

from tests.conftest import STACK

__all__ = ["STACK"]
