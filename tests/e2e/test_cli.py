"""The ``mc`` command line against the running stack: login, orders, saga, events, topics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Account
from tests.e2e.saga_support import new_product, wait_saga_terminal

MC = Path(sys.executable).with_name("mc")


async def mc(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mc`` script (as a user would) without blocking the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(MC), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def payload(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_private_file(path: Path) -> tuple[int, str]:
    return path.stat().st_mode & 0o777, path.read_text()


@pytest.fixture
def credentials(tmp_path: Path, account: Account) -> dict[str, str]:
    return {"MC_CREDENTIALS": str(tmp_path / "credentials.json"), "MC_PASSWORD": account.password}


async def test_the_script_is_installed_with_the_project() -> None:
    assert MC.is_file(), "uv sync installs the mc entry point next to the interpreter"
    result = await mc("--help")
    assert result.returncode == 0 and "saga" in result.stdout and "topics" in result.stdout


async def test_login_then_create_show_saga_events_and_cancel(
    gateway: httpx.AsyncClient, admin: Account, account: Account, credentials: dict[str, str]
) -> None:
    login = await mc("login", account.email, env=credentials)
    assert login.returncode == 0, login.stderr
    mode, text = read_private_file(Path(credentials["MC_CREDENTIALS"]))
    assert mode == 0o600
    assert json.loads(text)["email"] == account.email

    product = await new_product(gateway, admin, stock=5, price="12.50")
    # tok_timeout keeps the saga waiting on payment, so the order can still be canceled.
    created = payload(
        await mc(
            "--json",
            "order",
            "create",
            "--item",
            f"{product}:2",
            "--token",
            "tok_timeout",
            env=credentials,
        )
    )
    order_id = created["orderId"]
    assert created["status"] == "PENDING" and created["totalAmount"] == "25.00"

    shown = payload(await mc("--json", "order", "show", order_id, env=credentials))
    assert shown["orderId"] == order_id and shown["userId"] == account.id

    saga = payload(await mc("--json", "saga", "show", order_id, env=credentials))
    assert saga["orderId"] == order_id
    assert saga["steps"][0]["name"] == "reserve_inventory"
    table = await mc("saga", "show", order_id, env=credentials)
    assert table.returncode == 0 and "reserve_inventory" in table.stdout

    canceled = payload(await mc("--json", "order", "cancel", order_id, env=credentials))
    assert canceled["status"] == "CANCELED"
    await wait_saga_terminal(gateway, account, order_id, seconds=60)
    timeline = await mc("saga", "show", order_id, env=credentials)
    assert "compensation" in timeline.stdout, timeline.stdout

    events = payload(await mc("--json", "events", order_id, env=credentials))
    types = [event["type"] for event in events]
    assert types[0] == "OrderCreated" and "OrderCanceled" in types
    assert [event["sequence"] for event in events] == list(range(1, len(events) + 1))


async def test_another_users_order_is_a_clear_one_line_error(
    gateway: httpx.AsyncClient, admin: Account, account: Account, credentials: dict[str, str]
) -> None:
    login = await mc("login", account.email, env=credentials)
    assert login.returncode == 0, login.stderr
    product = await new_product(gateway, admin, stock=1)
    theirs = payload(
        await mc(
            "--as-admin",
            "--json",
            "order",
            "create",
            "--item",
            product,
            "--token",
            "tok_chargeDeclined",
        )
    )
    result = await mc("order", "show", theirs["orderId"], env=credentials)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: GET /api/orders/") and "404" in lines[0]
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in result.stderr


async def test_unreachable_gateway_and_missing_login_say_what_to_do(tmp_path: Path) -> None:
    down = await mc(
        "order",
        "show",
        "x",
        env={"MC_GATEWAY_URL": "http://127.0.0.1:9", "MC_CREDENTIALS": str(tmp_path / "c.json")},
    )
    assert down.returncode == 1
    # Not logged in is found before any call.
    assert down.stderr.splitlines() == [
        "error: not logged in",
        "hint: log in first: mc login EMAIL (or mc --as-admin … for the local demo admin)",
    ]
    unreachable = await mc(
        "--as-admin", "order", "show", "x", env={"MC_GATEWAY_URL": "http://127.0.0.1:9"}
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: gateway not reachable at http://127.0.0.1:9")
    assert "hint: start the stack: mc up" in unreachable.stderr


async def test_status_and_topics_describe_the_running_stack() -> None:
    status = await mc("status")
    assert status.returncode == 0
    for name in ("auth", "orders", "inventory", "payment", "shipping", "gateway"):
        assert name in status.stdout
    lags = payload(await mc("--json", "topics"))
    groups = {row["group"] for row in lags}
    assert {"payment-service", "analytics-service"} <= groups, groups
    assert all(row["lag"] == max(row["end"] - row["committed"], 0) for row in lags)
