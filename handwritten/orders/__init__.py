"""The orders service: the event-sourced Order aggregate, its REST and gRPC APIs and
the ``orders_view`` read model (``python -m handwritten.orders``)."""
