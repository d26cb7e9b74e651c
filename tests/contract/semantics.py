"""Rules of the API that JSON Schema cannot express, applied to positive cases.

A positive case is one the schema accepts, and the ``positive_data_acceptance`` check
fails when the API refuses it. A few documented rules are beyond JSON Schema, so a
case can be schema-valid and still rightly refused with 422 (or never reach the code
under test). For those operations the case is reshaped into one that obeys the rule,
staying schema-valid; negative cases are left alone (they must be refused anyway), so
the fuzzer still sends the rule-breaking values, only never as "valid" ones.

- registration and login: the e-mail must be deliverable (email-validator's rules,
  no special-use domain such as ``.test``); registration: the e-mail is not taken yet
  and the password meets the strength policy (three character classes, not the
  e-mail's local part, not common);
- listings: the cursor is opaque, only one the API returned is valid;
- analytics: ``from`` not after ``to``, at most 366 days from first to last;
- orders: each product at most once per order; one Idempotency-Key per request; and
  half of the items name a product that exists (otherwise every order is a 409; see
  ``stock.py`` for the placeholder ids);
- fault flags: the point must be one the service serves, and the match only keys the
  point offers. A positive case gets such a point and, whatever else it matches, the
  correlation id ``contract-fuzz`` and a short TTL: fuzzing must never switch a fault
  on for the stack's real sagas (docs/fault-flags.md).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from schemathesis import Case, GenerationMode
from schemathesis.hooks import HookContext

from generated.sagas.fault_points import FAULT_POINTS
from handwritten.auth.domain.passwords import password_violations
from tests.contract.stock import PLACEHOLDERS

MAX_RANGE_DAYS = 366
#: The correlation id every fuzzed fault flag is scoped to: no saga ever has it.
FUZZ_CORRELATION_ID = "contract-fuzz"
FUZZ_FLAG_TTL_SECONDS = 60
_idempotency_keys = itertools.count(1)
_emails = itertools.count(1)
#: Tells this run's registrations from earlier runs' (not a Hypothesis draw).
_RUN = uuid.uuid4().hex[:8]


def strong_password(password: str, email: str) -> str:
    """``password`` changed as little as possible into one the policy accepts (same length)."""
    if not password_violations(password, email=email):
        return password
    for candidate in ("aA1" + password[3:], "aA1" + "z" * (len(password) - 3)):
        if not password_violations(candidate, email=email):
            return candidate
    return password


def deliverable_email(email: str) -> str:
    """``email`` if the service's e-mail validation accepts it, else one that it does."""
    for candidate in (email, email.rpartition("@")[0] + "@example.com"):
        try:
            validate_email(candidate, check_deliverability=False)
        except EmailNotValidError:
            continue
        return candidate
    return f"fuzz-{next(_emails)}@example.com"


def deliverable_credentials(case: Case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("email"), str):
        body["email"] = deliverable_email(body["email"])


def unique_email(email: str) -> str:
    """``email`` made unique to this request: generation repeats values (within a run
    and, derandomized, across runs), and a taken address answers 409, which would turn
    a scenario's next steps (log in with it…) into a different scenario."""
    local, _, domain = email.rpartition("@")
    return f"{local[:40]}+{_RUN}{next(_emails)}@{domain}"


def valid_registration(case: Case) -> None:
    deliverable_credentials(case)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("email"), str):
        body["email"] = deliverable_email(unique_email(body["email"]))
    if isinstance(body, dict) and isinstance(body.get("password"), str):
        body["password"] = strong_password(body["password"], str(body.get("email", "")))


def drop_unissued_cursor(case: Case) -> None:
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)


def bounded_date_range(case: Case) -> None:
    query = case.query
    if not isinstance(query, dict):
        return
    try:
        start, end = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
    except (KeyError, TypeError, ValueError):
        return
    start, end = min(start, end), max(start, end)
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        end = start + timedelta(days=MAX_RANGE_DAYS - 1)
    query["from"], query["to"] = start.isoformat(), end.isoformat()


def orderable(case: Case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        items: list[Any] = []
        seen: set[str] = set()
        for item in body["items"]:
            if not isinstance(item, dict) or not isinstance(item.get("productId"), str):
                items.append(item)
                continue
            product_id = item["productId"]
            # The generated id decides, so the same case always orders the same products.
            if int(product_id[-1], 16) % 2 == 0:
                product_id = PLACEHOLDERS[int(product_id[-2], 16) % len(PLACEHOLDERS)]
            if product_id in seen:
                continue
            seen.add(product_id)
            items.append({**item, "productId": product_id})
        body["items"] = items
    headers = case.headers
    if isinstance(headers, dict) and isinstance(headers.get("Idempotency-Key"), str):
        key = headers["Idempotency-Key"][:200]
        headers["Idempotency-Key"] = f"{key}-{next(_idempotency_keys)}"


def harmless_fault_flag(case: Case) -> None:
    points = [
        point
        for point in FAULT_POINTS.values()
        if point.admin_path is not None and case.operation.path.startswith(point.admin_path)
    ]
    if not points or not isinstance(case.path_parameters, dict):
        return
    sent = str(case.path_parameters.get("point", ""))
    point = points[sum(sent.encode()) % len(points)]  # the generated name decides
    case.path_parameters["point"] = point.name
    if isinstance(case.body, dict):
        match = case.body.get("match")
        kept = (
            {k: v for k, v in match.items() if k in point.match_keys}
            if isinstance(match, dict)
            else {}
        )
        case.body["match"] = {**kept, "correlationId": FUZZ_CORRELATION_ID}
        case.body["ttlSeconds"] = FUZZ_FLAG_TTL_SECONDS
    elif case.query is None or isinstance(case.query, dict):
        case.query = {**(case.query or {}), "correlationId": FUZZ_CORRELATION_ID}


RULES: dict[str, Callable[[Case], None]] = {
    "register_user": valid_registration,
    "login": deliverable_credentials,
    "list_orders": drop_unissued_cursor,
    "list_products": drop_unissued_cursor,
    "get_sales_by_day": bounded_date_range,
    "get_top_products": bounded_date_range,
    "get_order_funnel": bounded_date_range,
    "create_order": orderable,
    **{
        f"{verb}_{service}_fault_flag": harmless_fault_flag
        for verb in ("set", "clear")
        for service in ("inventory", "payment", "orders")
    },
}


def shape_positive_case(context: HookContext, case: Case) -> Case:
    """The ``map_case`` hook applying ``RULES`` to positive cases."""
    operation = context.operation
    if operation is None or case.meta is None:
        return case
    if case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    rule = RULES.get(str(operation.definition.raw.get("operationId", "")))
    if rule is not None:
        rule(case)
    return case
