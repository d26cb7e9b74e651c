"""``mc``: the MicroCommerce command line (stack, orders, sagas, events, replays, topics, specs)."""
