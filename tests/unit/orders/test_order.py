"""The Order aggregate: transitions, their typed errors, and idempotent repeats."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from handwritten.orders.domain.errors import (
    InvalidOrderError,
    InvalidTransitionError,
    OrderAlreadyExistsError,
)
from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import (
    ORDER_CANCELED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_PAYMENT_REFUNDED,
    ORDER_SHIPMENT_SCHEDULED,
    CancelReason,
    OrderStatus,
    cancel,
    confirm,
    mark_delivered,
    mark_shipped,
    place,
    record_refund,
    schedule_shipment,
)
from handwritten.orders.service_layer.read_model import PaymentStatus, ShippingStatus, view_of
from tests.unit.orders.factories import ADDRESS, T0, History, created_events, line, replay

LATER = T0 + timedelta(minutes=5)
TRACKING = "BR-12345678"


def shipped() -> History:
    history = History()
    history.run(lambda order: confirm(order, payment_id=uuid.uuid4(), now=T0))
    history.run(lambda order: mark_shipped(order, tracking_code=TRACKING, now=T0))
    return history


def test_place_creates_a_pending_order_with_the_exact_total() -> None:
    events = created_events(line("349.90", 2), line("0.10", 3))
    assert [event.event_type for event in events] == [ORDER_CREATED]
    assert events[0].data["totalAmount"] == "700.10"
    order = replay(events)
    assert order is not None
    assert order.status is OrderStatus.PENDING
    assert order.total == Money.parse("700.10")
    assert order.created_at == order.updated_at == T0
    assert order.shipping_address == ADDRESS
    assert [item.unit_price.to_wire() for item in order.lines] == ["349.90", "0.10"]


def test_place_twice_is_a_bug_not_a_second_order() -> None:
    order = History().order
    with pytest.raises(OrderAlreadyExistsError):
        place(
            order,
            order_id=order.order_id,
            user_id=order.user_id,
            lines=[line()],
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
            now=T0,
        )


def test_place_refuses_duplicate_products_and_oversized_totals() -> None:
    same = line()
    with pytest.raises(InvalidOrderError, match="only once"):
        created_events(same, same)
    with pytest.raises(InvalidOrderError, match="exceeds"):
        created_events(line("99999999.99", 2))


def test_happy_path_pending_confirmed_shipped_delivered() -> None:
    history = History()
    payment = uuid.uuid4()
    history.run(lambda order: confirm(order, payment_id=payment, now=LATER))
    confirmed = history.order
    assert confirmed.status is OrderStatus.CONFIRMED
    assert confirmed.payment_id == payment
    assert confirmed.updated_at == LATER
    history.run(lambda order: mark_shipped(order, tracking_code=TRACKING, now=LATER))
    shipped = history.order
    assert shipped.status is OrderStatus.SHIPPED
    assert shipped.tracking_code == TRACKING
    history.run(lambda order: mark_delivered(order, now=LATER))
    assert history.order.status is OrderStatus.DELIVERED


@pytest.mark.parametrize("confirmed", [False, True])
def test_cancel_from_pending_or_confirmed_records_the_reason(confirmed: bool) -> None:
    history = History()
    if confirmed:
        history.run(lambda order: confirm(order, payment_id=uuid.uuid4(), now=T0))
    events = history.run(
        lambda order: cancel(order, reason=CancelReason.CUSTOMER_REQUEST, now=LATER)
    )
    assert [event.event_type for event in events] == [ORDER_CANCELED]
    assert history.order.status is OrderStatus.CANCELED
    assert history.order.cancel_reason is CancelReason.CUSTOMER_REQUEST


def test_canceling_a_canceled_order_is_a_no_op() -> None:
    history = History()
    history.run(
        lambda order: cancel(order, reason=CancelReason.PAYMENT_FAILED, now=T0, detail="declined")
    )
    assert history.order.cancel_detail == "declined"
    assert cancel(history.order, reason=CancelReason.CUSTOMER_REQUEST, now=LATER) == []
    assert history.order.cancel_reason is CancelReason.PAYMENT_FAILED


def test_cancel_after_shipping_is_an_invalid_transition() -> None:
    history = shipped()
    with pytest.raises(InvalidTransitionError) as raised:
        cancel(history.order, reason=CancelReason.CUSTOMER_REQUEST, now=LATER)
    assert raised.value.status == "SHIPPED"
    history.run(lambda order: mark_delivered(order, now=LATER))
    with pytest.raises(InvalidTransitionError):
        cancel(history.order, reason=CancelReason.CUSTOMER_REQUEST, now=LATER)


def test_forbidden_transitions_raise_typed_errors() -> None:
    history = History()
    with pytest.raises(InvalidTransitionError):
        mark_shipped(history.order, tracking_code=TRACKING, now=T0)
    with pytest.raises(InvalidTransitionError):
        mark_delivered(history.order, now=T0)
    history.run(lambda order: cancel(order, reason=CancelReason.OUT_OF_STOCK, now=T0))
    with pytest.raises(InvalidTransitionError):
        confirm(history.order, payment_id=uuid.uuid4(), now=T0)
    with pytest.raises(InvalidTransitionError):
        mark_shipped(history.order, tracking_code=TRACKING, now=T0)


def test_repeating_a_transition_already_made_changes_nothing() -> None:
    history = History()
    payment = uuid.uuid4()
    history.run(lambda order: confirm(order, payment_id=payment, now=T0))
    assert confirm(history.order, payment_id=payment, now=LATER) == []
    with pytest.raises(InvalidTransitionError):
        confirm(history.order, payment_id=uuid.uuid4(), now=LATER)
    history.run(lambda order: mark_shipped(order, tracking_code=TRACKING, now=T0))
    assert mark_shipped(history.order, tracking_code=TRACKING, now=LATER) == []
    with pytest.raises(InvalidTransitionError):
        mark_shipped(history.order, tracking_code="BR-87654321", now=LATER)
    history.run(lambda order: mark_delivered(order, now=T0))
    assert mark_delivered(history.order, now=LATER) == []


def test_tracking_codes_follow_the_contract() -> None:
    history = History()
    history.run(lambda order: confirm(order, payment_id=uuid.uuid4(), now=T0))
    with pytest.raises(InvalidOrderError):
        mark_shipped(history.order, tracking_code="lowercase", now=T0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        confirm(History().order, payment_id=uuid.uuid4(), now=T0.replace(tzinfo=None))


def test_confirm_event_carries_the_payment_and_its_time() -> None:
    payment = uuid.uuid4()
    (event,) = confirm(History().order, payment_id=payment, now=LATER)
    assert event.event_type == ORDER_CONFIRMED
    assert event.data == {"paymentId": str(payment), "confirmedAt": LATER.isoformat()}


def test_a_scheduled_shipment_is_recorded_once_and_shows_on_the_view() -> None:
    history = History()
    assert view_of(history.order, 1).shipping_status is None
    with pytest.raises(InvalidTransitionError):  # not confirmed yet
        history.run(lambda order: schedule_shipment(order, tracking_code=TRACKING, now=T0))
    history.run(lambda order: confirm(order, payment_id=uuid.uuid4(), now=T0))
    events = history.run(lambda order: schedule_shipment(order, tracking_code=TRACKING, now=LATER))
    assert [e.event_type for e in events] == [ORDER_SHIPMENT_SCHEDULED]
    order = replay(history.events)
    assert order is not None
    assert order.status is OrderStatus.CONFIRMED and order.tracking_code == TRACKING
    view = view_of(order, len(history.events))
    assert (view.shipping_status, view.tracking_code) == (ShippingStatus.SCHEDULED, TRACKING)
    # Again with the same code: nothing; another code: refused.
    assert history.run(lambda o: schedule_shipment(o, tracking_code=TRACKING, now=T0)) == []
    with pytest.raises(InvalidTransitionError):
        history.run(lambda o: schedule_shipment(o, tracking_code="BR-OTHER0001", now=T0))
    # Shipped under that code, then delivered.
    history.run(lambda order: mark_shipped(order, tracking_code=TRACKING, now=LATER))
    assert view_of(history.order, 9).shipping_status is ShippingStatus.IN_TRANSIT
    history.run(lambda order: mark_delivered(order, now=LATER))
    assert view_of(history.order, 9).shipping_status is ShippingStatus.DELIVERED


def test_a_shipment_scheduled_for_a_canceled_order_shows_canceled() -> None:
    history = History()
    history.run(lambda order: confirm(order, payment_id=uuid.uuid4(), now=T0))
    history.run(lambda o: cancel(o, reason=CancelReason.CUSTOMER_REQUEST, now=T0))
    history.run(lambda o: schedule_shipment(o, tracking_code=TRACKING, now=LATER))
    view = view_of(history.order, 4)
    assert view.status is OrderStatus.CANCELED
    assert (view.shipping_status, view.tracking_code) == (ShippingStatus.CANCELED, TRACKING)


def test_a_refund_is_recorded_once_on_a_canceled_order() -> None:
    history = History()
    payment = uuid.uuid4()
    history.run(lambda order: confirm(order, payment_id=payment, now=T0))
    with pytest.raises(InvalidTransitionError):  # only canceled orders are refunded
        history.run(lambda order: record_refund(order, payment_id=payment, now=T0))
    assert view_of(history.order, 2).payment_status is PaymentStatus.PROCESSED
    history.run(lambda o: cancel(o, reason=CancelReason.CUSTOMER_REQUEST, now=T0))
    events = history.run(lambda order: record_refund(order, payment_id=payment, now=LATER))
    assert [e.event_type for e in events] == [ORDER_PAYMENT_REFUNDED]
    assert history.run(lambda order: record_refund(order, payment_id=payment, now=LATER)) == []
    order = replay(history.events)
    assert order is not None and order.refunded and order.payment_id == payment
    assert view_of(order, 4).payment_status is PaymentStatus.REFUNDED


def test_a_late_payment_refunded_after_a_timeout_shows_refunded() -> None:
    history = History()
    history.run(lambda o: cancel(o, reason=CancelReason.PAYMENT_TIMEOUT, now=T0))
    assert view_of(history.order, 2).payment_status is PaymentStatus.FAILED
    late = uuid.uuid4()
    history.run(lambda order: record_refund(order, payment_id=late, now=LATER))
    view = view_of(history.order, 3)
    assert (view.payment_status, view.payment_id) == (PaymentStatus.REFUNDED, late)
