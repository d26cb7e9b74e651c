"""Security suite: attacks through the gateway of the running local stack.

The gateway client and the account/admin fixtures are the end-to-end suite's
(imported, not copied). Helpers shared by the modules live in ``support.py``.
"""

from __future__ import annotations

from tests.e2e.conftest import account, admin, gateway

__all__ = ["account", "admin", "gateway"]
