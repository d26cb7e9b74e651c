"""The payment service: a simulated payment gateway driven by the create-order saga.

It consumes ``payments.requested`` (charge an order) and ``payments.refund_requested``
(compensation: refund or void), answers on ``payments.processed`` /
``payments.failed`` / ``payments.refunded`` through the transactional outbox, and
guarantees at most one successful charge per order whatever the redeliveries.
"""
