"""Resilience tests drive the running local stack like the end-to-end suite does."""

from tests.e2e.conftest import account, admin, gateway

__all__ = ["account", "admin", "gateway"]
